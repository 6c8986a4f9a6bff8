"""`alexnet serve`: a FastAPI application over one loaded model, in both frameworks.

Routes: `GET /` (the page), `GET /api/info` (the model card), `GET /api/curves.png` (a run's
training curves), `POST /api/predict` (multipart `images` -> the `alexnet predict --json`
document), `POST /api/compare` (what the page shows: both frameworks' top-k, their largest
probability difference, and the input as the network saw it), `POST /api/input` (that input as a
PNG) and `POST /api/explain` (a Grad-CAM or saliency overlay on that input, as a PNG; the class
explained, its probability and the map's peak in the X-Explained-* headers).

The server process imports no framework: it decodes and preprocesses with numpy, exactly as the
commands do, and asks one worker process per framework (serve.workers) for logits.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import AlexnetLabError, UserInputError
from alexnet_lab.core.explain import METHODS
from alexnet_lab.core.preprocessing import preprocess
from alexnet_lab.explain.draw import overlay
from alexnet_lab.explain.maps import cropped_view, resolve_class
from alexnet_lab.inference.predict import softmax, top_k
from alexnet_lab.serve.uploads import DEFAULT_MAX_UPLOAD_BYTES, UploadError, decode_upload, png_bytes
from alexnet_lab.serve.workers import FrameworkWorker

log = logging.getLogger(__name__)

MAX_FILES = 32  # images in one request


@dataclass
class ServedModel:
    """What the server holds: the weights (numpy), their card, and a worker per framework."""

    bundle: WeightBundle
    card: dict[str, Any]
    workers: dict[str, FrameworkWorker]
    curves: Path | None = None
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES

    def framework(self, name: str | None) -> FrameworkWorker:
        if name is None:
            return next(iter(self.workers.values()))
        if name not in self.workers:
            raise HTTPException(422, f"framework '{name}' is not served here; choose one of {', '.join(self.workers)}.")
        return self.workers[name]

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()


async def _read_images(files: list[UploadFile], served: ServedModel) -> list[tuple[str, np.ndarray | UploadError]]:
    """(name, RGB array or the refusal) per upload, in order."""
    if not files:
        raise HTTPException(422, "send one or more images in the multipart field 'images'.")
    if len(files) > MAX_FILES:
        raise HTTPException(413, f"at most {MAX_FILES} images per request; received {len(files)}.")
    out = []
    for upload in files:
        name = upload.filename or "upload"
        data = await upload.read(served.max_bytes + 1)  # one byte over the limit is enough to refuse it
        try:
            out.append((name, decode_upload(data, name, served.max_bytes)))
        except UploadError as exc:
            out.append((name, exc))
    return out


def _refuse_if_all_failed(images: list[tuple[str, Any]]) -> None:
    """With every upload refused there is nothing to answer: the first refusal's status."""
    errors = [result for _, result in images if isinstance(result, UploadError)]
    if errors and len(errors) == len(images):
        raise HTTPException(errors[0].status, str(errors[0]))


def _batch(served: ServedModel, arrays: list[np.ndarray]) -> np.ndarray:
    """uint8 RGB images -> the NHWC float32 batch the weights expect (the commands' preprocessing)."""
    return np.stack([preprocess(a, served.bundle.meta.preprocess) for a in arrays])


def _predictions(served: ServedModel, worker: FrameworkWorker, batch: np.ndarray,
                 top: int) -> tuple[list[list[dict]], np.ndarray]:
    """(top-k rows of `predict --json`, probabilities) for a preprocessed batch."""
    probabilities = softmax(worker.logits(batch))
    return [[p.to_dict() for p in row] for row in top_k(probabilities, served.bundle.meta.categories, top)], probabilities


def _predict_document(served: ServedModel, images: list[tuple[str, Any]], framework: str | None,
                      top: int) -> list[dict]:
    good = [(i, a) for i, (_, a) in enumerate(images) if not isinstance(a, UploadError)]
    batch = _batch(served, [a for _, a in good]) if good else None
    rows, _ = _predictions(served, served.framework(framework), batch, top) if good else ([], None)
    by_index = dict(zip([i for i, _ in good], rows))
    return [{"image": name, "predictions": by_index[i]} if i in by_index else {"image": name, "error": str(result)}
            for i, (name, result) in enumerate(images)]


