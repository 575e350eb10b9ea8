"""The Numenta Anomaly Benchmark's files: a series with its label windows as row ranges.

A NAB corpus (``root``) holds ``data/<category>/<file>.csv`` (columns ``timestamp``, ``value``)
and ``labels/combined_windows.json`` (for each file, its anomaly windows as ``[start, end]``
timestamps). :func:`read_nab_series` gives what :mod:`rnnkit.metrics.nab` scores. Needs pandas.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .series import read_csv_table, require, validate_frame


def window_indices(timestamps, windows: Sequence[Sequence]) -> list[tuple[int, int]]:
    """Label windows ``[[start, end], ...]`` (timestamps) as inclusive row ranges ``(left, right)``.

    ``timestamps`` is the series' sorted time index; a window holds the rows with
    ``start <= t <= end``. A window that holds no row is an error (the labels do not fit the data).
    """
    pd = require("pandas")
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


def read_nab_series(root: str | Path, name: str):
    """``root/data/<name>`` (e.g. ``realKnownCause/nyc_taxi.csv``) as ``(times, values, windows)``:
    the timestamps, the values ``(rows,)`` and the label windows as row ranges.

    NAB scores rows, not times, and a few of its files repeat a timestamp
    (``exchange-2_cpc_results.csv``), so the values are validated by row
    (:func:`~rnnkit.data.series.validate_frame` over the row number) and the times only parsed.
    """
    pd = require("pandas")
    root = Path(root)
    path = root / "data" / name
    table = read_csv_table(path)
    if "timestamp" not in table.columns:
        raise ValueError(f"{path} has no column 'timestamp'; its columns are {list(table.columns)}")
    frame = validate_frame(table, time_column=None, target="value", source=str(path))
    times = pd.DatetimeIndex(pd.to_datetime(table["timestamp"], format="mixed"))
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    if name not in labels:
        raise ValueError(f"{root / 'labels' / 'combined_windows.json'} has no windows for {name!r}")
    return times, frame["value"].to_numpy(), window_indices(times, labels[name])


def nab_series_names(root: str | Path) -> list[str]:
    """Every labelled series under ``root`` whose CSV file exists, as ``category/file.csv``."""
    root = Path(root)
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    return sorted(name for name in labels if (root / "data" / name).is_file())
