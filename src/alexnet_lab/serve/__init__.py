"""`alexnet serve`: a web page and HTTP JSON API over one model, in both frameworks, as a service.

:func:`load_served` loads the weights once (the server process keeps numpy only) and starts a
supervised worker process per framework; :func:`run_server` serves :func:`.app.create_app` with
uvicorn until Ctrl-C or SIGTERM, lets in-flight requests finish within a deadline, then stops the
workers. FastAPI + uvicorn is the stack most model APIs in the Python ML world are written in:
typed request parsing, multipart uploads, an OpenAPI description at /openapi.json, and an ASGI
server that serves requests concurrently.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.fileio import sha256_file
from alexnet_lab.core.run_folder import RunFolder
from alexnet_lab.core.version import __version__
from alexnet_lab.evaluate.run_folders import load_run
from alexnet_lab.serve.app import DEFAULT_MAX_REQUEST_BYTES, ServedModel, create_app
from alexnet_lab.serve.batching import BatchingOptions
from alexnet_lab.serve.uploads import DEFAULT_MAX_UPLOAD_BYTES
from alexnet_lab.serve.workers import FrameworkWorker
from alexnet_lab.weights import load_weights, run_weights_file

log = logging.getLogger(__name__)


def _training_summary(folder: Path) -> tuple[dict[str, Any] | None, Path | None]:
    """A run folder's summary for the card and its curves plot; (None, None) for a weight file."""
    if not RunFolder(folder).config.is_file():
        return None, None
    run = load_run(folder)
    resolved = run.config.get("resolved", {})
    summary = {"epochs": run.epochs_done, "best_epoch": run.best_epoch, "val_top1": run.eval.top1,
               "val_top5": run.eval.top5, "framework": run.config.get("framework"),
               "recipe": run.config.get("recipe"), "precision": resolved.get("precision"),
               "wall_seconds": round(run.wall_seconds, 1)}
    curves = RunFolder(folder).plot("curves")
    return summary, curves if curves.is_file() else None


def model_card(source: str, bundle: WeightBundle, frameworks: list[str]) -> tuple[dict[str, Any], Path | None]:
    """What /api/info shows: variant, classes, preprocessing, parameters, digest, training."""
    meta, path = bundle.meta, Path(source).expanduser()
    weight_file = run_weights_file(path) if path.is_dir() else path
    training, curves = _training_summary(path) if path.is_dir() else (None, None)
    card = {"weights": _public_name(source), "producer": f"alexnet-lab {__version__}", "variant": meta.variant,
            "description": meta.arch.description, "num_classes": meta.num_classes, "categories": list(meta.categories),
            "preprocessing": meta.preprocess.to_dict(), "preprocessing_summary": meta.preprocess.describe(),
            "params": bundle.param_count(),
            "sha256": sha256_file(weight_file) if weight_file.is_file() else meta.source_sha256,
            "source": _public_name(meta.source), "frameworks": frameworks, "training": training}
    return card, curves


def _public_name(source: str) -> str:
    """A registry name or URL as it is; a file or folder by its name only (the card is public)."""
    if "://" in source or ("/" not in source and "\\" not in source):
        return source
    return Path(source.rstrip("/\\")).name


def load_served(source: str, frameworks: list[str], device: str = "cpu", max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
                batching: BatchingOptions = BatchingOptions(), timeout_s: float = 30.0, token: str | None = None,
                cors: tuple[str, ...] = (), max_request_bytes: int | None = None) -> ServedModel:
    """Load the weights once and start a worker per framework (the slow part: seconds each).

    Raises:
        UserInputError / WeightFormatError: the weights cannot be read.
        AlexnetLabError: a framework's model could not be built.
    """
    bundle = load_weights(source)
    card, curves = model_card(source, bundle, frameworks)
    workers: dict[str, FrameworkWorker] = {}
    try:
        for framework in frameworks:
            log.info("loading the %s model", framework)
            workers[framework] = FrameworkWorker(framework, source, device, timeout_s, batching.row_block)
    except BaseException:
        for worker in workers.values():
            worker.stop()
        raise
    request_bytes = max(max_request_bytes or DEFAULT_MAX_REQUEST_BYTES, max_bytes + 1024 * 1024)  # one file always fits
    return ServedModel(bundle, card, workers, curves, max_bytes, request_bytes, batching, token, cors)


def run_server(served: ServedModel, host: str = "127.0.0.1", port: int = 8000, shutdown_timeout_s: float = 30.0,
               max_connections: int | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop the workers.

    On the signal uvicorn stops accepting connections and lets the requests in flight finish for
    up to `shutdown_timeout_s` before it cancels them. `max_connections` caps concurrent
    connections; past it new ones get 503.
    """
    import uvicorn

    try:
        uvicorn.run(create_app(served), host=host, port=port, log_level="warning", access_log=False,
                    timeout_graceful_shutdown=shutdown_timeout_s, limit_concurrency=max_connections)
    finally:
        served.stop()


__all__ = ["BatchingOptions", "ServedModel", "create_app", "load_served", "model_card", "run_server"]
