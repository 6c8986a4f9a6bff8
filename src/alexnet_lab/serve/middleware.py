"""The service's edges: body size while it streams, the bearer token, JSON errors, request metrics.

- :class:`BodyLimit` counts request body bytes as they arrive (chunked or not) and answers 413
  the moment the limit is passed, before the multipart parser has spooled the rest; a declared
  Content-Length over the limit is refused before anything is read.
- :class:`TokenGate` requires `Authorization: Bearer TOKEN` on the API and /metrics when the
  server has a token (compared in constant time). The page, /healthz, /readyz and the OpenAPI
  description stay open: they hold no data.
- :func:`install_error_handlers`: every error is a JSON body `{"detail": "..."}`; an unexpected
  exception is logged with its traceback on the server and answered with a message that names no
  file or path.
"""

from __future__ import annotations

import hmac
import json
import logging
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from alexnet_lab.core.errors import AlexnetLabError
from alexnet_lab.serve.metrics import ServeMetrics
from alexnet_lab.serve.workers import WorkerUnavailable

log = logging.getLogger(__name__)

OPEN_PATHS = ("/", "/healthz", "/readyz", "/openapi.json", "/docs", "/api/docs", "/api/openapi.json",
              "/docs/oauth2-redirect", "/api/docs/oauth2-redirect")


async def _send_json(send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class _TooLarge(StarletteHTTPException):
    """Raised from `receive`: FastAPI lets HTTP exceptions through its body parsing, and the
    app's handler turns it into the 413 JSON answer."""

    def __init__(self, detail: str):
        super().__init__(413, detail, headers={"Connection": "close"})


class BodyLimit:
    """Refuse request bodies over `limit` bytes while they stream (pure ASGI middleware)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    def _message(self, size: str) -> dict:
        return {"detail": f"the request is {size} bytes, over the {self.limit:,}-byte limit; send fewer or smaller images."}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await _send_json(send, 413, self._message(f"{int(declared):,}"), {"connection": "close"})
        received, started = 0, False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge(self._message(f"more than {self.limit:,}")["detail"])
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge as exc:
            if not started:
                await _send_json(send, 413, {"detail": exc.detail}, {"connection": "close"})


class TokenGate:
    """Require the bearer token on every path but the open ones (pure ASGI middleware)."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["method"] == "OPTIONS":
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.token):
            return await _send_json(send, 401, {"detail": "this server needs its access token: send the header "
                                                          "'Authorization: Bearer TOKEN'."},
                                    {"www-authenticate": "Bearer"})
        return await self.app(scope, receive, send)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "; ".join(parts) or "the request is not valid"


def install_error_handlers(app: FastAPI) -> None:
    """JSON bodies for every error: HTTP errors, validation, a busy or restarting worker, the unexpected."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(WorkerUnavailable)
    async def unavailable(request: Request, exc: WorkerUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(AlexnetLabError)
    async def model_error(request: Request, exc: AlexnetLabError) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "the model could not answer this request; see the server log."}, status_code=500)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the server log."}, status_code=500)


class RequestObserver:
    """One log line and one metrics observation per request, refusals included (pure ASGI).

    The endpoint label is the matched route's template (set in the scope by the router), the path
    of a request refused before routing when it is a route's, or "other".
    """

    def __init__(self, app, metrics: ServeMetrics, known_paths: frozenset[str] = frozenset()):
        self.app, self.metrics, self.known_paths = app, metrics, known_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def tracked_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None)  # refused before routing: the path, if a route's
            endpoint = route or (scope["path"] if scope["path"] in self.known_paths else "other")
            self.metrics.observe_request(endpoint, status, seconds)
            log.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, 1000 * seconds)
