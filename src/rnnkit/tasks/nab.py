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

Everything here is numpy; reading the NAB files (:func:`load_series`) needs pandas.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROBATION_FRACTION = 0.15


@dataclass(frozen=True)
class Profile:
    """Weights of true positives, false positives and false negatives (NAB's application profiles)."""

    tp: float = 1.0
    fp: float = 0.11
    fn: float = 1.0


STANDARD = Profile()


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


def window_indices(timestamps, windows: Sequence[Sequence]) -> list[tuple[int, int]]:
    """Label windows ``[[start, end], ...]`` (timestamps) as inclusive row ranges ``(left, right)``.

    ``timestamps`` is the series' sorted time index; a window holds the rows with
    ``start <= t <= end``. A window that holds no row is an error (the labels do not fit the data).
    """
    import pandas as pd

    times = pd.DatetimeIndex(pd.to_datetime(timestamps))
    out = []
    for k, window in enumerate(windows):
        if len(window) != 2:
            raise ValueError(f"window {k} must be [start, end], got {window!r}")
        start, end = pd.Timestamp(window[0]), pd.Timestamp(window[1])
        if end < start:
            raise ValueError(f"window {k} ends ({end}) before it starts ({start})")
        left = int(times.searchsorted(start, side="left"))
        right = int(times.searchsorted(end, side="right")) - 1
        if right < left:
            raise ValueError(f"window {k} [{start}, {end}] holds no row of the series")
        out.append((left, right))
    return out


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


# --- the NAB files --------------------------------------------------------------------------


def load_series(root: str | Path, name: str):
    """``root/data/<name>`` (e.g. ``realKnownCause/nyc_taxi.csv``) as ``(times, values, windows)``:
    the timestamps, the values ``(rows,)`` and the label windows as row ranges.

    NAB scores rows, not times, and a few of its files repeat a timestamp
    (``exchange-2_cpc_results.csv``), so the values are validated by row
    (:func:`~rnnkit.tasks.series.validate_frame` over the row number) and the times only parsed.
    """
    from .series import require, validate_frame

    pd = require("pandas")
    root = Path(root)
    path = root / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    if "timestamp" not in table.columns:
        raise ValueError(f"{path} has no column 'timestamp'; its columns are {list(table.columns)}")
    frame = validate_frame(table, time_column=None, target="value", source=str(path))
    times = pd.DatetimeIndex(pd.to_datetime(table["timestamp"], format="mixed"))
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    if name not in labels:
        raise ValueError(f"{root / 'labels' / 'combined_windows.json'} has no windows for {name!r}")
    return times, frame["value"].to_numpy(), window_indices(times, labels[name])


def series_names(root: str | Path) -> list[str]:
    """Every labelled series under ``root`` whose CSV file exists, as ``category/file.csv``."""
    root = Path(root)
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    return sorted(name for name in labels if (root / "data" / name).is_file())
