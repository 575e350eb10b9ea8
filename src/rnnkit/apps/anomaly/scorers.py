"""Streaming scorers of one univariate series: the contract, and NAB's windowed Gaussian.

A *streaming scorer* has ``score(value) -> (score, flag)``: it reads one observation, costs time
and memory bounded independently of the stream's length, and returns a non-negative anomaly
score and whether the point is flagged; ``state_dict()`` / ``load_state_dict()`` save and
restore what it has learned from the stream. A missing reading (NaN, or an infinite value) is
reported as score ``nan``, flag ``False``, counted (``missing``) and kept out of the statistics.
The scorers here also have ``warm(values)``: history seen before the stream (a trained
detector's validation errors), taken in without being scored, so the stream is judged from its
first point instead of after ``min_history`` points, and ``bounded(scores)``: their scores mapped
to [0, 1] by a fixed monotone map (:func:`unit_ratio` for a z-score or a ratio to a threshold),
the ``anomaly_score`` column of ``rnnkit detect``, so that a dashboard or NAB-style tool can
threshold every method's scores on one scale.

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


def unit_ratio(scores: Sequence[float], half: float) -> np.ndarray:
    """``s / (s + half)`` of non-negative scores: a monotone map onto [0, 1], 0.5 at ``s = half``
    (put the threshold there), 1 for an infinite score, NaN kept; it never saturates, so every
    threshold on ``s`` is one on the map, ``s = half * u / (1 - u)``.

    >>> unit_ratio([0.0, 4.0, 12.0, float("inf")], half=4.0).tolist()
    [0.0, 0.5, 0.75, 1.0]
    """
    s = np.asarray(scores, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isposinf(s), 1.0, s / (s + half))


# --- a trailing window's mean and standard deviation, O(1) per value -----------------------


class RunningWindow:
    """The mean and (population) standard deviation of the last ``window`` values pushed.

    Running sums over a ring buffer, O(1) per value; the sums are of values minus the first one
    seen, which keeps them from cancelling on large offsets.

    >>> w = RunningWindow(3)
    >>> for v in [1.0, 2.0, 3.0, 10.0]:
    ...     w.push(v)
    >>> w.count, w.mean(), round(w.std(), 4)
    (3, 5.0, 3.559)
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self._buffer = np.zeros(window)  # values minus the shift, a ring
        self._pushed = 0
        self._shift = 0.0
        self._sum = 0.0
        self._sum_sq = 0.0

    @property
    def count(self) -> int:
        """How many values the window holds: ``min(pushed, window)``."""
        return min(self._pushed, self.window)

    def push(self, value: float) -> None:
        if self._pushed == 0:
            self._shift = value
        x = value - self._shift
        slot = self._pushed % self.window
        if self._pushed >= self.window:  # the oldest value leaves the window
            old = self._buffer[slot]
            self._sum -= old
            self._sum_sq -= old * old
        self._buffer[slot] = x
        self._sum += x
        self._sum_sq += x * x
        self._pushed += 1

    def mean(self) -> float:
        return float(self._shift + self._sum / self.count)

    def std(self) -> float:
        n = self.count
        centred = self._sum / n
        return math.sqrt(max(float(self._sum_sq / n - centred * centred), 0.0))

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self._buffer.copy(), "count": self._pushed, "shift": self._shift, "sum": self._sum,
                "sum_sq": self._sum_sq}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        buffer = np.array(state["buffer"], dtype=float)
        if buffer.shape != (self.window,):
            raise ValueError(f"state holds a window of {buffer.size} values, this one has window={self.window}")
        self._buffer, self._pushed, self._shift = buffer, int(state["count"]), float(state["shift"])
        self._sum, self._sum_sq = float(state["sum"]), float(state["sum_sq"])


# --- the windowed Gaussian -------------------------------------------------------------------


class WindowedGaussian:
    """``|x_t - mean| / std`` over the previous ``window`` finite values; flags ``score >= threshold``.

    The mean and standard deviation are a :class:`RunningWindow`'s. Until ``min_history`` values
    have been seen the score is 0. A constant window (std 0) scores 0 for the same value and
    ``inf`` for any other.

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
        self._window = RunningWindow(window)
        self.missing = 0

    def score(self, value: float) -> tuple[float, bool]:
        value = check_value(value)
        if not math.isfinite(value):
            self.missing += 1
            return math.nan, False
        result = 0.0
        if self._window.count >= self.min_history:
            mean, std = self._window.mean(), self._window.std()
            if std > 1e-12 * max(1.0, abs(mean)):
                result = abs(value - mean) / std
            elif abs(value - mean) > 1e-12 * max(1.0, abs(mean)):
                result = math.inf
        self._window.push(value)
        return result, result >= self.threshold

    def bounded(self, scores: Sequence[float]) -> np.ndarray:
        """The z-scores in [0, 1]: ``z / (z + threshold)`` (:func:`unit_ratio`), 0.5 at the threshold."""
        return unit_ratio(scores, self.threshold)

    def warm(self, values: Sequence[float]) -> None:
        """Take ``values`` (their last ``window`` finite ones) into the window without scoring them:
        the next value is scored against them, as if they had been streamed first."""
        values = np.asarray(values, dtype=float).ravel()
        for value in values[np.isfinite(values)][-self.window :]:
            self._window.push(float(value))

    def state_dict(self) -> dict[str, Any]:
        return {"window": self.window, "threshold": self.threshold, "min_history": self.min_history,
                **self._window.state_dict(), "missing": self.missing}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("window") != self.window:
            raise ValueError(f"state is for window={state.get('window')}, this scorer has window={self.window}")
        self.threshold, self.min_history = float(state["threshold"]), int(state["min_history"])
        self._window.load_state_dict(state)
        self.missing = int(state["missing"])
