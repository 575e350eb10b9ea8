"""``rnnkit serve``: recurrent models as stateful streams over HTTP, many streams batched per step.

A stream is a sequence the server carries the state of between requests: ``POST /streams`` opens
one, ``POST /streams/{id}/step`` sends the next observation and answers the model's output at
that step, ``DELETE /streams/{id}`` closes it. Steps of different streams that arrive within
``batch_window_ms`` of each other run as **one** batched step of the model: every open stream's
state lives in one pool tensor per state component, ``(L, capacity, size)``; a tick gathers the
pending streams' rows (``index_select``), runs the model's step once, and scatters the new rows
back (``index_copy_``). No Python runs per stream inside the model, and a stream that has
finished, or sends nothing this tick, is simply not in the batch.

With ``state_dir`` the pools are snapshotted (atomically, safetensors) -- after every tick, before
any step is answered, when ``snapshot_every`` is 0, so an acknowledged step survives a SIGKILL;
every ``snapshot_every`` seconds and at shutdown otherwise -- and a new server on the same
directory resumes every open stream.

Endpoints (JSON in and out; errors ``{"error": ..., "field": ...}`` with a 4xx status):

- ``GET /``: the web page; ``GET /models``: what is served;
- ``POST /streams`` ``{"model": NAME}`` -> 201 ``{"id", "model"}``; 429 at ``max_streams``;
- ``POST /streams/{id}/step`` ``{"input": [floats] | token_id}`` -> ``{"output": [...], "steps": n}``;
- ``GET /streams/{id}``, ``DELETE /streams/{id}``.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._extras import require
from .._io import load_tensors, save_tensors
from ._graphs import StepGraph, initial_state, recurrent_layer

PAGE = Path(__file__).with_name("static") / "index.html"


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"  # this machine only, unless told otherwise
    token: str | None = None  # require "Authorization: Bearer TOKEN"
    state_dir: str | None = None
    snapshot_every: float = 0.0  # seconds; 0: after every tick, before answering
    batch_window_ms: float = 2.0  # how long a tick waits for more streams' steps
    max_batch: int = 4096  # streams per tick at most (1: every step alone)
    max_streams: int = 10000
    idle_timeout: float = 3600.0  # seconds; a stream idle this long is closed
    max_body: int = 65536  # bytes per request
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("snapshot_every", "batch_window_ms", "idle_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        for name in ("max_batch", "max_streams", "max_body"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")


class RequestError(Exception):
    """A bad request: answered with ``status`` and ``{"error": message, "field": field}``."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


