"""Streams with server-held state, stepped in batches across streams, snapshotted to disk.

A :class:`StreamPool` holds the open streams of one model: every stream's state lives in one pool
tensor per state component, ``(L, capacity, size)``; a tick gathers the pending streams' rows
(``index_select``), runs the model's step once, and scatters the new rows back (``index_copy_``).
No Python runs per stream inside the model, and a stream that has finished, or sends nothing this
tick, is simply not in the batch. A :class:`ScorerPool` is the same for a streaming scorer with a
recurrent model inside (the detect app's): the model stepped in the batch, each stream's scorer
(its error average and threshold) after it. :class:`StreamServer` owns the pools, the queue of
pending steps and the ticks (the HTTP and WebSocket layers are :mod:`rnnkit.deploy.serve`).
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._io import load_tensors, save_tensors
from ._graphs import StepGraph, initial_state, recurrent_layer
from ._protocol import RequestError, ServeConfig, is_number


class StreamPool:
    """The open streams of one model: their states in pool tensors, stepped in batches.

    ``step(ids, inputs)`` is one tick: one model call for all of ``ids`` (distinct streams); it
    returns each stream's answer, ``{"output": [...]}``.
    """

    def __init__(self, name: str, model: nn.Module, dtype: torch.dtype = torch.float32, capacity: int = 64) -> None:
        self.name = name
        if next(model.parameters()).dtype != dtype:
            model = copy.deepcopy(model).to(dtype)  # the caller's model stays as it is
        model = model.eval()
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
        return {"input": {"vocab_size": self.vocab} if self.vocab else {"features": self.features},
                "outputs": self._outputs, "state": {n: list(s.shape) for n, s in zip(self.layer.state_names, self.start)},
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
        if not all(map(is_number, value)):
            raise RequestError(422, "input must hold finite numbers (no NaN, infinity, strings or null)", "input")
        return value

    @torch.no_grad()
    def step(self, ids: list[str], inputs: list[Any]) -> list[dict[str, Any]]:
        """One tick: the streams ``ids`` (distinct) advance by one step each, in one model call."""
        return [{"output": row} for row in self._batched(ids, inputs).tolist()]

    def _batched(self, ids: list[str], inputs: list[Any]) -> torch.Tensor:
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
        return y  # (B, outputs)

    # --- snapshots: one safetensors file per model, "<id>/<component>" and "<id>/steps" -------
    def snapshot(self, directory: Path) -> None:
        tensors: dict[str, torch.Tensor] = {}
        for stream_id, slot in self.slots.items():
            for name, pool in zip(self.layer.state_names, self.pools):
                tensors[f"{stream_id}/{name}"] = pool[:, slot].clone()
            tensors[f"{stream_id}/steps"] = torch.tensor(self.steps[stream_id])
        self._snapshot_extra(tensors)
        if not tensors:
            tensors["_empty"] = torch.zeros(0)
        save_tensors(directory / f"{self.name}.safetensors", tensors)

    def _snapshot_extra(self, tensors: dict[str, torch.Tensor]) -> None:
        """What a subclass keeps beside the pool's rows, added to ``tensors``."""

    def restore(self, directory: Path) -> list[str]:
        path = directory / f"{self.name}.safetensors"
        if not path.exists():
            return []
        tensors = load_tensors(path)
        ids = sorted({key.split("/")[0] for key in tensors if key.endswith("/steps")})
        for stream_id in ids:
            state = tuple(tensors[f"{stream_id}/{name}"].to(self.dtype) for name in self.layer.state_names)
            if any(s.shape != t.shape for s, t in zip(state, self.start)):
                raise ValueError(f"{path}: stream {stream_id} has a state of another shape than model {self.name!r}'s")
            self.open(stream_id, state, int(tensors[f"{stream_id}/steps"]))
        self._restore_extra(path, tensors, ids)
        return ids

    def _restore_extra(self, path: Path, tensors: dict[str, torch.Tensor], ids: list[str]) -> None:
        """What a subclass kept beside the pool's rows, read back for the streams ``ids``."""


