"""One long-lived process per framework, each holding its model, loaded once.

PyTorch and TensorFlow never share a process in this project (with the pinned versions, importing
TensorFlow before torchvision crashes), so the server itself imports neither: it preprocesses with
numpy and hands float32 NHWC batches to a :class:`FrameworkWorker` per framework over a pipe.
Each worker answers one request at a time (a lock serialises the callers); the frameworks run in
parallel, and the web server's threads wait on them without blocking each other's I/O.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import traceback
from typing import Any

import numpy as np

from alexnet_lab.core.errors import AlexnetLabError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 300.0  # Keras' first import and the model build take seconds; a stuck start must not hang


def _serve_requests(framework: str, source: str, device: str, conn) -> None:
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
            if command == "predict":
                conn.send(("ok", backend.predict_logits(model, payload, batch_size=32)))
            elif command == "explain":  # payload: batch, categories, method, layer, class index
                conn.send(("ok", explain_batch(model, framework, *payload)))
            else:
                conn.send(("error", f"unknown request '{command}'"))
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the worker
            log.debug("worker request failed:\n%s", traceback.format_exc())
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class FrameworkWorker:
    """A process that holds `framework`'s model of the weights `source` and runs it on request."""

    def __init__(self, framework: str, source: str, device: str = "cpu"):
        self.framework = framework
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no framework inherited
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_requests, args=(framework, source, device, child),
                                        name=f"alexnet-serve-{framework}", daemon=True)
        self._lock = threading.Lock()
        self._process.start()
        child.close()
        if not self._conn.poll(START_TIMEOUT_S):
            self.stop()
            raise AlexnetLabError(f"the {framework} model did not load within {START_TIMEOUT_S:.0f} s")
        status, detail = self._conn.recv()
        if status != "ready":
            self.stop()
            raise AlexnetLabError(f"the {framework} model could not be loaded: {detail}")

    def call(self, command: str, payload: Any) -> Any:
        """Send one request and wait for its answer (callers take turns)."""
        with self._lock:
            if not self._process.is_alive():
                raise AlexnetLabError(f"the {self.framework} worker has stopped; restart `alexnet serve`.")
            self._conn.send((command, payload))
            status, result = self._conn.recv()
        if status != "ok":
            raise AlexnetLabError(f"the {self.framework} model failed: {result}")
        return result

    def logits(self, batch_nhwc: np.ndarray) -> np.ndarray:
        """float32 logits for a preprocessed NHWC batch."""
        return self.call("predict", np.ascontiguousarray(batch_nhwc, dtype=np.float32))

    def stop(self) -> None:
        """Ask the process to finish, then make sure it has."""
        try:
            with self._lock:
                self._conn.send(("stop", None))
        except (OSError, ValueError):
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        self._conn.close()
