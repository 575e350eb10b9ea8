"""Anomaly likelihood: Ahmad, Lavin, Purdy & Agha, "Unsupervised real-time anomaly detection for
streaming data", Neurocomputing 262 (2017), section 4.2 -- what HTM's scores go through on NAB.

The raw score ``s_t`` (here an LSTM's smoothed prediction error) is averaged over a short window,
``mu~_t = mean(s_{t-W'+1..t})`` (eq. 5), and that average is judged against the distribution of
the averages over a long trailing window, a Gaussian with mean ``mu_t`` and deviation
``sigma_t`` (eq. 4, computed as Numenta's implementation does, over the short averages):

.. math::  L_t = 1 - Q\\left(\\frac{\\tilde\\mu_t - \\mu_t}{\\sigma_t}\\right)   (eq. 6)

with ``Q`` the Gaussian tail probability. ``L_t`` is the probability that the recent errors are
not unusually large, in [0, 1]; a point is flagged when ``L_t >= 1 - epsilon`` (eq. 7). Only
large errors count (one-sided), and a short window makes one outlier count less than a run of
them: why HTM's likelihood flags far fewer isolated blips than a z-score on the raw error.

The likelihood is crowded near 1 (the paper's ``epsilon`` is 1e-5), so the score this scorer
returns is Numenta's log transform, ``log(1 - L) / log(1e-10)`` clipped to [0, 1], which spreads
it out: 0.5 at ``L = 1 - 1e-5``, 1 at ``L >= 1 - 1e-10``; it is monotone in ``L``, so a threshold
on it is a threshold on ``L``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .scorers import RunningWindow, check_value

LOG_FLOOR = 1e-10  # 1 - L below this scores 1


def log_score(likelihood: float) -> float:
    """Numenta's transform of a likelihood to [0, 1]: ``log(1 - L) / log(1e-10)``, clipped.

    >>> log_score(0.5) < 0.05, round(log_score(1 - 1e-5), 6), log_score(1.0)
    (True, 0.5, 1.0)
    """
    return min(max(math.log(max(1.0 - likelihood, LOG_FLOOR)) / math.log(LOG_FLOOR), 0.0), 1.0)


def gaussian_tail(z: float) -> float:
    """``Q(z) = P(Z > z)`` for a standard normal ``Z``."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


class AnomalyLikelihood:
    """The anomaly likelihood of a stream of non-negative raw scores (prediction errors).

    ``short`` is ``W'`` (the paper's 10), ``window`` the long window ``W`` over the short
    averages (Numenta's 8640 rows, 30 days of 5-minute data); ``epsilon`` the flag level
    (``L >= 1 - epsilon``; the paper's 1e-5, a log score of 0.5). The first ``min_history``
    averages only fill the window (score 0, no flag). ``min_std`` floors ``sigma_t`` so that a
    flat stretch of errors does not make the next small change infinitely unlikely.

    >>> lk = AnomalyLikelihood(short=3, window=100, min_history=20)
    >>> flags = [lk.score(e)[1] for e in [1.0, 1.1, 0.9, 1.05] * 10 + [6.0, 6.0, 6.0]]
    >>> sum(flags[:40]), flags[-1]
    (0, True)
    """

    def __init__(self, short: int = 10, window: int = 8640, epsilon: float = 1e-5, min_history: int = 100,
                 min_std: float = 1e-6) -> None:  # fmt: skip
        from ..._validation import check_int_at_least

        self.short = check_int_at_least("short", short, 1)
        self.window = check_int_at_least("window", window, 2)
        self.min_history = check_int_at_least("min_history", min_history, 2)
        if self.min_history > self.window:
            raise ValueError(f"min_history must be at most window={self.window}, got {min_history}")
        if not 0.0 < epsilon < 1.0:
            raise ValueError(f"epsilon must lie in (0, 1), got {epsilon}")
        if not min_std >= 0.0:
            raise ValueError(f"min_std must be a non-negative number, got {min_std}")
        self.epsilon, self.min_std = float(epsilon), float(min_std)
        self._recent = np.zeros(self.short)  # the last `short` raw scores, a ring
        self._seen = 0  # finite raw scores seen
        self._averages = RunningWindow(self.window)
        self.likelihood = 0.5  # of the last score (0.5 while learning, as Numenta's)
        self.missing = 0

    def score(self, value: float) -> tuple[float, bool]:
        value = check_value(value)
        if not math.isfinite(value):
            self.missing += 1
            return math.nan, False
        average = self._average_with(value)
        self.likelihood = 0.5
        if self._averages.count >= self.min_history:
            sigma = max(self._averages.std(), self.min_std)
            self.likelihood = 1.0 - gaussian_tail((average - self._averages.mean()) / sigma)
        self._averages.push(average)
        score = log_score(self.likelihood)
        return score, self.likelihood >= 1.0 - self.epsilon

    def bounded(self, scores: Sequence[float]) -> np.ndarray:
        """The scores themselves: the log score of ``L`` already lies in [0, 1]."""
        return np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)

    def warm(self, values: Sequence[float]) -> None:
        """Take raw scores seen before the stream (a trained detector's validation errors) into
        the windows without scoring them."""
        values = np.asarray(values, dtype=float).ravel()
        for value in values[np.isfinite(values)][-(self.window + self.short) :]:
            self._averages.push(self._average_with(float(value)))

    def _average_with(self, value: float) -> float:
        self._recent[self._seen % self.short] = value
        self._seen += 1
        return float(self._recent[: min(self._seen, self.short)].mean())

    def state_dict(self) -> dict[str, Any]:
        return {"short": self.short, "window": self.window, "epsilon": self.epsilon, "min_history": self.min_history,
                "min_std": self.min_std, "recent": self._recent.copy(), "seen": self._seen,
                "averages": self._averages.state_dict(), "likelihood": self.likelihood,
                "missing": self.missing}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("short", "window", "min_history"):
            if state.get(name) != getattr(self, name):
                raise ValueError(f"state is for {name}={state.get(name)}, this scorer has {name}={getattr(self, name)}")
        self.epsilon, self.min_std = float(state["epsilon"]), float(state["min_std"])
        self._recent, self._seen = np.array(state["recent"], dtype=float), int(state["seen"])
        self._averages.load_state_dict(state["averages"])
        self.likelihood, self.missing = float(state["likelihood"]), int(state["missing"])

