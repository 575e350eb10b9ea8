"""Reading a series to score from a CSV file, with the gaps of a regular series found and reported."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ...data.series import read_series_csv


GAPS = ("keep", "fill")


def read_values(path, time_column: str, target: str, *, gaps: str = "keep", duplicates: str = "keep"):
    """A validated series from a CSV file: ``(frame, values (N,))``.

    By default the rows are the file's, one for one, so that scores line up with the input. Gaps
    in a regular series (see :func:`find_gaps`) are reported as a warning each; with
    ``gaps="fill"`` they become NaN rows, which the scorers report as missing while their state
    moves on in time. Rows that repeat a timestamp are kept (``duplicates="keep"``, with a
    warning), or ``"first"``, ``"last"``, ``"mean"``, ``"error"``
    (:func:`~rnnkit.data.series.validate_frame`).
    """
    if gaps not in GAPS:
        raise ValueError(f"gaps must be one of {', '.join(repr(g) for g in GAPS)}, got {gaps!r}")
    fill = gaps == "fill"
    frame = read_series_csv(path, time_column, target, duplicates=duplicates)
    if len(frame) == 0:
        raise ValueError(f"{path} has a header but no rows: nothing to score")
    gaps, cadence = find_gaps(frame.index)
    shown = gaps[:MAX_GAP_WARNINGS]
    for start, count in shown:
        action = "scored as missing" if fill and count <= MAX_GAP_FILL else "not filled" if fill else "not filled (--gaps fill scores them as missing)"
        warnings.warn(f"{path}: {count} reading(s) missing from {start} (one every {_describe(cadence)}); {action}",
                      RuntimeWarning, stacklevel=2)  # fmt: skip
    if len(gaps) > len(shown):
        warnings.warn(f"{path}: {len(gaps) - len(shown)} more gap(s) not listed", RuntimeWarning, stacklevel=2)
    if fill and gaps:
        frame = frame.reindex(frame.index.append(_missing_index(gaps, cadence, frame.index)).sort_values())
    return frame, frame.iloc[:, 0].to_numpy(dtype=float)


MAX_GAP_FILL = 10_000  # a longer gap is reported but not filled (its NaN rows would swamp the output)
MAX_GAP_WARNINGS = 20


def find_gaps(index) -> tuple[list[tuple[Any, int]], Any]:
    """Missing readings of a regular series: ``([(first missing time, count), ...], cadence)``.

    The cadence is the median step between consecutive timestamps; a step of k cadences (k >= 2,
    within 1%) marks k - 1 missing readings. A series whose steps are not at least 90% at the
    cadence is irregular and has no gaps by this rule.
    """
    if len(index) < 3:
        return [], None
    times = index.dtype.kind == "M"
    ticks = np.asarray((index - index[0]).total_seconds() if times else index, dtype=float)  # seconds if times
    steps = np.diff(ticks)
    cadence = float(np.median(steps))
    if cadence <= 0 or np.mean(np.abs(steps - cadence) <= 0.01 * cadence) < 0.9:
        return [], None
    multiples = np.round(steps / cadence)
    gap = (multiples >= 2) & (np.abs(steps - multiples * cadence) <= 0.01 * cadence * multiples)
    unit = _cadence(index, cadence)
    return [(index[i] + unit, int(multiples[i]) - 1) for i in np.flatnonzero(gap)], unit


def _cadence(index, cadence: float):
    if index.dtype.kind == "M":
        import pandas as pd

        return pd.Timedelta(seconds=cadence)
    return int(round(cadence)) if index.dtype.kind in "iu" else cadence


def _describe(cadence) -> str:
    """``5min``, ``1h``, ``1D`` for a time step; the number itself for a numeric index."""
    try:
        from pandas.tseries.frequencies import to_offset

        return to_offset(cadence).freqstr
    except (TypeError, ValueError):
        return str(cadence)


def _missing_index(gaps, cadence, index):
    import pandas as pd

    times = [start + j * cadence for start, count in gaps if count <= MAX_GAP_FILL for j in range(count)]
    return pd.Index(times, name=index.name)
