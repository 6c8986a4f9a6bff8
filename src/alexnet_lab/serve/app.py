"""`alexnet serve`: a FastAPI application over one loaded model, in both frameworks.

Routes (shapes in the OpenAPI description at /openapi.json, browsable at /docs):
- `GET /` the page; `GET /healthz` (the process is alive); `GET /readyz` (every framework's
  worker is loaded and answering: 200, else 503); `GET /metrics` (Prometheus text).
- `GET /api/info` the model card; `GET /api/curves.png` a run's training curves.
- `POST /api/predict` multipart `images` -> the `alexnet predict --json` document.
- `POST /api/compare` what the page shows: both frameworks' top-k, their largest probability
  difference, and the input as the network saw it.
- `POST /api/input` that input as a PNG.
- `POST /api/explain` a Grad-CAM or saliency overlay on that input: a PNG with what it explains
  in X-Explained-* headers (the label also RFC 8187-encoded), or with `format=json` one JSON
  object holding the same facts and the PNG in base64.

The server process imports no framework: it decodes and preprocesses with numpy, exactly as the
commands do, off the event loop, and asks one supervised worker process per framework
(serve.workers) for logits, through a micro-batcher (serve.batching) per framework.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import urllib.parse
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import AlexnetLabError, UserInputError
from alexnet_lab.core.explain import METHODS
from alexnet_lab.core.preprocessing import preprocess
from alexnet_lab.core.softmax import softmax
from alexnet_lab.explain.draw import overlay
from alexnet_lab.explain.maps import cropped_view, resolve_class
from alexnet_lab.inference.predict import top_k
from alexnet_lab.serve.batching import BatchingOptions, MicroBatcher
from alexnet_lab.serve.metrics import ServeMetrics
from alexnet_lab.serve.middleware import BodyLimit, RequestObserver, TokenGate, install_error_handlers
from alexnet_lab.serve.schemas import ERRORS, CompareAnswer, Explanation, Health, ImageAnswer, Readiness
from alexnet_lab.serve.uploads import DEFAULT_MAX_UPLOAD_BYTES, UploadError, decode_upload, png_bytes
from alexnet_lab.serve.workers import FrameworkWorker, WorkerUnavailable

MAX_FILES = 32  # images in one request
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024  # a request's whole body, multipart framing included


@dataclass
class ServedModel:
    """What the server holds: the weights (numpy), their card, a worker per framework, its options."""

    bundle: WeightBundle
    card: dict[str, Any]
    workers: dict[str, FrameworkWorker]
    curves: Path | None = None
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    batching: BatchingOptions = field(default_factory=BatchingOptions)
    token: str | None = None
    cors: tuple[str, ...] = ()
    metrics: ServeMetrics = field(default_factory=ServeMetrics)
    batchers: dict[str, MicroBatcher] = field(default_factory=dict)

    def framework(self, name: str | None) -> str:
        if name is None:
            return next(iter(self.workers))
        if name not in self.workers:
            raise HTTPException(422, f"framework '{name}' is not served here; choose one of {', '.join(self.workers)}.")
        return name

    async def logits(self, framework: str, batch: np.ndarray) -> np.ndarray:
        return await self.batchers[framework].logits(batch)

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()


def display_name(name: str | None) -> str:
    """An upload's file name as we echo it: no control characters (NUL, line breaks), at most 200 characters."""
    cleaned = re.sub(r"[\x00-\x1f\x7f]", "", name or "").strip()
    return cleaned[:200] or "upload"


async def _read_images(files: list[UploadFile], served: ServedModel) -> list[tuple[str, np.ndarray | UploadError]]:
    """(name, RGB array or the refusal) per upload, in order; decoding runs off the event loop."""
    if not files:
        raise HTTPException(422, "send one or more images in the multipart field 'images'.")
    if len(files) > MAX_FILES:
        raise HTTPException(413, f"at most {MAX_FILES} images per request; received {len(files)}.")
    out = []
    for upload in files:
        name = display_name(upload.filename)
        data = await upload.read(served.max_bytes + 1)  # one byte over the limit is enough to refuse it
        try:
            out.append((name, await asyncio.to_thread(decode_upload, data, name, served.max_bytes,
                                                      served.bundle.meta.preprocess)))
        except UploadError as exc:
            out.append((name, exc))
    return out


def _refuse_if_all_failed(images: list[tuple[str, Any]]) -> None:
    """With every upload refused there is nothing to answer: the first refusal's status."""
    errors = [result for _, result in images if isinstance(result, UploadError)]
    if errors and len(errors) == len(images):
        raise HTTPException(errors[0].status, str(errors[0]))


async def _batch(served: ServedModel, arrays: list[np.ndarray]) -> np.ndarray:
    """uint8 RGB images -> the NHWC float32 batch the weights expect (the commands' preprocessing)."""
    spec = served.bundle.meta.preprocess
    return await asyncio.to_thread(lambda: np.stack([preprocess(a, spec) for a in arrays]))