def _compare_one(served: ServedModel, name: str, image: np.ndarray, top: int) -> dict:
    entry: dict[str, Any] = {"image": name, "frameworks": {}}
    probabilities, batch = {}, _batch(served, [image])  # preprocessed once for every framework
    for framework, worker in served.workers.items():
        rows, probabilities[framework] = _predictions(served, worker, batch, top)
        entry["frameworks"][framework] = rows[0]
    values = list(probabilities.values())
    entry["max_probability_difference"] = (float(np.abs(values[0] - values[1]).max()) if len(values) == 2 else 0.0)
    view = cropped_view(image, served.bundle.meta.preprocess)
    entry["input_png"] = base64.b64encode(png_bytes(view)).decode("ascii")
    return entry


def _explain_png(served: ServedModel, image: np.ndarray, framework: str | None, method: str, layer: str | None,
                 target: str | None) -> Response:
    """The explanation overlaid on the network's input, with what it explains in headers."""
    spec, categories = served.bundle.meta.preprocess, served.bundle.meta.categories
    if method not in METHODS:
        raise HTTPException(422, f"method '{method}' is unknown; choose one of {', '.join(METHODS)}.")
    try:
        index = resolve_class(int(target) if target is not None and target.isdigit() else target, categories)
    except UserInputError as exc:
        raise HTTPException(422, str(exc)) from None
    batch = _batch(served, [image])
    try:
        result = served.framework(framework).call("explain", (batch, tuple(categories), method, layer, index))[0]
    except AlexnetLabError as exc:  # e.g. an unknown layer: the worker names it
        raise HTTPException(422, str(exc)) from None
    pixels = overlay(cropped_view(image, spec), result.heat)
    headers = {"X-Explained-Class": str(result.class_index), "X-Explained-Label": result.label,
               "X-Explained-Probability": f"{result.probability:.6f}",
               "X-Explained-Peak": f"{result.peak[0]},{result.peak[1]}"}
    return Response(png_bytes(pixels), media_type="image/png", headers=headers)


def _page() -> str:
    return resources.files("alexnet_lab.serve").joinpath("static/index.html").read_text(encoding="utf-8")


def _log_requests(app: FastAPI, served: ServedModel) -> None:
    limit = MAX_FILES * served.max_bytes + 1024 * 1024  # every file at its limit, plus the multipart framing

    @app.middleware("http")
    async def one_line_per_request(request: Request, call_next):
        started = time.perf_counter()
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:  # refused before the body is read and spooled
            response = JSONResponse({"detail": f"the request is {int(declared):,} bytes, over the {limit:,}-byte "
                                               "limit; send fewer or smaller images."}, status_code=413)
        else:
            response = await call_next(request)
        log.info("%s %s %d %.1f ms", request.method, request.url.path, response.status_code,
                 1000 * (time.perf_counter() - started))
        return response


def create_app(served: ServedModel) -> FastAPI:
    """The application over an already loaded model (workers started by the caller)."""
    app = FastAPI(title="alexnet-lab", version=served.card.get("producer", ""), docs_url="/api/docs",
                  openapi_url="/api/openapi.json")
    _log_requests(app, served)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return _page()

    @app.get("/api/info")
    def info() -> dict:
        return served.card

    @app.get("/api/curves.png")
    def curves() -> Response:
        if served.curves is None:
            raise HTTPException(404, "the weights are not a training run folder with curves.")
        return Response(served.curves.read_bytes(), media_type="image/png")

    @app.post("/api/predict")
    async def predict(images: list[UploadFile] = File(...), framework: str | None = Query(None),
                      top: int = Query(5, ge=1, le=1000)) -> JSONResponse:
        decoded = await _read_images(images, served)
        _refuse_if_all_failed(decoded)
        return JSONResponse(_predict_document(served, decoded, framework, top))

    @app.post("/api/compare")
    async def compare(images: list[UploadFile] = File(...), top: int = Query(5, ge=1, le=1000)) -> JSONResponse:
        decoded = await _read_images(images, served)
        _refuse_if_all_failed(decoded)
        return JSONResponse([{"image": n, "error": str(a), "status": a.status} if isinstance(a, UploadError)
                             else _compare_one(served, n, a, top) for n, a in decoded])

    @app.post("/api/input")
    async def network_input(images: list[UploadFile] = File(...)) -> Response:
        decoded = await _read_images(images[:1], served)
        _refuse_if_all_failed(decoded)
        return Response(png_bytes(cropped_view(decoded[0][1], served.bundle.meta.preprocess)), media_type="image/png")
    @app.post("/api/explain")
    async def explain(images: list[UploadFile] = File(...), framework: str | None = Query(None),
                      method: str = Query("gradcam"), layer: str | None = Query(None),
                      target: str | None = Query(None, alias="class")) -> Response:
        decoded = await _read_images(images[:1], served)
        _refuse_if_all_failed(decoded)
        return _explain_png(served, decoded[0][1], framework, method, layer, target)

    return app
