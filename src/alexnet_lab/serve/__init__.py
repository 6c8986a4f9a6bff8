"""`alexnet serve`: a local web page and HTTP JSON API over one model, in both frameworks.

:func:`load_served` loads the weights once (the server process keeps numpy only) and starts a
worker process per framework; :func:`run_server` serves :func:`.app.create_app` with uvicorn
until Ctrl-C, then stops the workers. FastAPI + uvicorn is the stack most model APIs in the
Python ML world are written in: typed request parsing, multipart uploads, an OpenAPI page at
/api/docs, and an ASGI server that serves requests concurrently.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.fileio import sha256_file
from alexnet_lab.core.version import __version__
from alexnet_lab.evaluate.run_folders import load_run
from alexnet_lab.serve.app import ServedModel, create_app
from alexnet_lab.serve.uploads import DEFAULT_MAX_UPLOAD_BYTES
from alexnet_lab.serve.workers import FrameworkWorker
from alexnet_lab.weights import load_weights, run_weights_file

log = logging.getLogger(__name__)


def _training_summary(folder: Path) -> tuple[dict[str, Any] | None, Path | None]:
    """A run folder's summary for the card and its curves plot; (None, None) for a weight file."""
    if not (folder / "config.json").is_file():
        return None, None
    run = load_run(folder)
    resolved = run.config.get("resolved", {})
    summary = {"epochs": run.epochs_done, "best_epoch": run.best_epoch, "val_top1": run.eval.top1,
               "val_top5": run.eval.top5, "framework": run.config.get("framework"),
               "recipe": run.config.get("recipe"), "precision": resolved.get("precision"),
               "wall_seconds": round(run.wall_seconds, 1)}
    curves = folder / "plots" / "curves.png"
    return summary, curves if curves.is_file() else None


def model_card(source: str, bundle: WeightBundle, frameworks: list[str]) -> tuple[dict[str, Any], Path | None]:
    """What /api/info shows: variant, classes, preprocessing, parameters, digest, training."""
    meta, path = bundle.meta, Path(source).expanduser()
    weight_file = run_weights_file(path) if path.is_dir() else path
    training, curves = _training_summary(path) if path.is_dir() else (None, None)
    card = {"weights": source, "producer": f"alexnet-lab {__version__}", "variant": meta.variant,
            "description": meta.arch.description, "num_classes": meta.num_classes, "categories": list(meta.categories),
            "preprocessing": meta.preprocess.to_dict(), "preprocessing_summary": meta.preprocess.describe(),
            "params": bundle.param_count(),
            "sha256": sha256_file(weight_file) if weight_file.is_file() else meta.source_sha256,
            "source": meta.source, "frameworks": frameworks, "training": training}
    return card, curves


def load_served(source: str, frameworks: list[str], device: str = "cpu",
                max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> ServedModel:
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
            workers[framework] = FrameworkWorker(framework, source, device)
    except BaseException:
        for worker in workers.values():
            worker.stop()
        raise
    return ServedModel(bundle, card, workers, curves, max_bytes)


def run_server(served: ServedModel, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until Ctrl-C (uvicorn handles the signal and finishes open requests), then stop the workers."""
    import uvicorn

    try:
        uvicorn.run(create_app(served), host=host, port=port, log_level="warning", access_log=False)
    finally:
        served.stop()


__all__ = ["ServedModel", "create_app", "load_served", "model_card", "run_server"]