async def _predictions(served: ServedModel, framework: str, batch: np.ndarray,
                       top: int) -> tuple[list[list[dict]], np.ndarray]:
    """(top-k rows of `predict --json`, probabilities) for a preprocessed batch."""
    probabilities = softmax(await served.logits(framework, batch))
    return [[p.to_dict() for p in row] for row in top_k(probabilities, served.bundle.meta.categories, top)], probabilities


async def _predict_document(served: ServedModel, images: list[tuple[str, Any]], framework: str,
                            top: int) -> list[dict]:
    good = [(i, a) for i, (_, a) in enumerate(images) if not isinstance(a, UploadError)]
    rows = (await _predictions(served, framework, await _batch(served, [a for _, a in good]), top))[0] if good else []
    by_index = dict(zip([i for i, _ in good], rows))
    return [{"image": name, "predictions": by_index[i]} if i in by_index else {"image": name, "error": str(result)}
            for i, (name, result) in enumerate(images)]


async def _compare_one(served: ServedModel, name: str, image: np.ndarray, top: int) -> dict:
    entry: dict[str, Any] = {"image": name, "frameworks": {}}
    batch = await _batch(served, [image])  # preprocessed once for every framework
    answers = await asyncio.gather(*(_predictions(served, f, batch, top) for f in served.workers))
    probabilities = {}
    for framework, (rows, probabilities[framework]) in zip(served.workers, answers):
        entry["frameworks"][framework] = rows[0]
    values = list(probabilities.values())
    entry["max_probability_difference"] = (float(np.abs(values[0] - values[1]).max()) if len(values) == 2 else 0.0)
    view = cropped_view(image, served.bundle.meta.preprocess)
    entry["input_png"] = base64.b64encode(png_bytes(view)).decode("ascii")
    return entry


def _label_headers(label: str) -> dict[str, str]:
    """The label as a header: plain when it is printable ASCII, else an ASCII stand-in; always also
    RFC 8187-encoded (UTF-8, percent-escaped) in X-Explained-Label*, so any Unicode name travels."""
    plain = label if label.isascii() and label.isprintable() else label.encode("ascii", "replace").decode().replace("\n", " ")
    plain = "".join(c if c.isprintable() else "?" for c in plain)
    return {"X-Explained-Label": plain, "X-Explained-Label*": "UTF-8''" + urllib.parse.quote(label, safe="")}


async def _explain(served: ServedModel, image: np.ndarray, framework: str, method: str, layer: str | None,
                   target: str | None, as_json: bool) -> Response:
    """The explanation overlaid on the network's input, with what it explains."""
    spec, categories = served.bundle.meta.preprocess, served.bundle.meta.categories
    if method not in METHODS:
        raise HTTPException(422, f"method '{method}' is unknown; choose one of {', '.join(METHODS)}.")
    try:
        index = resolve_class(int(target) if target is not None and target.isdigit() else target, categories)
    except UserInputError as exc:
        raise HTTPException(422, str(exc)) from None
    batch = await _batch(served, [image])
    worker = served.workers[framework]
    try:
        result = (await asyncio.to_thread(worker.call, "explain", (batch, tuple(categories), method, layer, index)))[0]
    except WorkerUnavailable:
        raise  # 503 from its handler
    except AlexnetLabError as exc:
        raise HTTPException(422, str(exc)) from None  # e.g. an unknown layer: the worker names it
    png = png_bytes(overlay(cropped_view(image, spec), result.heat))
    facts = {"class_index": int(result.class_index), "label": result.label, "probability": float(result.probability),
             "peak": [int(result.peak[0]), int(result.peak[1])], "method": method, "framework": framework}
    if as_json:
        return JSONResponse({**facts, "png": base64.b64encode(png).decode("ascii")})
    headers = {"X-Explained-Class": str(result.class_index), **_label_headers(result.label),
               "X-Explained-Probability": f"{result.probability:.6f}",
               "X-Explained-Peak": f"{result.peak[0]},{result.peak[1]}"}
    return Response(png, media_type="image/png", headers=headers)


def _page() -> str:
    return resources.files("alexnet_lab.serve").joinpath("static/index.html").read_text(encoding="utf-8")


async def _readiness(served: ServedModel) -> tuple[bool, dict[str, Any]]:
    states = {}
    for framework, worker in served.workers.items():
        ready = await asyncio.to_thread(worker.ready)
        served.metrics.ready.labels(framework).set(1 if ready else 0)
        states[framework] = {"ready": ready, **worker.status(), "queue": served.batchers[framework].depth
                             if framework in served.batchers else 0}
    return all(s["ready"] for s in states.values()), states