class StreamPool:
    """The open streams of one model: their states in pool tensors, stepped in batches.

    ``step(ids, inputs)`` is one tick: one model call for all of ``ids`` (distinct streams).
    """

    def __init__(self, name: str, model: nn.Module, dtype: torch.dtype = torch.float32, capacity: int = 64) -> None:
        self.name = name
        model = model.to(dtype).eval()
        self.graph = StepGraph(model)  # raises for a bidirectional model, naming why
        self.layer = recurrent_layer(model)
        self.vocab = None if self.graph.is_layer else model.input.config.vocab_size
        self.features = None if self.vocab else self.layer.input_size
        self.dtype = dtype
        self.start = tuple(s[:, 0] for s in initial_state(model, 1, dtype))  # each (L, size)
        self.pools = tuple(torch.zeros(s.shape[0], capacity, s.shape[1], dtype=dtype) for s in self.start)
        self.slots: dict[str, int] = {}
        self.steps: dict[str, int] = {}
        self.free = list(range(capacity - 1, -1, -1))

    def _step(self, x: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The model's own batched step (torch.nn's fused cell kernels where the options allow),
        equal to the exported step graph's."""
        model, layer = self.graph.model, self.layer
        hx = state[0] if len(state) == 1 else state
        if self.graph.is_layer:
            y, new = layer.step(x, hx)
        else:
            y, new = layer.step(model.input(x), hx)
            y = model.head(y)
        return y, (new,) if isinstance(new, torch.Tensor) else tuple(new)

    def describe(self) -> dict[str, Any]:
        if not hasattr(self, "_outputs"):
            with torch.no_grad():
                self._outputs = int(self.graph(*self._example())[0].shape[-1])
        return {"name": self.name, "input": {"vocab_size": self.vocab} if self.vocab else {"features": self.features},
                "outputs": self._outputs, "state": dict(zip(self.layer.state_names, (s.shape for s in self.start))),
                "open_streams": len(self.slots)}  # fmt: skip

    def _example(self):
        x = torch.zeros(1, dtype=torch.int64) if self.vocab else torch.zeros(1, self.features, dtype=self.dtype)
        return (x, *(s.unsqueeze(1) for s in self.start))

    def open(self, stream_id: str, state: tuple[torch.Tensor, ...] | None = None, steps: int = 0) -> None:
        if not self.free:
            self._grow()
        slot = self.free.pop()
        for pool, value in zip(self.pools, state or self.start):
            pool[:, slot] = value
        self.slots[stream_id], self.steps[stream_id] = slot, steps

    def close(self, stream_id: str) -> None:
        self.free.append(self.slots.pop(stream_id))
        del self.steps[stream_id]

    def _grow(self) -> None:
        capacity = self.pools[0].shape[1]
        self.pools = tuple(torch.cat([p, torch.zeros_like(p)], dim=1) for p in self.pools)
        self.free.extend(range(2 * capacity - 1, capacity - 1, -1))

    def parse(self, value: Any) -> Any:
        """One observation from JSON, checked: ``features`` finite numbers, or a token id."""
        if self.vocab:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < self.vocab:
                raise RequestError(422, f"input must be a token id in [0, {self.vocab}), got {value!r}", "input")
            return value
        if not isinstance(value, list) or len(value) != self.features:
            got = f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__
            raise RequestError(422, f"input must be a list of {self.features} numbers, got {got}", "input")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
            raise RequestError(422, "input must hold finite numbers (no NaN, infinity, strings or null)", "input")
        return value

    @torch.no_grad()
    def step(self, ids: list[str], inputs: list[Any]) -> list[list[float]]:
        """One tick: the streams ``ids`` (distinct) advance by one step each, in one model call."""
        index = torch.tensor([self.slots[i] for i in ids], dtype=torch.int64)
        if self.vocab:
            x = torch.tensor(inputs, dtype=torch.int64)  # (B,)
        else:
            x = torch.tensor(inputs, dtype=self.dtype)  # (B, F)
        state = tuple(p.index_select(1, index) for p in self.pools)  # gather: each (L, B, size)
        y, new = self._step(x, state)
        for pool, rows in zip(self.pools, new):
            pool.index_copy_(1, index, rows)  # scatter
        for i in ids:
            self.steps[i] += 1
        return y.tolist()

    # --- snapshots: one safetensors file per model, "<id>/<component>" and "<id>/steps" -------
    def snapshot(self, directory: Path) -> None:
        tensors = {}
        for stream_id, slot in self.slots.items():
            for name, pool in zip(self.layer.state_names, self.pools):
                tensors[f"{stream_id}/{name}"] = pool[:, slot].clone()
            tensors[f"{stream_id}/steps"] = torch.tensor(self.steps[stream_id])
        if not tensors:
            tensors["_empty"] = torch.zeros(0)
        save_tensors(directory / f"{self.name}.safetensors", tensors)

    def restore(self, directory: Path) -> list[str]:
        path = directory / f"{self.name}.safetensors"
        if not path.exists():
            return []
        tensors = load_tensors(path)
        ids = sorted({key.split("/")[0] for key in tensors if key != "_empty"})
        for stream_id in ids:
            state = tuple(tensors[f"{stream_id}/{name}"].to(self.dtype) for name in self.layer.state_names)
            if any(s.shape != t.shape for s, t in zip(state, self.start)):
                raise ValueError(f"{path}: stream {stream_id} has a state of another shape than model {self.name!r}'s")
            self.open(stream_id, state, int(tensors[f"{stream_id}/steps"]))
        return ids


