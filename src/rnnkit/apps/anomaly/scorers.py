"""Streaming scorers of one univariate series: the contract, and NAB's windowed Gaussian.

A *streaming scorer* has ``score(value) -> (score, flag)``: it reads one observation, costs time
and memory bounded independently of the stream's length, and returns a non-negative anomaly
score and whether the point is flagged; ``state_dict()`` / ``load_state_dict()`` save and
restore what it has learned from the stream. A missing reading (NaN, or an infinite value) is
reported as score ``nan``, flag ``False``, counted (``missing``) and kept out of the statistics.
The scorers here also have ``warm(values)``: history seen before the stream (a trained
detector's validation errors), taken in without being scored, so the stream is judged from its
first point instead of after ``min_history`` points.

- :class:`WindowedGaussian`: NAB's baseline, the z-score of a value against the previous
  ``window`` values; also the ``"gaussian"`` threshold of an LSTM's errors (Malhotra et al. 2015).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class StreamingScorer(Protocol):
    """One observation at a time: ``score(value) -> (score, flag)``."""

    def score(self, value: float) -> tuple[float, bool]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def check_value(value) -> float:
    """``value`` as a float; anything but a real number (a bool, a string) is a TypeError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"value must be a real number, got {type(value).__name__}")
    return float(value)


def score_all(scorer: StreamingScorer, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Run ``scorer`` over ``values`` one at a time; returns ``(scores (N,), flags (N,))``."""
    values = np.asarray(values, dtype=float)
    scores = np.empty(len(values))
    flags = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        scores[i], flags[i] = scorer.score(float(value))
    return scores, flags


# --- the windowed Gaussian -------------------------------------------------------------------


class WindowedGaussian:
    """``|x_t - mean| / std`` over the previous ``window`` finite values; flags ``score >= threshold``.

    The mean and variance come from running sums over a ring buffer (O(1) per value); the sums are
    of values minus the first one seen, which keeps them from cancelling on large offsets. Until
    ``min_history`` values have been seen the score is 0. A constant window (std 0) scores 0 for
    the same value and ``inf`` for any other.

    >>> g = WindowedGaussian(window=4, threshold=3.0, min_history=2)
    >>> [g.score(v)[1] for v in [1.0, 2.0, 1.0, 2.0, 9.0]]
    [False, False, False, False, True]
    """

    def __init__(self, window: int = 6400, threshold: float = 4.0, min_history: int = 10) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 2:
            raise ValueError(f"window must be an integer >= 2, got {window!r}")
        if not (isinstance(threshold, (int, float)) and threshold > 0):
            raise ValueError(f"threshold must be a positive number, got {threshold!r}")
        if isinstance(min_history, bool) or not isinstance(min_history, int) or not 2 <= min_history <= window:
            raise ValueError(f"min_history must be an integer in [2, window={window}], got {min_history!r}")
        self.window, self.threshold, self.min_history = window, float(threshold), min_history
        self._buffer = np.zeros(window)  # values minus the shift, a ring
        self._count = 0  # finite values seen (the ring holds min(count, window))
        self._shift = 0.0
        self._sum = 0.0
        self._sum_sq = 0.0
        self.missing = 0

    def score(self, value: float) -> tuple[float, bool]:
        value = check_value(value)
        if not math.isfinite(value):
            self.missing += 1
            return math.nan, False
        if self._count == 0:
            self._shift = value
        x = value - self._shift
        n = min(self._count, self.window)
        result = 0.0
        if n >= self.min_history:
            mean = self._sum / n
            std = math.sqrt(max(self._sum_sq / n - mean * mean, 0.0))
            if std > 1e-12 * max(1.0, abs(mean)):
                result = abs(x - mean) / std
            elif abs(x - mean) > 1e-12 * max(1.0, abs(mean)):
                result = math.inf
        self._push(x)
        return result, result >= self.threshold

    def warm(self, values: Sequence[float]) -> None:
        """Take ``values`` (their last ``window`` finite ones) into the window without scoring them:
        the next value is scored against them, as if they had been streamed first."""
        values = np.asarray(values, dtype=float).ravel()
        for value in values[np.isfinite(values)][-self.window :]:
            if self._count == 0:
                self._shift = float(value)
            self._push(float(value) - self._shift)

    def _push(self, x: float) -> None:
        """``x`` (a value minus the shift) into the ring and the running sums."""
        slot = self._count % self.window
        if self._count >= self.window:  # the oldest value leaves the window
            old = self._buffer[slot]
            self._sum -= old
            self._sum_sq -= old * old
        self._buffer[slot] = x
        self._sum += x
        self._sum_sq += x * x
        self._count += 1

    def state_dict(self) -> dict[str, Any]:
        return {"window": self.window, "threshold": self.threshold, "min_history": self.min_history,
                "buffer": self._buffer.copy(), "count": self._count, "shift": self._shift,
                "sum": self._sum, "sum_sq": self._sum_sq, "missing": self.missing}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("window") != self.window:
            raise ValueError(f"state is for window={state.get('window')}, this scorer has window={self.window}")
        self.threshold, self.min_history = float(state["threshold"]), int(state["min_history"])
        self._buffer = np.array(state["buffer"], dtype=float)
        self._count, self._shift = int(state["count"]), float(state["shift"])
        self._sum, self._sum_sq, self.missing = float(state["sum"]), float(state["sum_sq"]), int(state["missing"])
