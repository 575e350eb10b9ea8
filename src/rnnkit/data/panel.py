"""Many series in one long table (one row per series, time and value, as Darts, NeuralForecast and
statsforecast take them): reading and validation, per-series windows of adaptive length, and
batches bucketed by window length.

>>> import pandas as pd
>>> table = pd.DataFrame({"id": ["a"] * 4 + ["b"] * 3, "t": [1, 2, 3, 4, 1, 2, 3],
...                       "y": [1.0, 2, 3, 4, 5, 6, 7]})
>>> panel = validate_long(table, id_column="id", time_column="t", target="y")
>>> panel.ids, [len(v) for v in panel.values.values()]
(['a', 'b'], [4, 3])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .series import _frequency, _numeric, _parse_times, infer_season, read_csv_table, require


@dataclass
class Panel:
    """Validated series by id, in the order the file first names them: ``values[id]`` ``(N,)``
    floats, ``times[id]`` its sorted unique time index, ``static[id]`` its category ('' without a
    static column)."""

    ids: list[str]
    values: dict[str, np.ndarray]
    times: dict[str, Any]
    static: dict[str, str] = field(default_factory=dict)
    source: str = "data"

    @property
    def season(self) -> int:
        """The usual seasonal period of the series' time frequency (1 for integer times)."""
        longest = max(self.ids, key=lambda i: len(self.values[i]))
        return infer_season(self.times[longest])

    @property
    def frequency(self) -> str | None:
        """The datetime frequency of the longest series (pandas' name, 'MS', 'D'...), None for integer times."""
        pd = require("pandas")
        longest = self.times[max(self.ids, key=lambda i: len(self.values[i]))]
        return _frequency(longest) if isinstance(longest, pd.DatetimeIndex) and len(longest) >= 3 else None

    def subset(self, ids: Sequence[str]) -> Panel:
        return Panel(list(ids), {i: self.values[i] for i in ids}, {i: self.times[i] for i in ids},
                     {i: self.static.get(i, "") for i in ids}, self.source)  # fmt: skip


def read_long_csv(path: str | Path, *, id_column: str, time_column: str, target: str, static: str | None = None) -> Panel:
    """A long CSV file (one row per series and time) as a validated :class:`Panel`."""
    return validate_long(read_csv_table(path), id_column=id_column, time_column=time_column, target=target,
                         static=static, source=str(path))  # fmt: skip


def validate_long(table, *, id_column: str, time_column: str, target: str, static: str | None = None,
                  source: str = "data") -> Panel:  # fmt: skip
    """``table``'s series as a :class:`Panel`; else a ValueError naming the column, series and row.

    Rows may come in any order; within a series they are sorted by time. Refused: a missing
    column, a blank id, a missing or non-numeric value, a duplicate (id, time) row, a series whose
    static category changes, and series of different time frequencies in one table.
    """
    pd = require("pandas")
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(table).__name__}")
    wanted = [id_column, time_column, target] + ([static] if static else [])
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"the id column, time column, target and static column must be distinct, got {wanted}")
    for column, role in zip(wanted, ("--id-column", "--time-column", "--target", "task.static")):
        if column not in table.columns:
            raise ValueError(f"{source} has no column {column!r} ({role}); its columns are"
                             f" {', '.join(repr(str(c)) for c in table.columns)}")  # fmt: skip
    if len(table) == 0:
        raise ValueError(f"{source} has a header but no rows")
    table = table.reset_index(drop=True)
    ids = table[id_column].astype(str).str.strip()
    if (ids == "").any():
        raise ValueError(f"{source}: blank series id in column {id_column!r} at row {int(np.flatnonzero(ids == '')[0]) + 1}")
    times = _parse_times(table[time_column], time_column, source)
    values = _numeric(table[target], target, times, source)
    frame = pd.DataFrame({"id": ids.to_numpy(), "time": times, "value": values})
    duplicated = frame.duplicated(["id", "time"])
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise ValueError(f"{source}: duplicate row for series {frame['id'][row]!r} at time {frame['time'][row]}"
                         f" (row {row + 1}): one value per series and time")  # fmt: skip
    order = list(dict.fromkeys(frame["id"]))
    panel = Panel(order, {}, {}, {}, source)
    categories = table[static].astype(str).str.strip() if static else None
    for key, group in frame.groupby("id", sort=False):
        group = group.sort_values("time", kind="stable")
        panel.values[key] = group["value"].to_numpy(dtype=float)
        panel.times[key] = pd.Index(group["time"].to_numpy(), name=time_column)
        if categories is not None:
            labels = categories[group.index].unique()
            if len(labels) > 1:
                raise ValueError(f"{source}: series {key!r} has more than one {static!r} ({', '.join(map(repr, labels[:3]))});"
                                 " a static covariate is one value per series")  # fmt: skip
            panel.static[key] = str(labels[0])
        else:
            panel.static[key] = ""
    check_frequencies(panel)
    return panel


