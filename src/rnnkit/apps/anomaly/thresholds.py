"""The thresholds an LSTM's smoothed errors go through, by name (:data:`THRESHOLDS`).

- ``"gaussian"``: the errors as a Gaussian over a trailing window, a
  :class:`~rnnkit.apps.anomaly.scorers.WindowedGaussian` run over the error stream (Malhotra et al. 2015);
- ``"dynamic"``: :class:`DynamicThreshold`, Hundman et al., "Detecting Spacecraft Anomalies Using
  LSTMs and Nonparametric Dynamic Thresholding" (KDD 2018), sections 3.2-3.3, in streaming form;
- ``"likelihood"``: :class:`~rnnkit.apps.anomaly.likelihood.AnomalyLikelihood`, Ahmad et al.
  2017's anomaly likelihood (HTM's on NAB), a score in [0, 1].

Each is a streaming scorer (:mod:`rnnkit.apps.anomaly.scorers`) of the smoothed errors, with a
bounded score beside its raw one (``bounded``): ``z / (z + z_flag)`` for ``gaussian``,
``r / (r + 1)`` of ``r = e_s / epsilon`` for ``dynamic`` (0.5 where each flags), the log score
itself for ``likelihood``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .likelihood import AnomalyLikelihood
from .scorers import StreamingScorer, WindowedGaussian, check_value, unit_ratio


# --- Hundman et al.'s nonparametric dynamic threshold -----------------------------------------


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The runs of ``True`` in a boolean vector as ``(first, last)`` index pairs, inclusive."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))  # +1 where a run starts, -1 after it ends
    return list(zip(np.flatnonzero(edges == 1).tolist(), (np.flatnonzero(edges == -1) - 1).tolist()))


def select_epsilon(errors: Sequence[float], z_values: Sequence[float]) -> tuple[float, float]:
    """Hundman et al. 2018, section 3.2.2: the threshold over one window of smoothed errors.

    ``epsilon = mu(e_s) + z sigma(e_s)`` with ``z`` among ``z_values`` maximising

    .. math::  \\frac{\\Delta\\mu / \\mu + \\Delta\\sigma / \\sigma}{|e_a| + |E_{seq}|^2}

    where ``e_a`` are the errors above epsilon, ``E_seq`` their contiguous sequences, and
    ``Delta mu`` (``Delta sigma``) the drop in mean (standard deviation) when ``e_a`` are removed.
    A ``z`` that leaves no error above it scores nothing; when none does, the largest ``z`` is
    used. Ties go to the larger ``z`` (as NASA's telemanom). Returns ``(epsilon, z)``.
    """
    e = np.asarray(errors, dtype=float)  # (h,)
    mu, sigma = float(e.mean()), float(e.std())
    best, chosen = -math.inf, float(z_values[-1])
    if sigma > 0:
        for z in z_values:
            above = e > mu + z * sigma
            count = int(above.sum())
            if count == 0:
                continue
            below = e[~above]
            sequences = int(above[0]) + int((above[1:] & ~above[:-1]).sum())
            score = ((mu - below.mean()) / mu + (sigma - below.std()) / sigma) / (count + sequences**2)
            if score >= best:
                best, chosen = score, float(z)
    return mu + chosen * sigma, chosen


def prune_sequences(maxima: Sequence[float], nominal_max: float, p: float) -> np.ndarray:
    """Hundman et al. 2018, section 3.3 (mitigating false positives, pruning): which sequences stay anomalous.

    The sequences' maximum smoothed errors are sorted in descending order, the largest error
    that is *not* anomalous appended, and the percent decrease ``d_i = (e_i - e_{i+1}) / e_i``
    taken between neighbours. Sequences down to the last one whose decrease reaches ``p`` stay
    anomalous; the ones after it are reclassified as nominal. Returns a boolean mask over
    ``maxima`` (in their original order).

    >>> prune_sequences([10.0, 5.0, 4.9], nominal_max=4.5, p=0.13).tolist()
    [True, False, False]
    """
    maxima = np.asarray(maxima, dtype=float)
    order = np.argsort(-maxima, kind="stable")
    ranked = np.append(maxima[order], nominal_max)  # (S + 1,)
    drops = (ranked[:-1] - ranked[1:]) / ranked[:-1]  # (S,)
    large = np.flatnonzero(drops >= p)
    keep = np.zeros(len(maxima), dtype=bool)
    keep[order[: large[-1] + 1 if len(large) else 0]] = True
    return keep


class DynamicThreshold:
    """Hundman et al.'s dynamic threshold over a stream of smoothed errors, with pruning.

    Every ``refit_every`` errors (from ``min_history`` on) the threshold is chosen again over the
    last ``window`` errors (:func:`select_epsilon`, their ``h`` and the z criterion), and the
    anomalous sequences of that window are ranked by their maxima for pruning. A new error is
    scored against the threshold chosen before it arrived: its score is ``e / epsilon`` (above 1
    means above the threshold), and it is flagged when it lies above epsilon *and* the sequence
    it belongs to (the run of errors above epsilon that it extends; its maximum so far) would
    survive :func:`prune_sequences` among the window's sequences.

    Cost: a refit is ``O(len(z_values) * window)``, so the amortised cost per error is
    ``O(len(z_values) * window / refit_every + log window)`` and the memory ``O(window)``:
    bounded by the window size, independent of the stream's length. Until the first refit the
    score is 0 and nothing is flagged; :meth:`warm` with at least ``min_history`` errors seen
    before the stream (a trained detector's validation errors) fits the threshold at once.

    >>> t = DynamicThreshold(window=50, refit_every=10)
    >>> flags = [t.score(e)[1] for e in [1.0, 1.2, 0.9, 1.1] * 15 + [5.0]]
    >>> flags[-1], sum(flags)
    (True, 1)
    """

    def __init__(self, window: int = 2100, refit_every: int = 70, z_min: float = 2.5, z_max: float = 10.0,
                 z_step: float = 0.5, prune: float = 0.13, min_history: int | None = None) -> None:  # fmt: skip
        from ..._validation import check_int_at_least

        self.window = check_int_at_least("window", window, 2)
        self.refit_every = check_int_at_least("refit_every", refit_every, 1)
        min_history = refit_every if min_history is None else min_history
        self.min_history = check_int_at_least("min_history", min_history, 2)
        if self.min_history > self.window:
            raise ValueError(f"min_history must be at most window={self.window}, got {min_history}")
        if not (0 < z_step and 0 < z_min <= z_max):
            raise ValueError(f"z_min, z_max, z_step must satisfy 0 < z_min <= z_max and z_step > 0, got {z_min}, {z_max}, {z_step}")
        if not 0.0 <= prune < 1.0:
            raise ValueError(f"prune must be a fraction in [0, 1), got {prune}")
        self.z_values = np.arange(z_min, z_max + z_step / 2, z_step)  # the candidate z, ascending
        self.prune = float(prune)
        self._buffer = np.zeros(self.window)  # the last `window` errors, a ring
        self._count = 0
        self._refit_at = self.min_history  # the count at which the threshold is chosen next
        self.epsilon: float | None = None
        self.z: float | None = None
        self._ranked = np.empty(0)  # the window's sequence maxima, descending, then its nominal max
        self._large_from = np.empty(0, dtype=bool)  # [j]: some decrease at or after rank j reaches `prune`
        self._run_max = 0.0  # of the open run of errors above epsilon (0: none open)
        self.missing = 0

    def score(self, error: float) -> tuple[float, bool]:
        e = check_value(error)
        if not math.isfinite(e):
            self.missing += 1
            return math.nan, False
        score, flag = 0.0, False
        if self.epsilon is not None:
            score = e / self.epsilon if self.epsilon > 0 else (math.inf if e > 0 else 0.0)
            if e > self.epsilon:
                self._run_max = max(self._run_max, e)
                flag = self._survives(self._run_max)
            else:
                self._run_max = 0.0
        self._buffer[self._count % self.window] = e
        self._count += 1
        if self._count == self._refit_at:
            self._refit()
        return score, flag

    def bounded(self, scores: Sequence[float]) -> np.ndarray:
        """The scores ``e_s / epsilon`` in [0, 1]: ``r / (r + 1)`` (:func:`~rnnkit.apps.anomaly.scorers.unit_ratio`),
        above 0.5 where the error lies above the threshold."""
        return unit_ratio(scores, 1.0)

    def warm(self, errors: Sequence[float]) -> None:
        """Take ``errors`` (their last ``window`` finite ones) into the window without scoring them,
        and choose the threshold over the window at once if it holds ``min_history`` errors (else
        at ``min_history``, as usual); the next refit comes ``refit_every`` errors later."""
        errors = np.asarray(errors, dtype=float).ravel()
        errors = errors[np.isfinite(errors)][-self.window :]
        for e in errors:
            self._buffer[self._count % self.window] = e
            self._count += 1
        if self._count >= self.min_history and len(errors):
            self._refit()

    def _refit(self) -> None:
        self._refit_at = self._count + self.refit_every
        n = min(self._count, self.window)
        start = self._count % self.window if self._count >= self.window else 0
        errors = np.roll(self._buffer, -start)[:n]  # (n,) oldest first
        self.epsilon, self.z = select_epsilon(errors, self.z_values)
        above = errors > self.epsilon
        maxima = np.array([errors[a : b + 1].max() for a, b in _runs(above)])
        nominal = float(errors[~above].max()) if (~above).any() else 0.0
        self._ranked = np.append(np.sort(maxima)[::-1], nominal)  # (S + 1,)
        drops = (self._ranked[:-1] - self._ranked[1:]) / self._ranked[:-1]  # (S,)
        large = drops >= self.prune
        self._large_from = np.append(np.logical_or.accumulate(large[::-1])[::-1], False)  # (S + 1,)

    def _survives(self, peak: float) -> bool:
        """Would a sequence with maximum ``peak`` stay anomalous among the last refit's sequences?"""
        # the first rank whose maximum is <= peak (the nominal max is: it lies below epsilon < peak)
        j = min(int(np.searchsorted(-self._ranked, -peak, side="left")), len(self._ranked) - 1)
        following = self._ranked[j]
        return bool((peak - following) / peak >= self.prune or self._large_from[j])

    def state_dict(self) -> dict[str, Any]:
        return {"window": self.window, "refit_every": self.refit_every, "min_history": self.min_history,
                "z_values": self.z_values.tolist(), "prune": self.prune, "buffer": self._buffer.copy(),
                "count": self._count, "refit_at": self._refit_at, "epsilon": self.epsilon, "z": self.z,
                "ranked": self._ranked.copy(), "large_from": self._large_from.copy(), "run_max": self._run_max,
                "missing": self.missing}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("window", "refit_every", "min_history", "prune"):
            if state.get(name) != getattr(self, name):
                raise ValueError(f"state is for {name}={state.get(name)}, this threshold has {name}={getattr(self, name)}")
        self.z_values = np.array(state["z_values"], dtype=float)
        self._buffer = np.array(state["buffer"], dtype=float)
        self._count, self.epsilon, self.z = int(state["count"]), state["epsilon"], state["z"]
        self._refit_at = int(state["refit_at"]) if "refit_at" in state else (  # a state saved before warm()
            self.min_history if self._count < self.min_history
            else self._count + self.refit_every - (self._count - self.min_history) % self.refit_every)  # fmt: skip
        self._ranked = np.array(state["ranked"], dtype=float)
        self._large_from = np.array(state["large_from"], dtype=bool)
        self._run_max, self.missing = float(state["run_max"]), int(state["missing"])


# --- one alarm per event ---------------------------------------------------------------------


class HoldOff:
    """A threshold whose flags are held off for ``rows`` points after each flag: one alarm per
    event instead of one per point of it (the scores are unchanged).

    An anomaly keeps the errors high for a while, and every flagged point after the first is, for
    NAB and for whoever is paged, a repeat: NAB rewards only a window's first detection and counts
    every flag outside a window as a false positive. Decided on arrival, from past flags only.

    >>> from rnnkit.apps.anomaly.scorers import WindowedGaussian
    >>> held = HoldOff(WindowedGaussian(window=8, threshold=3.0, min_history=4), rows=2)
    >>> [held.score(v)[1] for v in [1.0, 2.0, 1.0, 2.0, 9.0, 9.5, 9.0, 30.0]]
    [False, False, False, False, True, False, False, True]
    """

    def __init__(self, threshold: StreamingScorer, rows: int) -> None:
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise ValueError(f"rows must be a non-negative integer, got {rows!r}")
        self.threshold, self.rows = threshold, rows
        self._since = rows  # points since the last flag, capped at `rows` (no flag yet: free to flag)

    @property
    def missing(self) -> int:
        return self.threshold.missing

    def score(self, value: float) -> tuple[float, bool]:
        score, flag = self.threshold.score(value)
        if flag and self._since >= self.rows:
            self._since = 0
            return score, True
        self._since = min(self._since + 1, self.rows)
        return score, False

    def warm(self, values: Sequence[float]) -> None:
        self.threshold.warm(values)

    def bounded(self, scores: Sequence[float]) -> np.ndarray:
        return self.threshold.bounded(scores)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "since": self._since, "threshold": self.threshold.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("rows") != self.rows:
            raise ValueError(f"state is for a hold-off of {state.get('rows')} rows, this one holds off {self.rows}")
        self._since = int(state["since"])
        self.threshold.load_state_dict(state["threshold"])


def check_hold_off(rows: object) -> None:
    _check_int("hold_off", rows, 0, MAX_WINDOW)


# --- threshold methods by name ---------------------------------------------------------------


@dataclass(frozen=True)
class GaussianThresholdConfig:
    """The smoothed error's z-score against the previous ``window`` smoothed errors; flag ``>= z``."""

    window: int = 6400
    z: float = 4.0
    min_history: int = 10

    def __post_init__(self) -> None:  # before any scorer allocates its window
        _check_window("gaussian threshold settings: window", self.window)
        _check_int("gaussian threshold settings: min_history", self.min_history, 1, self.window, "window")
        _check_real("gaussian threshold settings: z", self.z, 0.0, 1e6)


@dataclass(frozen=True)
class DynamicThresholdConfig:
    """Hundman et al. 2018, sections 3.2-3.3; defaults from their paper and code (telemanom: 30 batches
    of 70 errors make ``window``; ``p = 0.13``), z searched over ``z_min..z_max`` by ``z_step``."""

    window: int = 2100
    refit_every: int = 70
    z_min: float = 2.5
    z_max: float = 10.0
    z_step: float = 0.5
    prune: float = 0.13
    min_history: int = 70

    def __post_init__(self) -> None:  # before any scorer allocates its window
        _check_window("dynamic threshold settings: window", self.window)
        _check_int("dynamic threshold settings: refit_every", self.refit_every, 1, self.window, "window")
        _check_int("dynamic threshold settings: min_history", self.min_history, 1, self.window, "window")
        _check_real("dynamic threshold settings: z_min", self.z_min, 0.0, 1e6)
        _check_real("dynamic threshold settings: z_max", self.z_max, self.z_min, 1e6)
        _check_real("dynamic threshold settings: z_step", self.z_step, 1e-6, 1e6)
        if (self.z_max - self.z_min) / self.z_step > 10_000:
            raise ValueError(f"dynamic threshold settings: z_min..z_max by z_step is more than 10,000 candidates, got"
                             f" {self.z_min}..{self.z_max} by {self.z_step}")  # fmt: skip
        _check_real("dynamic threshold settings: prune", self.prune, 0.0, 1.0)


@dataclass(frozen=True)
class LikelihoodThresholdConfig:
    """Ahmad et al. 2017's anomaly likelihood of the smoothed errors (section 4.2): their short
    average ``short`` (W' = 10) against the averages of the last ``window`` errors (Numenta's 8640);
    flag ``L >= 1 - epsilon``. The paper's epsilon is 1e-5; 1e-3 is the level NAB's threshold
    optimisation finds for the LSTM's errors with online adaptation and the hold-off (on the
    shared 24 series, docs/anomaly.md), so that the default flags score as well as tuned ones."""

    short: int = 10
    window: int = 8640
    epsilon: float = 1e-3
    min_history: int = 100

    def __post_init__(self) -> None:  # before any scorer allocates its window
        _check_window("likelihood threshold settings: window", self.window)
        _check_int("likelihood threshold settings: short", self.short, 1, self.window, "window")
        _check_int("likelihood threshold settings: min_history", self.min_history, 2, self.window, "window")
        _check_real("likelihood threshold settings: epsilon", self.epsilon, 1e-300, 0.5)


MAX_WINDOW = 10_000_000  # points a threshold's window may hold: 80 MB of float64


def _check_int(name: str, value: object, low: int, high: int, high_name: str | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    if value > high:
        bound = f"{high_name}={high}" if high_name else str(high)
        raise ValueError(f"{name} must be at most {bound}, got {value}")


def _check_window(name: str, value: object) -> None:
    _check_int(name, value, 2, MAX_WINDOW)


def _check_real(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value}")


@dataclass(frozen=True)
class ThresholdMethod:
    """A way to flag smoothed errors. A detector's settings hold one section per method, named
    after it (``gaussian``, ``dynamic``), of type ``config_class``; ``threshold`` names the one used.
    The scorer ``build`` returns also has ``warm(errors)`` (a trained detector warms it with its
    validation errors) and ``bounded(scores)`` (its scores mapped monotonically to [0, 1])."""

    name: str
    help: str
    config_class: type
    build: Callable[[Any], StreamingScorer]  # settings -> a fresh scorer of smoothed errors


THRESHOLDS: dict[str, ThresholdMethod] = {}


def register_threshold(method: ThresholdMethod) -> ThresholdMethod:
    if method.name in THRESHOLDS:
        raise ValueError(f"a threshold method named {method.name!r} is already registered")
    THRESHOLDS[method.name] = method
    return method


register_threshold(ThresholdMethod(
    "gaussian", "errors as a Gaussian over a trailing window, flagged above mean + z std (Malhotra 2015)",
    GaussianThresholdConfig,
    lambda c: WindowedGaussian(window=c.window, threshold=c.z, min_history=min(c.min_history, c.window)),
))  # fmt: skip
register_threshold(ThresholdMethod(
    "dynamic", "Hundman et al. 2018: z chosen per window by their criterion, then pruning",
    DynamicThresholdConfig,
    lambda c: DynamicThreshold(window=c.window, refit_every=c.refit_every, z_min=c.z_min, z_max=c.z_max,
                               z_step=c.z_step, prune=c.prune, min_history=c.min_history),
))  # fmt: skip
register_threshold(ThresholdMethod(
    "likelihood", "Ahmad et al. 2017: how unlikely the recent mean error is given a long window (HTM on NAB)",
    LikelihoodThresholdConfig,
    lambda c: AnomalyLikelihood(short=c.short, window=c.window, epsilon=c.epsilon, min_history=c.min_history),
))  # fmt: skip


def check_threshold(name: str) -> str:
    if name not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {', '.join(repr(n) for n in THRESHOLDS)}, got {name!r}")
    return name


def check_threshold_settings(config: Any) -> None:
    """Build every method from its section of ``config`` once, so bad settings fail before training."""
    check_threshold(config.threshold)
    for name, method in THRESHOLDS.items():
        try:
            method.build(getattr(config, name))
        except (TypeError, ValueError) as error:
            raise type(error)(f"{name} threshold settings: {error}") from None
