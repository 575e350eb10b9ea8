"""``rnnkit serve``: trained runs on the network -- each app's own endpoints, and recurrent models
as stateful streams, many streams batched per step.

Every run directory is served under its name by the app that trained it (:mod:`._services`):
text generation streamed token by token, a classifier's predictions, a forecast from a CSV, the
detector's scores and flags, translations, tags. A stream is a sequence the server carries the
state of between requests: ``POST /streams`` opens one, ``POST /streams/{id}/step`` (or a
message on the WebSocket ``/streams/{id}/ws``) sends the next observation and answers the
model's output at that step (a detector's: its score and flag), ``DELETE /streams/{id}`` closes
it. The steps of different streams that arrive while a tick runs (and, with ``batch_window_ms``,
up to that long after, while the last tick's streams come back) run as **one** batched step of
the model (:mod:`._streams`).

With ``state_dir`` the streams are snapshotted (atomically, safetensors) -- after every tick,
before any step is answered, when ``snapshot_every`` is 0, so an acknowledged step survives a
SIGKILL; every ``snapshot_every`` seconds and at shutdown otherwise -- and a new server on the
same directory resumes every open stream.

Endpoints (JSON in and out; errors ``{"error": ..., "field": ...}`` with a 4xx status):

- ``GET /``: the web page; ``GET /models``: each served model, its app, endpoints and settings;
- ``POST /models/{name}/{action}``: the app's endpoints (``generate``, ``predict``, ``forecast``,
  ``detect``, ``translate``, ``tag``), see ``GET /models``;
- ``POST /streams`` ``{"model": NAME}`` -> 201 ``{"id", "model"}``; 429 at ``max_streams``;
- ``POST /streams/{id}/step`` ``{"input": ...}`` -> ``{"output": [...], "steps": n}`` (a detector's
  ``{"score", "flag", "prediction", "steps"}``); the WebSocket ``/streams/{id}/ws`` the same, a
  message each way per step;
- ``GET /streams/{id}``, ``DELETE /streams/{id}``.

With ``rate_limit`` every client address gets that many requests (and WebSocket messages) a
second, ``rate_burst`` at once; past it, 429.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from .._extras import require
from ..apps.base import finite
from ._protocol import RequestError, ServeConfig
from ._services import SERVICES, Endpoint, Service, load_service, register_service, service_for
from ._streams import ScorerPool, StreamPool, StreamServer

PAGE = Path(__file__).with_name("static") / "index.html"

__all__ = ["ServeConfig", "RequestError", "StreamPool", "ScorerPool", "StreamServer", "RateLimiter", "Service",
           "Endpoint", "SERVICES", "register_service", "service_for", "load_service", "create_app", "load_services",
           "run_server"]  # fmt: skip


class RateLimiter:
    """A token bucket per client: ``rate`` requests a second on average, ``burst`` at once.

    >>> limiter = RateLimiter(rate=1.0, burst=2)
    >>> [limiter.wait("10.0.0.1", now=0.0) for _ in range(3)]
    [0.0, 0.0, 1.0]
    >>> limiter.wait("10.0.0.1", now=1.0), limiter.wait("10.0.0.2", now=1.0)
    (0.0, 0.0)
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when counted)

    def wait(self, client: str, now: float | None = None) -> float:
        """0.0 and one request counted if ``client`` may make one now, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        tokens, then = self.buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self.buckets[client] = (tokens - 1.0, now)
            if len(self.buckets) > 10000:
                self.prune(now)
            return 0.0
        self.buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def prune(self, now: float) -> None:
        """Forget the clients whose bucket is full again (they are as if never seen)."""
        self.buckets = {c: (t, w) for c, (t, w) in self.buckets.items() if t + (now - w) * self.rate < self.burst}


def _dumps(content: Any) -> str:
    """Strict JSON; a non-finite float (a model's output gone to infinity) as null."""
    try:
        return json.dumps(content, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(finite(content), separators=(",", ":"))


class _ClientGone(Exception):
    """The client of a streamed answer went away: the work stops at its next event."""


def create_app(models: dict[str, Any], config: ServeConfig = ServeConfig()):
    """The Starlette application serving ``models``: name -> a :class:`~._services.Service`, an
    app's predictor (a :class:`~rnnkit.apps.text.TextGenerator`, ...) or an rnnkit layer or model."""
    require("starlette", "serve", "rnnkit serve")
    import contextlib

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response, StreamingResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    if not models:
        raise ValueError("models must name at least one model to serve, got none")
    services: dict[str, Service] = {
        name: m if isinstance(m, Service) else service_for(name, m, config) for name, m in models.items()
    }
    pools = {name: pool for name, s in services.items() if (pool := s.pool()) is not None}
    server = StreamServer(pools, config)
    limiter = RateLimiter(config.rate_limit, config.rate_burst) if config.rate_limit else None
    expected = f"Bearer {config.token}".encode() if config.token is not None else b""

    def answer(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(_dumps(content), status, headers, media_type="application/json")

    def error(e: RequestError, headers: dict[str, str] | None = None) -> Response:
        return answer({"error": e.message, "field": e.field}, e.status, headers)

    def check_client(client: str, authorization: str, *, page: bool = False) -> None:
        if limiter is not None:
            wait = limiter.wait(client)
            if wait:
                raise RequestError(429, f"client {client} is over its rate limit of {config.rate_limit:g} requests a"
                                        f" second; retry in {wait:.2f} s", None)  # fmt: skip
        if config.token is not None and not page and not secrets.compare_digest(authorization.encode(), expected):
            raise RequestError(401, "a valid 'Authorization: Bearer TOKEN' header is required", "authorization")

    async def body(request: Request) -> dict[str, Any]:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > config.max_body:
            raise RequestError(413, f"request body must be at most {config.max_body} bytes, got {size}", "body")
        raw = await request.body()
        if len(raw) > config.max_body:
            raise RequestError(413, f"request body must be at most {config.max_body} bytes, got {len(raw)}", "body")
        return parse_object(raw)

    def parse_object(raw: bytes | str) -> dict[str, Any]:
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise RequestError(400, f"request body must be JSON: {e}", "body") from None
        if not isinstance(data, dict):
            raise RequestError(400, f"request body must be a JSON object, got {type(data).__name__}", "body")
        return data

    def handler(fn, *, page: bool = False):
        async def wrapped(request: Request):
            try:
                check_client(request.client.host if request.client else "-", request.headers.get("authorization", ""),
                             page=page)  # fmt: skip
                return await fn(request)
            except RequestError as e:
                retry = {"Retry-After": "1"} if e.status == 429 else None
                return error(e, retry)

        return wrapped

    async def page(request: Request):
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def list_models(request: Request):
        return answer({"models": [describe(name, s) for name, s in services.items()]})

    def describe(name: str, service: Service) -> dict[str, Any]:
        endpoints = {a: {"method": "POST", "path": f"/models/{name}/{a}", "help": e.help, "streams": e.streams}
                     for a, e in service.endpoints().items()}  # fmt: skip
        if name in pools:
            endpoints["streams"] = {"method": "POST", "path": "/streams", "help": "open a stream: POST"
                                    " /streams/{id}/step or the WebSocket /streams/{id}/ws, one observation a step",
                                    "streams": False}  # fmt: skip
        return {"name": name, "app": service.app, "endpoints": endpoints, **service.describe()}

    async def call(request: Request):
        name, action = request.path_params["name"], request.path_params["action"]
        if name not in services:
            raise RequestError(404, f"model must be one of {', '.join(map(repr, services))}, got {name!r}", "model")
        endpoints = services[name].endpoints()
        if action not in endpoints:
            offered = ", ".join(map(repr, endpoints)) or "none (only streams)"
            raise RequestError(404, f"action must be one of {name!r}'s endpoints, {offered}; got {action!r}", "action")
        endpoint = endpoints[action]
        data = await body(request)
        args = endpoint.parse(data)
        streamed = data.get("stream", True) if endpoint.streams else False
        if not isinstance(streamed, bool):
            raise RequestError(422, f"stream must be true or false, got {streamed!r}", "stream")
        if streamed:
            return StreamingResponse(events(endpoint, args), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip
        try:
            return answer(await run_in_threadpool(endpoint.call, **args))
        except (ValueError, TypeError) as e:  # the predictor's own check of the request's content
            raise RequestError(422, str(e), endpoint.field) from None

    async def events(endpoint: Endpoint, args: dict[str, Any]):
        """Server-Sent Events of a streaming endpoint: its events as ``call`` emits them, then
        ``done`` (the answer) or ``error``; ``call`` runs in a thread and stops if the client goes."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        gone = threading.Event()

        def emit(event: str, data: dict) -> None:
            if gone.is_set():
                raise _ClientGone
            loop.call_soon_threadsafe(queue.put_nowait, (event, data))

        def work() -> None:
            try:
                item = ("done", endpoint.call(emit=emit, **args))
            except _ClientGone:
                return
            except (ValueError, TypeError) as e:
                item = ("error", {"error": str(e), "field": endpoint.field})
            except Exception as e:  # noqa: BLE001 - the stream has begun: the client hears of it as an event
                item = ("error", {"error": f"{type(e).__name__}: {e}", "field": None})
            loop.call_soon_threadsafe(queue.put_nowait, item)

        loop.run_in_executor(None, work)
        try:
            while True:
                event, data = await queue.get()
                yield f"event: {event}\ndata: {_dumps(data)}\n\n"
                if event in ("done", "error"):
                    return
        finally:
            gone.set()

    async def open_stream(request: Request):
        data = await body(request)
        model = data.get("model", next(iter(pools)) if len(pools) == 1 else None)
        stream_id = server.open(model)
        return answer({"id": stream_id, "model": model}, 201)

    async def step(scope, receive, send) -> None:
        """``POST /streams/{id}/step`` as a bare ASGI app, the hot path: what a step costs beside
        the model is this, the server's HTTP parsing and the JSON (no routing, no request object)."""
        try:
            headers = dict(scope["headers"])
            client = scope["client"][0] if scope.get("client") else "-"
            check_client(client, headers.get(b"authorization", b"").decode("latin-1"))
            stream_id = scope["path"][len("/streams/") : -len("/step")]
            server.pool_of(stream_id)
            raw, more = b"", True
            while more:
                message = await receive()
                raw += message.get("body", b"")
                more = message.get("more_body", False)
                if len(raw) > config.max_body:
                    raise RequestError(413, f"request body must be at most {config.max_body} bytes", "body")
            data = parse_object(raw)
            if "input" not in data:
                raise RequestError(422, "request must have an 'input': one observation", "input")
            status, content = 200, _dumps(await server.step(stream_id, data["input"])).encode()
        except RequestError as e:
            status, content = e.status, _dumps({"error": e.message, "field": e.field}).encode()
        response = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        if status == 429:
            response.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": status, "headers": response})
        await send({"type": "http.response.body", "body": content})

    async def stream_info(request: Request):
        stream_id = request.path_params["id"]
        pool = server.pool_of(stream_id)
        return answer({"id": stream_id, "model": pool.name, "steps": pool.steps[stream_id]})

    async def close_stream(request: Request):
        stream_id = request.path_params["id"]
        server.close(stream_id)
        return answer({"closed": stream_id})

    async def stream_socket(socket: WebSocket):
        """One message in, one out, per step: ``{"input": ...}`` -> the step's answer, or
        ``{"error", "field", "status"}`` (the socket stays open, but not for a stream that is gone).
        A browser, which cannot set headers here, may give the token as ``?token=``."""
        client = socket.client.host if socket.client else "-"
        authorization = socket.headers.get("authorization") or f"Bearer {socket.query_params.get('token', '')}"
        try:
            check_client(client, authorization)
        except RequestError:
            await socket.close(code=1008)  # before the handshake: the client sees a 403
            return
        await socket.accept()
        stream_id = socket.path_params["id"]
        if stream_id not in server.owner:
            message = f"no open stream {stream_id!r} (closed, expired, or never opened)"
            await socket.send_text(_dumps({"error": message, "field": "id", "status": 404}))
            await socket.close(code=4404)
            return
        while True:
            try:
                message = await socket.receive_text()
            except WebSocketDisconnect:
                return
            try:
                if len(message) > config.max_body:
                    raise RequestError(413, f"a message must be at most {config.max_body} bytes, got {len(message)}",
                                       "body")  # fmt: skip
                check_client(client, authorization)
                data = parse_object(message)
                if "input" not in data:
                    raise RequestError(422, "a message must have an 'input': one observation", "input")
                await socket.send_text(_dumps(await server.step(stream_id, data["input"])))
            except RequestError as e:
                await socket.send_text(_dumps({"error": e.message, "field": e.field, "status": e.status}))
                if e.status == 404:
                    await socket.close(code=4404)
                    return

    @contextlib.asynccontextmanager
    async def lifespan(app):
        tasks = [asyncio.create_task(server.run_ticks()), asyncio.create_task(server.run_housekeeping())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            server.snapshot()  # SIGTERM: uvicorn shuts down gracefully, so this runs

    app = Starlette(
        routes=[
            Route("/", handler(page, page=True), methods=["GET"]),
            Route("/models", handler(list_models), methods=["GET"]),
            Route("/models/{name}/{action}", handler(call), methods=["POST"]),
            Route("/streams", handler(open_stream), methods=["POST"]),
            Route("/streams/{id}", handler(stream_info), methods=["GET"]),
            Route("/streams/{id}", handler(close_stream), methods=["DELETE"]),
            WebSocketRoute("/streams/{id}/ws", stream_socket),
        ],
        middleware=[Middleware(_StepsFirst, step=step)],  # POST /streams/{id}/step, the hot path
        lifespan=lifespan,
    )
    app.state.server, app.state.services = server, services
    return app


class _StepsFirst:
    """ASGI middleware: ``POST /streams/{id}/step`` straight to ``step``, past the router."""

    def __init__(self, app, step) -> None:
        self.app, self.step = app, step

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if (scope["type"] == "http" and scope["method"] == "POST" and path.startswith("/streams/")
                and path.endswith("/step") and path.count("/") == 3):  # fmt: skip
            return await self.step(scope, receive, send)
        return await self.app(scope, receive, send)


def load_services(run_dirs: list[str], config: ServeConfig = ServeConfig()) -> dict[str, Service]:
    """Each run directory's service (JSON and safetensors only), named by the directory's name."""
    services: dict[str, Service] = {}
    for run_dir in run_dirs:
        name = Path(run_dir).resolve().name
        if name in services:
            raise ValueError(f"run directories must have distinct names, got {name!r} twice")
        services[name] = load_service(run_dir, config)
    return services


def run_server(run_dirs: list[str], config: ServeConfig = ServeConfig(), *, port: int = 8000) -> None:
    """``rnnkit serve``: uvicorn on ``config.host:port`` (uvloop and httptools where installed)."""
    uvicorn = require("uvicorn", "serve", "rnnkit serve")
    app = create_app(load_services(run_dirs, config), config)
    uvicorn.run(app, host=config.host, port=port, log_level="warning", ws_max_size=config.max_body)