class ScorerPool(StreamPool):
    """Streams of a streaming scorer with a recurrent model inside: ``new_scorer()`` makes one
    per stream (the detect app's :class:`~rnnkit.apps.anomaly.RNNScorer`).

    A *batchable* scorer (``scorer.batchable``: it shares the model's weights) is driven in two
    halves, ``begin(value) -> model input or None`` and ``finish(prediction) -> (score, flag)``,
    with the model stepped between them for every stream of the tick at once, its state in the
    pool; any other scorer steps its own model (``score(value)``), one stream after another. Each
    answer is ``{"score", "flag", "prediction"}`` (``score`` null for a missing reading).
    """

    def __init__(self, name: str, new_scorer: Callable[[], Any], model: nn.Module) -> None:
        super().__init__(name, model, torch.float32)
        self.new_scorer = new_scorer
        self.scorers: dict[str, Any] = {}
        self.batched = bool(new_scorer().batchable)

    def describe(self) -> dict[str, Any]:
        return {"input": "a number, or null for a missing reading", "open_streams": len(self.slots),
                "batched": self.batched}  # fmt: skip

    def open(self, stream_id: str, state: tuple[torch.Tensor, ...] | None = None, steps: int = 0) -> None:
        super().open(stream_id, state, steps)
        self.scorers[stream_id] = self.new_scorer()

    def close(self, stream_id: str) -> None:
        super().close(stream_id)
        del self.scorers[stream_id]

    def parse(self, value: Any) -> float:
        if value is None:
            return math.nan
        if not is_number(value):
            raise RequestError(422, f"input must be a number, or null for a missing reading, got {value!r}", "input")
        return float(value)

    @torch.no_grad()
    def step(self, ids: list[str], inputs: list[float]) -> list[dict[str, Any]]:
        scorers = [self.scorers[i] for i in ids]
        if not self.batched:
            results = [scorer.score(value) for scorer, value in zip(scorers, inputs)]
            for i in ids:
                self.steps[i] += 1
        else:
            xs = [scorer.begin(value) for scorer, value in zip(scorers, inputs)]
            stepped = [k for k, x in enumerate(xs) if x is not None]
            predictions = self._batched([ids[k] for k in stepped], [[xs[k]] for k in stepped]).tolist()  # (B, horizon) rows
            results = [(math.nan, False)] * len(ids)
            for k, prediction in zip(stepped, predictions):
                results[k] = scorers[k].finish(prediction)
            for k, x in enumerate(xs):
                if x is None:  # a missing first reading: no model step, but an observation all the same
                    self.steps[ids[k]] += 1
        return [{"score": score if math.isfinite(score) else None, "flag": bool(flag), "prediction": scorer.prediction()}
                for (score, flag), scorer in zip(results, scorers)]  # fmt: skip

    def _snapshot_extra(self, tensors: dict[str, torch.Tensor]) -> None:
        states = {i: encode_state(s.state_dict(), f"{i}/scorer", tensors) for i, s in self.scorers.items()}
        tensors["_scorers"] = torch.frombuffer(bytearray(json.dumps(states).encode()), dtype=torch.uint8)  # JSON as bytes

    def _restore_extra(self, path: Path, tensors: dict[str, torch.Tensor], ids: list[str]) -> None:
        states = json.loads(tensors["_scorers"].numpy().tobytes()) if "_scorers" in tensors else {}
        for stream_id in ids:
            if stream_id not in states:
                raise ValueError(f"{path}: stream {stream_id} has no scorer state")
            self.scorers[stream_id].load_state_dict(decode_state(states[stream_id], tensors))


# --- a scorer's state (nested dicts, arrays, numbers) as JSON plus tensors: no pickle ----------


def encode_state(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` as JSON-able data; its tensors and arrays go into ``tensors`` under ``key/...``."""
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().cpu().contiguous().clone()
        return {"$tensor": key}
    if isinstance(value, np.ndarray):
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
        return {"$array": key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {"$dict": [[k, encode_state(v, f"{key}/{n}", tensors)] for n, (k, v) in enumerate(value.items())]}
    if isinstance(value, (list, tuple)):
        items = [encode_state(v, f"{key}/{n}", tensors) for n, v in enumerate(value)]
        return {"$tuple": items} if isinstance(value, tuple) else items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a stream's state must hold tensors, arrays, numbers, strings, lists and dicts, got {type(value).__name__}")


def decode_state(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [decode_state(v, tensors) for v in value]
    if isinstance(value, dict):
        if "$tensor" in value:
            return tensors[value["$tensor"]]
        if "$array" in value:
            return tensors[value["$array"]].numpy()
        if "$tuple" in value:
            return tuple(decode_state(v, tensors) for v in value["$tuple"])
        return {k: decode_state(v, tensors) for k, v in value["$dict"]}
    return value


class StreamServer:
    """The service's streams and their batching: streams by id, a queue of pending steps, the ticks.

    ``pools`` maps a name to a :class:`StreamPool` (or a model, which gets one).
    """

    def __init__(self, pools: dict[str, StreamPool | nn.Module], config: ServeConfig = ServeConfig()) -> None:
        self.config = config
        dtype = getattr(torch, config.dtype)
        self.pools = {n: p if isinstance(p, StreamPool) else StreamPool(n, p, dtype) for n, p in pools.items()}
        self.owner: dict[str, str] = {}  # stream id -> model name
        self.last_seen: dict[str, float] = {}
        self.pending: list[tuple[str, Any, asyncio.Future]] = []
        self.wake: asyncio.Event | None = None
        self.expected = 1  # streams in the last tick: how many steps a tick waits for (up to the window)
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
            raise RequestError(404, f"model must be one of the models with streams ({names}), got {model!r}", "model")
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
    async def step(self, stream_id: str, value: Any) -> dict[str, Any]:
        """The stream's answer to one observation: its pool's answer and ``"steps"``, the
        stream's count of acknowledged steps. With ``max_batch`` 1 (no batching) the step runs
        at once, in the caller's turn of the event loop, as a server without batching would."""
        observation = self.pool_of(stream_id).parse(value)
        future = asyncio.get_running_loop().create_future()
        self.pending.append((stream_id, observation, future))
        if self.config.max_batch == 1:
            self.tick()
        elif self.wake is not None and (len(self.pending) == 1 or len(self.pending) >= self.expected):
            self.wake.set()
        return await future

    async def run_ticks(self) -> None:
        """The batcher: wait for a step; then, while fewer steps are pending than the last tick
        had streams (they are likely to come back), up to ``batch_window_ms`` for more; run them."""
        self.wake = asyncio.Event()
        window = self.config.batch_window_ms / 1000
        while True:
            await self.wake.wait()
            self.wake.clear()
            if window and len(self.pending) < self.expected:
                try:
                    await asyncio.wait_for(self.wake.wait(), window)
                except asyncio.TimeoutError:
                    pass
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
            answers = pool.step(ids, [v for _, v, _ in batch])
            for (i, _, future), answer in zip(batch, answers):
                answer["steps"] = pool.steps[i]
                results.append((future, answer))
                self.last_seen[i] = now
        self.ticks += 1
        self.expected = max(1, len(seen))
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
