"""Micro-batching: concurrent requests for one framework share one forward pass.

Each framework has one :class:`MicroBatcher`, a task on the server's event loop. A request puts
its preprocessed images in the batcher's queue and awaits its own rows of logits. The batcher
takes the first waiting request, gathers more for up to `max_wait_ms` or until `max_batch` images,
runs them through the worker in one call (in a thread, so the event loop keeps serving), and hands
each request its rows. Requests that arrive while a forward pass runs wait for the next one, so
under load batches form even with `max_wait_ms` 0. The queue is bounded in images
(`max_queue`): past it a request is refused at once with :class:`QueueFull` (503 + Retry-After)
instead of holding memory for work the server cannot do in time. `max_batch` 1 turns batching off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from alexnet_lab.serve.workers import FrameworkWorker, WorkerUnavailable


class QueueFull(WorkerUnavailable):
    """The framework's queue holds `max_queue` images already."""


@dataclass(frozen=True)
class BatchingOptions:
    """How requests are gathered (defaults chosen with benchmarks/serve_load.py; see docs/serving.md)."""

    max_batch: int = 1  # images in one forward pass; 1 = no batching (faster below ~16 concurrent clients)
    max_wait_ms: float = 10.0  # how long the first request of a batch waits for company
    max_queue: int = 256  # images waiting per framework; past it 503

    @property
    def row_block(self) -> int:
        """Forward passes run on multiples of 4 rows when batching, so a batch never changes an answer."""
        return 4 if self.max_batch > 1 else 1


@dataclass
class _Request:
    images: np.ndarray
    future: asyncio.Future


class MicroBatcher:
    """Gathers `logits` calls for one worker into batched forward passes.

    Args:
        worker: the framework's supervised worker.
        options: batch size, wait and queue bounds.
        on_batch: called with each forward pass's image count (metrics).
        on_depth: called with the queue depth in images whenever it changes (metrics).
    """

    def __init__(self, worker: FrameworkWorker, options: BatchingOptions,
                 on_batch: Callable[[int], None] = lambda n: None, on_depth: Callable[[int], None] = lambda n: None):
        self.worker, self.options = worker, options
        self._on_batch, self._on_depth = on_batch, on_depth
        self._queue: deque[_Request] = deque()
        self._queued = 0  # images in the queue
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self.worker.framework}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for request in self._queue:
            if not request.future.done():
                request.future.set_exception(WorkerUnavailable("the server is shutting down.", 5))

    @property
    def depth(self) -> int:
        return self._queued

    async def logits(self, images: np.ndarray) -> np.ndarray:
        """The worker's logits for these images, computed together with other requests' images.

        Raises:
            QueueFull: the queue is at `max_queue` images.
            WorkerUnavailable / AlexnetLabError: from the worker, for every request of the batch.
        """
        if self._queued + len(images) > self.options.max_queue:
            raise QueueFull(f"the {self.worker.framework} queue is full ({self._queued} images waiting); "
                            "retry shortly.", 1)
        request = _Request(images, asyncio.get_running_loop().create_future())
        self._queue.append(request)
        self._queued += len(images)
        self._on_depth(self._queued)
        self._arrived.set()
        return await request.future

    async def _gather(self) -> list[_Request]:
        """Wait for the first request, then up to max_wait_ms for up to max_batch images."""
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.max_wait_ms / 1000
        while self._queued < self.options.max_batch and (remaining := deadline - loop.time()) > 0:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        taken, count = [], 0
        while self._queue and (not taken or count + len(self._queue[0].images) <= self.options.max_batch):
            request = self._queue.popleft()
            taken.append(request)
            count += len(request.images)
        self._queued -= count
        self._on_depth(self._queued)
        return taken

    async def _run(self) -> None:
        while True:
            taken = await self._gather()
            batch = np.concatenate([r.images for r in taken]) if len(taken) > 1 else taken[0].images
            self._on_batch(len(batch))
            try:
                logits = await asyncio.to_thread(self.worker.logits, batch)
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error; the batcher lives on
                for request in taken:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            start = 0
            for request in taken:
                rows = logits[start : start + len(request.images)]
                start += len(request.images)
                if not request.future.done():  # the client may have gone
                    request.future.set_result(rows)