class StreamServer:
    """The service's state and its batching: streams by id, a queue of pending steps, the ticks."""

    def __init__(self, models: dict[str, nn.Module], config: ServeConfig = ServeConfig()) -> None:
        if not models:
            raise ValueError("models must name at least one model to serve, got none")
        self.config = config
        dtype = getattr(torch, config.dtype)
        self.pools = {name: StreamPool(name, model, dtype) for name, model in models.items()}
        self.owner: dict[str, str] = {}  # stream id -> model name
        self.last_seen: dict[str, float] = {}
        self.pending: list[tuple[str, Any, asyncio.Future]] = []
        self.wake: asyncio.Event | None = None
        self.state_dir = Path(config.state_dir) if config.state_dir else None
        self.ticks = 0
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            for name, pool in self.pools.items():
                for stream_id in pool.restore(self.state_dir):
                    self.owner[stream_id], self.last_seen[stream_id] = name, time.monotonic()

    # --- streams -------------------------------------------------------------------------
    def open(self, model: Any) -> str:
        if not isinstance(model, str) or model not in self.pools:
            names = ", ".join(repr(n) for n in self.pools)
            raise RequestError(404, f"model must be one of {names}, got {model!r}", "model")
        self.expire()
        if len(self.owner) >= self.config.max_streams:
            raise RequestError(429, f"the server holds its limit of {self.config.max_streams} open streams", None)
        stream_id = secrets.token_hex(8)
        self.pools[model].open(stream_id)
        self.owner[stream_id], self.last_seen[stream_id] = model, time.monotonic()
        self._snapshot_now()
        return stream_id

    def pool_of(self, stream_id: str) -> StreamPool:
        if stream_id not in self.owner:
            raise RequestError(404, f"no open stream {stream_id!r} (closed, expired, or never opened)", "id")
        return self.pools[self.owner[stream_id]]

    def close(self, stream_id: str) -> None:
        self.pool_of(stream_id).close(stream_id)
        del self.owner[stream_id], self.last_seen[stream_id]
        self._snapshot_now()

    def expire(self) -> list[str]:
        limit = time.monotonic() - self.config.idle_timeout
        idle = [i for i, seen in self.last_seen.items() if seen < limit]
        for stream_id in idle:
            self.pools[self.owner[stream_id]].close(stream_id)
            del self.owner[stream_id], self.last_seen[stream_id]
        return idle

    # --- batching ------------------------------------------------------------------------
    async def step(self, stream_id: str, value: Any) -> tuple[list[float], int]:
        pool = self.pool_of(stream_id)
        observation = pool.parse(value)
        future = asyncio.get_running_loop().create_future()
        self.pending.append((stream_id, observation, future))
        if self.wake is not None:
            self.wake.set()
        return await future

    async def run_ticks(self) -> None:
        """The batcher: wait for a step, let ``batch_window_ms`` gather more, run them as ticks."""
        self.wake = asyncio.Event()
        window = self.config.batch_window_ms / 1000
        while True:
            await self.wake.wait()
            if window:
                await asyncio.sleep(window)
            self.wake.clear()
            while self.pending:
                self.tick()
                await asyncio.sleep(0)  # let the answers go out and new steps come in

    def tick(self) -> None:
        """Run the pending steps: per model, one batched call of distinct streams (a stream's
        second pending step waits for the next tick, so its steps stay in order)."""
        taken: dict[str, list[tuple[str, Any, asyncio.Future]]] = {}
        seen, rest = set(), []
        for item in self.pending:
            stream_id = item[0]
            model = self.owner.get(stream_id)
            if model is None:  # closed while its step waited
                item[2].done() or item[2].set_exception(RequestError(404, f"stream {stream_id!r} was closed", "id"))
                continue
            batch = taken.setdefault(model, [])
            if stream_id in seen or len(batch) >= self.config.max_batch:
                rest.append(item)
                continue
            seen.add(stream_id)
            batch.append(item)
        self.pending = rest
        results = []
        now = time.monotonic()
        for model, batch in taken.items():
            if not batch:
                continue
            ids = [i for i, _, _ in batch]
            pool = self.pools[model]
            outputs = pool.step(ids, [v for _, v, _ in batch])
            results.extend((future, (out, pool.steps[i])) for (i, _, future), out in zip(batch, outputs))
            for i in ids:
                self.last_seen[i] = now
        self.ticks += 1
        self._snapshot_now()  # before any answer: an acknowledged step is on disk
        for future, result in results:
            if not future.done():
                future.set_result(result)

    # --- snapshots -----------------------------------------------------------------------
    def _snapshot_now(self) -> None:
        if self.state_dir is not None and self.config.snapshot_every == 0:
            self.snapshot()

    def snapshot(self) -> None:
        if self.state_dir is not None:
            for pool in self.pools.values():
                pool.snapshot(self.state_dir)

    async def run_housekeeping(self) -> None:
        every = self.config.snapshot_every or min(60.0, max(1.0, self.config.idle_timeout / 10))
        while True:
            await asyncio.sleep(every)
            self.expire()
            self.snapshot()


