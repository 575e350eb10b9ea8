"""The service's settings (:class:`ServeConfig`) and what a request may hold: a bad one raises
:class:`RequestError`, answered as a 4xx ``{"error": ..., "field": ...}``; the field checks here
name the field and say what was expected and what came."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"  # this machine only, unless told otherwise
    token: str | None = None  # require "Authorization: Bearer TOKEN"
    state_dir: str | None = None
    snapshot_every: float = 0.0  # seconds; 0: after every tick, before answering
    batch_window_ms: float = 0.0  # up to how long a tick waits for the last tick's streams (0: it does not)
    max_batch: int = 4096  # streams per tick at most (1: every step alone)
    max_streams: int = 10000
    idle_timeout: float = 3600.0  # seconds; a stream idle this long is closed
    max_body: int = 1 << 20  # bytes per request (a forecast's CSV, a recording), and per WebSocket message
    dtype: str = "float32"
    rate_limit: float = 0.0  # requests (and WebSocket messages) per second per client address; 0: no limit
    rate_burst: int = 50  # requests a client may make at once before the rate applies
    max_prime: int = 10000  # characters of a generation's prime
    max_generate: int = 5000  # tokens one generation writes at most
    max_items: int = 1000  # texts, sentences or values in one request

    def __post_init__(self) -> None:
        for name in ("snapshot_every", "batch_window_ms", "idle_timeout", "rate_limit"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        for name in ("max_batch", "max_streams", "max_body", "rate_burst", "max_prime", "max_generate", "max_items"):
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


# --- the fields of a JSON body ---------------------------------------------------------------


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_number(value: Any) -> bool:
    """A finite JSON number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def text_field(data: dict, name: str, *, max_length: int, default: str | None = None, empty: bool = False) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise RequestError(422, f"{name} must be a string, got {_shown(value)}", name)
    if not value and not empty:
        raise RequestError(422, f"{name} must be at least one character, got ''", name)
    if len(value) > max_length:
        raise RequestError(422, f"{name} must be at most {max_length} characters, got {len(value)}", name)
    return value


def int_field(data: dict, name: str, *, low: int, high: int, default: int | None = None, optional: bool = False) -> int | None:
    value = data.get(name, default)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(422, f"{name} must be an integer in [{low}, {high}], got {_shown(value)}", name)
    return value


def number_field(data: dict, name: str, *, low: float, high: float, default: float | None = None,
                 optional: bool = False, open_low: bool = False) -> float | None:  # fmt: skip
    value = data.get(name, default)
    if value is None and optional:
        return None
    if not is_number(value) or not (low < value if open_low else low <= value) or not value <= high:
        bracket = "(" if open_low else "["
        raise RequestError(422, f"{name} must be a number in {bracket}{low:g}, {high:g}], got {_shown(value)}", name)
    return float(value)


def texts_field(data: dict, name: str, single: str, *, max_items: int, max_length: int) -> tuple[list[str], bool]:
    """``data[name]`` (a list of strings) or ``data[single]`` (one string): ``(texts, one)``."""
    if single in data and name not in data:
        return [text_field(data, single, max_length=max_length, empty=True)], True
    value = data.get(name)
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise RequestError(422, f"request must have {name!r}, a list of strings (or {single!r}, one string),"
                                f" got {_shown(value)}", name)  # fmt: skip
    if not 1 <= len(value) <= max_items:
        raise RequestError(422, f"{name} must hold 1 to {max_items} strings, got {len(value)}", name)
    longest = max(len(t) for t in value)
    if longest > max_length:
        raise RequestError(422, f"each of {name} must be at most {max_length} characters, got {longest}", name)
    return value, False
