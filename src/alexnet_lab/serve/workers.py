"""One supervised process per framework, each holding its model, loaded once.

PyTorch and TensorFlow never share a process in this project (with the pinned versions, importing
TensorFlow before torchvision crashes), so the server itself imports neither: it preprocesses with
numpy and hands float32 NHWC batches to a :class:`FrameworkWorker` per framework over a pipe.

A worker is supervised: every call has a deadline. A worker that dies (kill -9, a crash in a
kernel) or does not answer within the deadline (stopped with SIGSTOP, stuck in a kernel) is
killed and started again in the background, its model reloaded; until it is ready again every
call raises :class:`WorkerUnavailable`, which the app answers with 503 and `Retry-After`. Callers
take turns on the pipe (a lock); a caller waits for its turn within its own deadline.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from alexnet_lab.core.errors import AlexnetLabError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 300.0  # Keras' first import and the model build take seconds; a stuck start must not hang
PING_TIMEOUT_S = 2.0  # /readyz: an idle worker that does not echo within this is stuck


class WorkerUnavailable(AlexnetLabError):
    """The worker is (re)starting or was found dead or stuck: try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def _padded_logits(backend, model, batch: np.ndarray, row_block: int) -> np.ndarray:
    """Logits computed on a multiple of `row_block` rows (zero images appended, their rows dropped).

    Matrix and convolution kernels take other code paths for a batch of 1-3 rows than for a
    multiple of 4, which moves the logits in their last bits. Running every forward pass on a
    multiple of 4 makes an image's answer the same whether it came alone or batched with others.
    """
    count = len(batch)
    rows = -(-count // row_block) * row_block
    if rows != count:
        batch = np.concatenate([batch, np.zeros((rows - count, *batch.shape[1:]), batch.dtype)])
    return backend.predict_logits(model, batch, batch_size=16 * row_block)[:count]


def _serve_requests(framework: str, source: str, device: str, row_block: int, conn) -> None:
    """The worker process: load the weights, build the model, answer requests until 'stop'."""
    from alexnet_lab.explain.maps import explain_batch
    from alexnet_lab.frameworks import build_for, get_backend
    from alexnet_lab.weights import load_weights

    try:
        backend = get_backend(framework)
        model = build_for(load_weights(source), framework, device)
        conn.send(("ready", None))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it there
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            command, payload = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if command == "stop":
            return
        try:
            if command == "ping":
                conn.send(("ok", payload))
            elif command == "predict":
                conn.send(("ok", _padded_logits(backend, model, payload, row_block)))
            elif command == "explain":  # payload: batch, categories, method, layer, class index
                conn.send(("ok", explain_batch(model, framework, *payload)))
            else:
                conn.send(("error", f"unknown request '{command}'"))
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the worker
            log.debug("worker request failed:\n%s", traceback.format_exc())
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class FrameworkWorker:
    """A supervised process that holds `framework`'s model of the weights `source`.

    Args:
        framework: a framework name (frameworks.FRAMEWORKS).
        source: what `load_weights` reads (file, run folder or registry name).
        device: the model's device.
        timeout_s: the deadline of one call, waiting for the pipe included.
        row_block: every forward pass runs on a multiple of this many rows (see _padded_logits);
            4 when requests are batched, so that batching never changes an answer.
        on_restart: called each time the worker has been restarted (metrics).
    """

    def __init__(self, framework: str, source: str, device: str = "cpu", timeout_s: float = 30.0,
                 row_block: int = 1, on_restart: Callable[[], None] | None = None):
        self.framework, self.timeout_s, self.row_block = framework, timeout_s, row_block
        self._source, self._device = source, device
        self.on_restart = on_restart  # the app sets its metrics counter here
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter: no framework inherited
        self._lock = threading.Lock()  # one request on the pipe at a time
        self._state_lock = threading.Lock()
        self.state, self.restarts, self.load_seconds = "starting", 0, 0.0
        self._busy_since: float | None = None
        self._stopping = False
        self._process, self._conn = None, None
        self._start()

    # -- process life -------------------------------------------------------------------------------
    def _start(self) -> None:
        """Start the process and wait until its model is loaded (raises when it cannot load)."""
        started = time.perf_counter()
        conn, child = self._context.Pipe()
        args = (self.framework, self._source, self._device, self.row_block, child)
        process = self._context.Process(target=_serve_requests, args=args, name=f"alexnet-serve-{self.framework}",
                                        daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, conn
        if not conn.poll(START_TIMEOUT_S):
            self._kill()
            raise AlexnetLabError(f"the {self.framework} model did not load within {START_TIMEOUT_S:.0f} s")
        try:
            status, detail = conn.recv()
        except EOFError:
            status, detail = "error", f"the process exited with status {process.exitcode}"
        if status != "ready":
            self._kill()
            raise AlexnetLabError(f"the {self.framework} model could not be loaded: {detail}")
        self.load_seconds = time.perf_counter() - started
        self.state = "ready"

    def _kill(self) -> None:
        """SIGKILL ends a stopped (SIGSTOP) process too; then reap it and close the pipe."""
        if self._process is not None and self._process.is_alive():
            self._process.kill()
        if self._process is not None:
            self._process.join(timeout=10)
        if self._conn is not None:
            self._conn.close()

    def _fail(self, why: str) -> WorkerUnavailable:
        """Mark the worker broken, restart it in the background; the error for the caller."""
        with self._state_lock:
            if self.state == "ready" and not self._stopping:
                log.warning("the %s worker %s; restarting it", self.framework, why)
                self.state = "restarting"
                self._kill()
                threading.Thread(target=self._restart, name=f"restart-{self.framework}", daemon=True).start()
        return WorkerUnavailable(f"the {self.framework} model {why} and is being reloaded; retry shortly.",
                                 self.retry_after())

    def _restart(self) -> None:
        while not self._stopping:
            with self._lock:  # nobody uses the pipe while the process is replaced
                try:
                    self._start()
                except AlexnetLabError as exc:
                    log.error("restarting the %s worker failed: %s", self.framework, exc)
                    self.state = "restarting"
            if self.state == "ready":
                self.restarts += 1
                log.warning("the %s worker is ready again (%.1f s)", self.framework, self.load_seconds)
                if self.on_restart is not None:
                    self.on_restart()
                return
            time.sleep(1.0)

    def retry_after(self) -> int:
        """Seconds a client should wait: about one model load."""
        return max(1, math.ceil(self.load_seconds or 5.0))

    # -- calls --------------------------------------------------------------------------------------
    def call(self, command: str, payload: Any, timeout_s: float | None = None) -> Any:
        """Send one request and wait for its answer within the deadline.

        Raises:
            WorkerUnavailable: the worker is restarting, died, or missed the deadline (it is then
                killed and restarted).
            AlexnetLabError: the model raised an error for this request (the worker lives on).
        """
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        if self.state != "ready":
            raise WorkerUnavailable(f"the {self.framework} model is loading; retry shortly.", self.retry_after())
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise self._stuck_or_busy()
        try:
            if self.state != "ready":
                raise WorkerUnavailable(f"the {self.framework} model is loading; retry shortly.", self.retry_after())
            self._busy_since = time.monotonic()
            try:
                self._conn.send((command, payload))
                if not self._conn.poll(max(0.0, deadline - time.monotonic())):
                    raise self._fail(f"did not answer within {self.timeout_s:g} s")
                status, result = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                raise self._fail(f"stopped (exit status {self._process.exitcode})") from None
        finally:
            self._busy_since = None
            self._lock.release()
        if status != "ok":
            raise AlexnetLabError(f"the {self.framework} model failed: {result}")
        return result

    def _stuck_or_busy(self) -> WorkerUnavailable:
        """The pipe stayed taken past our deadline: the call holding it is stuck (or the queue is long)."""
        busy = self._busy_since
        if busy is not None and time.monotonic() - busy > self.timeout_s:
            return self._fail(f"did not answer within {self.timeout_s:g} s")
        return WorkerUnavailable(f"the {self.framework} model is busy; retry shortly.", 1)

    def logits(self, batch_nhwc: np.ndarray) -> np.ndarray:
        """float32 logits for a preprocessed NHWC batch."""
        return self.call("predict", np.ascontiguousarray(batch_nhwc, dtype=np.float32))

    def ready(self) -> bool:
        """Loaded and answering: an idle worker must echo a ping; a busy one must be within its deadline."""
        if self.state != "ready" or self._process is None or not self._process.is_alive():
            if self.state == "ready":
                self._fail("stopped")
            return False
        if not self._lock.acquire(blocking=False):
            busy = self._busy_since
            return busy is None or time.monotonic() - busy <= self.timeout_s
        self._lock.release()
        try:
            return self.call("ping", None, timeout_s=PING_TIMEOUT_S) is None
        except AlexnetLabError:
            return False

    def status(self) -> dict[str, Any]:
        """What /readyz shows for this worker (ready() is called first by the app)."""
        return {"state": self.state, "restarts": self.restarts, "load_seconds": round(self.load_seconds, 2)}

    def stop(self) -> None:
        """Ask the process to finish, then make sure it has."""
        self._stopping = True
        acquired = self._lock.acquire(timeout=5)
        try:
            if self._conn is not None and self._process is not None and self._process.is_alive():
                try:
                    self._conn.send(("stop", None))
                except (OSError, ValueError):
                    pass
                self._process.join(timeout=10)
            self._kill()
        finally:
            if acquired:
                self._lock.release()