def check_frequencies(panel: Panel) -> None:
    """One time frequency (datetimes) or one stride (integers) for every series of ``panel``."""
    pd = require("pandas")
    seen: dict[str, str] = {}
    for key in panel.ids:
        index = panel.times[key]
        if len(index) < 3:
            continue
        if isinstance(index, pd.DatetimeIndex):
            frequency = _frequency(pd.DatetimeIndex(index))
            if frequency is None:
                raise ValueError(f"{panel.source}: series {key!r} has irregular times (no frequency pandas can infer)")
        else:
            strides = np.unique(np.diff(np.asarray(index, dtype=np.int64)))
            if len(strides) > 1:
                raise ValueError(f"{panel.source}: series {key!r} has irregular time steps {strides[:4].tolist()}")
            frequency = f"every {int(strides[0])}"
        seen.setdefault(frequency, key)
        if len(seen) > 1:
            (f1, k1), (f2, k2) = list(seen.items())[:2]
            raise ValueError(f"{panel.source}: mixed frequencies in one file: series {k1!r} is {f1!r}, series {k2!r}"
                             f" is {f2!r}; train one model per frequency")  # fmt: skip


def adaptive_windows(scaled: np.ndarray, origins: Sequence[int], lookback: int, horizon: int,
                     features: np.ndarray | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """Windows of up to ``lookback`` values before each origin, shorter where the series starts later.

    Like :func:`rnnkit.data.series.windows`, each window is taken relative to its last value (the
    level). Returns inputs ``(M, lookback, 1 + S)`` padded with zeros after each window's
    ``lengths`` valid steps (``S`` static ``features`` repeated at every step), targets
    ``(M, horizon)`` (NaN past the end of the data), ``lengths`` ``(M,)`` and levels ``(M,)``.
    """
    scaled = np.asarray(scaled, dtype=np.float32)
    statics = np.zeros(0, np.float32) if features is None else np.asarray(features, np.float32)
    M, n = len(origins), len(scaled)
    inputs = np.zeros((M, lookback, 1 + len(statics)), np.float32)
    targets = np.full((M, horizon), np.nan, np.float32)
    lengths = np.zeros(M, np.int64)
    levels = np.zeros(M, np.float32)
    for row, origin in enumerate(origins):
        if not 1 <= origin <= n:
            raise ValueError(f"a forecast origin must lie in [1, {n}], got {origin}")
        length = min(lookback, origin)
        level = scaled[origin - 1]
        inputs[row, :length, 0] = scaled[origin - length : origin] - level
        inputs[row, :length, 1:] = statics
        ahead = scaled[origin : origin + horizon] - level
        targets[row, : len(ahead)] = ahead
        lengths[row], levels[row] = length, level
    return torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(lengths), torch.from_numpy(levels)


class BucketBatches:
    """Batches of windows of similar length: each epoch the rows are sorted by length (ties in a
    seeded random order), cut into batches, and the batches shuffled; each batch's inputs are cut
    to its longest window, so short series cost short sequences. Yields ``(inputs, targets,
    lengths)``; the order depends only on ``seed`` and the epoch (a resumed run sees the same).
    """

    stateful = False

    def __init__(self, inputs: Tensor, targets: Tensor, lengths: Tensor, *, batch_size: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:  # fmt: skip
        if not len(inputs) == len(targets) == len(lengths):
            raise ValueError(f"inputs, targets and lengths must have as many rows, got {len(inputs)}, {len(targets)},"
                             f" {len(lengths)}")  # fmt: skip
        if len(inputs) == 0:
            raise ValueError("no training window: every series is shorter than the shortest lookback plus one step")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.inputs, self.targets, self.lengths = inputs, targets, lengths
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size

    def shard(self, rank: int, world_size: int) -> BucketBatches:
        return BucketBatches(self.inputs, self.targets, self.lengths, batch_size=self.batch_size, seed=self.seed,
                             rank=rank, world_size=world_size)  # fmt: skip

    def __len__(self) -> int:
        return -(-len(self.inputs) // self.batch_size)

    def epoch(self, index: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        ties = torch.rand(len(self.inputs), generator=generator)
        order = torch.from_numpy(np.lexsort((ties.numpy(), self.lengths.numpy())))  # by length, then at random
        batches = list(order.split(self.batch_size))
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        for b in shuffled[start:]:
            rows = batches[b]
            share = -(-len(rows) // self.world_size)
            rows = rows[self.rank * share : (self.rank + 1) * share]
            longest = int(self.lengths[rows].max())
            yield self.inputs[rows, :longest], self.targets[rows], self.lengths[rows]