# -----------------------------------------------------------------------------
# the HTTP application


def create_app(models: dict[str, nn.Module], config: ServeConfig = ServeConfig()):
    """The Starlette application serving ``models`` (name -> rnnkit layer or model)."""
    require("starlette", "serve", "rnnkit serve")
    import contextlib

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    server = StreamServer(models, config)

    def error(status: int, message: str, field: str | None = None) -> JSONResponse:
        return JSONResponse({"error": message, "field": field}, status_code=status)

    async def body(request: Request) -> dict[str, Any]:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > config.max_body:
            raise RequestError(413, f"request body must be at most {config.max_body} bytes, got {size}", None)
        raw = await request.body()
        if len(raw) > config.max_body:
            raise RequestError(413, f"request body must be at most {config.max_body} bytes, got {len(raw)}", None)
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise RequestError(400, f"request body must be JSON: {e}", "body") from None
        if not isinstance(data, dict):
            raise RequestError(400, f"request body must be a JSON object, got {type(data).__name__}", "body")
        return data

    def handler(fn):
        async def wrapped(request: Request):
            if config.token is not None and request.url.path != "/":
                given = request.headers.get("authorization", "")
                if not secrets.compare_digest(given.encode(), f"Bearer {config.token}".encode()):
                    return error(401, "a valid 'Authorization: Bearer TOKEN' header is required", "authorization")
            try:
                return await fn(request)
            except RequestError as e:
                return error(e.status, e.message, e.field)

        return wrapped

    @handler
    async def page(request: Request):
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @handler
    async def list_models(request: Request):
        return JSONResponse({"models": [pool.describe() for pool in server.pools.values()]})

    @handler
    async def open_stream(request: Request):
        data = await body(request)
        model = data.get("model", next(iter(server.pools)) if len(server.pools) == 1 else None)
        stream_id = server.open(model)
        return JSONResponse({"id": stream_id, "model": model}, status_code=201)

    @handler
    async def step(request: Request):
        stream_id = request.path_params["id"]
        server.pool_of(stream_id)
        data = await body(request)
        if "input" not in data:
            raise RequestError(422, "request must have an 'input': one observation", "input")
        output, steps = await server.step(stream_id, data["input"])
        return JSONResponse({"output": output, "steps": steps})

    @handler
    async def stream_info(request: Request):
        stream_id = request.path_params["id"]
        pool = server.pool_of(stream_id)
        return JSONResponse({"id": stream_id, "model": pool.name, "steps": pool.steps[stream_id]})

    @handler
    async def close_stream(request: Request):
        stream_id = request.path_params["id"]
        server.close(stream_id)
        return JSONResponse({"closed": stream_id})

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
            Route("/", page, methods=["GET"]),
            Route("/models", list_models, methods=["GET"]),
            Route("/streams", open_stream, methods=["POST"]),
            Route("/streams/{id}", stream_info, methods=["GET"]),
            Route("/streams/{id}", close_stream, methods=["DELETE"]),
            Route("/streams/{id}/step", step, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.server = server
    return app


def load_models(run_dirs: list[str]) -> dict[str, nn.Module]:
    """Each run directory's model (JSON and safetensors only), named by the directory's name."""
    from ..training.run import load

    models: dict[str, nn.Module] = {}
    for run_dir in run_dirs:
        name = Path(run_dir).resolve().name
        if name in models:
            raise ValueError(f"run directories must have distinct names, got {name!r} twice")
        models[name] = load(run_dir)
    return models


def run_server(run_dirs: list[str], config: ServeConfig = ServeConfig(), *, port: int = 8000) -> None:
    uvicorn = require("uvicorn", "serve", "rnnkit serve")
    app = create_app(load_models(run_dirs), config)
    uvicorn.run(app, host=config.host, port=port, log_level="warning")