def _lifespan(served: ServedModel):
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        metrics = served.metrics
        for framework, worker in served.workers.items():
            batcher = MicroBatcher(worker, served.batching, metrics.batch_size.labels(framework).observe,
                                   metrics.queue_depth.labels(framework).set)
            batcher.start()
            served.batchers[framework] = batcher
            worker.on_restart = metrics.restarts.labels(framework).inc
        yield
        for batcher in served.batchers.values():
            await batcher.stop()

    return lifespan


def create_app(served: ServedModel) -> FastAPI:
    """The application over an already loaded model (workers started by the caller)."""
    app = FastAPI(title="alexnet-lab", version=served.card.get("producer", ""), docs_url="/docs",
                  openapi_url="/openapi.json", lifespan=_lifespan(served),
                  description="AlexNet predictions and explanations from PyTorch and Keras side by side.")
    install_error_handlers(app)
    if served.token:
        app.add_middleware(TokenGate, token=served.token)
    if served.cors:  # added after the gate, so it wraps it: a 401 to another origin still carries CORS headers
        app.add_middleware(CORSMiddleware, allow_origins=list(served.cors), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization"], expose_headers=["X-Explained-Label*", "X-Explained-Class"])
    app.add_middleware(BodyLimit, limit=served.max_request_bytes)
    _routes(app, served)
    app.add_middleware(RequestObserver, metrics=served.metrics,  # outermost: sees refusals (401, 413) too
                       known_paths=frozenset(route.path for route in app.routes))
    return app


def _routes(app: FastAPI, served: ServedModel) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return _page()

    @app.get("/api/docs", include_in_schema=False)
    def docs_alias() -> Response:
        return Response(status_code=307, headers={"Location": "/docs"})

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi_alias() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/healthz", summary="The process is alive", response_model=Health)
    def healthz() -> dict:
        return {"status": "alive"}

    @app.get("/readyz", summary="Every framework's worker is loaded and answering (200), or not (503)",
             responses={200: {"model": Readiness}, 503: {"model": Readiness}})
    async def readyz() -> JSONResponse:
        ready, states = await _readiness(served)
        return JSONResponse({"ready": ready, "workers": states}, status_code=200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def metrics() -> Response:
        return Response(served.metrics.exposition(), media_type=served.metrics.content_type)

    @app.get("/api/info", summary="The model card: variant, classes, preprocessing, parameters, digest")
    def info() -> dict:
        return served.card

    @app.get("/api/curves.png", summary="A training run's curves", response_class=Response)
    def curves() -> Response:
        if served.curves is None:
            raise HTTPException(404, "the weights are not a training run folder with curves.")
        return Response(served.curves.read_bytes(), media_type="image/png")

    @app.post("/api/predict", summary="Top-k per image: the `alexnet predict --json` document",
              responses={200: {"model": list[ImageAnswer]}, **ERRORS})
    async def predict(images: list[UploadFile] = File(...), framework: str | None = Query(None),
                      top: int = Query(5, ge=1, le=1000)) -> JSONResponse:
        decoded = await _read_images(images, served)
        _refuse_if_all_failed(decoded)
        return JSONResponse(await _predict_document(served, decoded, served.framework(framework), top))

    @app.post("/api/compare", summary="Both frameworks' top-k, their largest difference, the network's input",
              responses={200: {"model": list[CompareAnswer]}, **ERRORS})
    async def compare(images: list[UploadFile] = File(...), top: int = Query(5, ge=1, le=1000)) -> JSONResponse:
        decoded = await _read_images(images, served)
        _refuse_if_all_failed(decoded)
        return JSONResponse([{"image": n, "error": str(a), "status": a.status} if isinstance(a, UploadError)
                             else await _compare_one(served, n, a, top) for n, a in decoded])

    @app.post("/api/input", summary="The input as the network sees it (PNG)", response_class=Response)
    async def network_input(images: list[UploadFile] = File(...)) -> Response:
        decoded = await _read_images(images[:1], served)
        _refuse_if_all_failed(decoded)
        return Response(png_bytes(cropped_view(decoded[0][1], served.bundle.meta.preprocess)), media_type="image/png")

    @app.post("/api/explain", summary="A Grad-CAM or saliency overlay (PNG, or JSON with format=json)",
              responses={200: {"content": {"image/png": {}}, "model": Explanation}, **ERRORS})
    async def explain(images: list[UploadFile] = File(...), framework: str | None = Query(None),
                      method: str = Query("gradcam"), layer: str | None = Query(None),
                      target: str | None = Query(None, alias="class"),
                      format: str = Query("png", pattern="^(png|json)$")) -> Response:
        decoded = await _read_images(images[:1], served)
        _refuse_if_all_failed(decoded)
        return await _explain(served, decoded[0][1], served.framework(framework), method, layer, target,
                              format == "json")
