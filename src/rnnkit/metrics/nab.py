"""NAB scoring: the Numenta Anomaly Benchmark's standard profile, from its published description.

Lavin & Ahmad, "Evaluating Real-time Anomaly Detection Algorithms - the Numenta Anomaly
Benchmark" (2015), section 4, and NAB's ``sweeper.py`` conventions:

- every labelled anomaly window ``[left, right]`` (row indices, inclusive, width
  ``w = right - left + 1``) rewards its *first* detection only, by the scaled sigmoid of the
  detection's relative position ``y = -(right - i + 1) / w`` (``-1`` at the left edge, near 0 at
  the right edge), ``sigma(y) = 2 / (1 + exp(5 y)) - 1``, weighted ``A_TP / sigma(-1)`` so that a
  detection at the window's start earns exactly ``A_TP``;
- a detection outside every window is a false positive weighted ``A_FP * sigma(y)`` with
  ``y = |i - right_prev| / (w_prev - 1)`` measured from the preceding window (so one just after a
  window costs little), or ``-A_FP`` when no window precedes it;
- a window with no detection costs ``A_FN``;
- rows in the probationary period (the first 15% of a series, at most 750 rows) are not scored;
- the raw scores summed over the corpus are normalised so that the null detector (never fires)
  scores 0 and the perfect one (fires at every window's first row, nowhere else) scores 100.

Everything here is numpy and works on row indices; reading the NAB files and turning their label
windows into row ranges is :mod:`rnnkit.data.nab`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

PROBATION_FRACTION = 0.15


@dataclass(frozen=True)
class Profile:
    """Weights of true positives, false positives and false negatives (NAB's application profiles)."""

    tp: float = 1.0
    fp: float = 0.11
    fn: float = 1.0


STANDARD = Profile()
REWARD_LOW_FP = Profile(fp=0.22)  # NAB's reward_low_FP_rate
REWARD_LOW_FN = Profile(fn=2.0)  # NAB's reward_low_FN_rate
PROFILES = {"standard": STANDARD, "reward_low_FP_rate": REWARD_LOW_FP, "reward_low_FN_rate": REWARD_LOW_FN}


def scaled_sigmoid(y: float) -> float:
    """``2 / (1 + exp(5 y)) - 1`` in ``(-1, 1)``; NAB returns ``-1`` past ``y > 3``."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probationary_length(rows: int, fraction: float = PROBATION_FRACTION) -> int:
    """How many leading rows go unscored: ``min(floor(fraction * rows), fraction * 5000)`` as NAB."""
    if rows < 0:
        raise ValueError(f"rows must be a non-negative integer, got {rows}")
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must lie in [0, 1), got {fraction}")
    return int(min(math.floor(fraction * rows), fraction * 5000))


def _check_windows(windows: Sequence[tuple[int, int]], rows: int) -> list[tuple[int, int]]:
    checked, previous = [], -1
    for k, (left, right) in enumerate(windows):
        left, right = int(left), int(right)
        if not 0 <= left <= right < rows:
            raise ValueError(f"window {k} must satisfy 0 <= left <= right < {rows}, got ({left}, {right})")
        if left <= previous:
            raise ValueError(f"windows must be sorted and disjoint; window {k} ({left}, {right}) overlaps the one before")
        checked.append((left, right))
        previous = right
    return checked


def point_weights(rows: int, windows: Sequence[tuple[int, int]], profile: Profile = STANDARD) -> tuple[np.ndarray, np.ndarray]:
    """For each row: what a detection there would score, and its window's number (-1 outside).

    The score of a row inside a window is the true-positive reward (positive); outside, the
    false-positive cost (negative). Returns ``(weights (rows,), window_of (rows,))``.
    """
    windows = _check_windows(windows, rows)
    weights = np.empty(rows, dtype=float)
    window_of = np.full(rows, -1, dtype=int)
    max_tp = scaled_sigmoid(-1.0)
    previous: tuple[int, int] | None = None
    k = 0
    for i in range(rows):
        while k < len(windows) and windows[k][1] < i:
            previous = windows[k]
            k += 1
        if k < len(windows) and windows[k][0] <= i:  # inside window k
            left, right = windows[k]
            width = right - left + 1
            weights[i] = scaled_sigmoid(-(right - i + 1) / width) * profile.tp / max_tp
            window_of[i] = k
        elif previous is None:
            weights[i] = -1.0 * profile.fp
        else:
            left, right = previous
            width = right - left + 1
            # NAB divides by (width - 1); a one-row window would divide by zero, so it counts as width 2
            weights[i] = scaled_sigmoid(abs(i - right) / max(width - 1, 1)) * profile.fp
    return weights, window_of


@dataclass(frozen=True)
class SeriesScore:
    """One series' raw score and its counts (over the scored rows only)."""

    raw: float
    null: float  # what a detector that never fires scores
    perfect: float  # what one that fires at each window's first scored row scores
    true_positives: int  # windows detected
    false_negatives: int  # windows missed
    false_positives: int  # detections outside windows


def score_series(
    detections, windows: Sequence[tuple[int, int]], profile: Profile = STANDARD, *, probation: int | None = None
) -> SeriesScore:
    """NAB's raw score of one series' binary ``detections`` (``(rows,)`` booleans).

    ``windows`` are inclusive row ranges (:func:`window_indices`); ``probation`` (default
    :func:`probationary_length`) leading rows are ignored. A window whose rows all lie in the
    probationary period is not counted at all.
    """
    detections = np.asarray(detections)
    if detections.ndim != 1:
        raise ValueError(f"detections must be 1-D (rows,), got shape {detections.shape}")
    if detections.dtype != bool:
        if not np.isin(detections, (0, 1)).all():
            raise ValueError("detections must be booleans (or 0/1)")
        detections = detections.astype(bool)
    rows = len(detections)
    probation = probationary_length(rows) if probation is None else int(probation)
    if not 0 <= probation <= rows:
        raise ValueError(f"probation must lie in [0, {rows}], got {probation}")
    weights, window_of = point_weights(rows, windows, profile)
    scored = np.arange(rows) >= probation
    counted = sorted({int(w) for w in window_of[scored] if w >= 0})  # windows with a scored row
    fired = detections & scored
    raw, tp, fp = 0.0, 0, 0
    for k in counted:
        hits = np.flatnonzero(fired & (window_of == k))
        if len(hits):  # only the first detection counts; it is also the best (sigma decreases)
            raw += weights[hits[0]]
            tp += 1
        else:
            raw -= profile.fn
    outside = fired & (window_of < 0)
    raw += float(weights[outside].sum())
    fp = int(outside.sum())
    null = -profile.fn * len(counted)
    perfect = 0.0
    for k in counted:  # the first scored row of each window
        perfect += weights[np.flatnonzero(scored & (window_of == k))[0]]
    return SeriesScore(raw, null, perfect, tp, len(counted) - tp, fp)


def normalised(scores: Sequence[SeriesScore]) -> float:
    """``100 (raw - null) / (perfect - null)`` over the summed scores of a corpus."""
    raw = sum(s.raw for s in scores)
    null = sum(s.null for s in scores)
    perfect = sum(s.perfect for s in scores)
    if perfect == null:
        raise ValueError("the corpus has no scored anomaly window: the normalised score is undefined")
    return 100.0 * (raw - null) / (perfect - null)


def best_threshold(
    anomaly_scores: Mapping[str, np.ndarray],
    windows: Mapping[str, Sequence[tuple[int, int]]],
    profile: Profile = STANDARD,
    thresholds: Sequence[float] | None = None,
) -> tuple[float, float]:
    """NAB's threshold optimisation: the one threshold for all series that maximises the
    normalised score of ``score >= threshold``. Returns ``(threshold, normalised score)``."""
    if thresholds is None:
        thresholds = np.linspace(0.0, 1.0, 101)
    best = (float("nan"), -math.inf)
    for threshold in thresholds:
        result = normalised([score_series(np.nan_to_num(anomaly_scores[name]) >= threshold, windows[name], profile)
                             for name in anomaly_scores])  # fmt: skip
        if result > best[1]:
            best = (float(threshold), result)
    return best
