"""Time series for forecasting: reading and validating tables, scaling, windowing, embedded data.

A series here is a pandas ``DataFrame`` indexed by time (datetimes, or integers such as years),
sorted, without duplicates, with the target in the first column and covariates after it; every
cell numeric and present. :func:`read_series_csv` and :func:`validate_frame` make one or raise a
``ValueError`` that says which column, row or timestamp is wrong; :func:`read_csv_table` is the
file reading under them (the NAB reader, :mod:`rnnkit.data.nab`, uses it too).

pandas is an optional dependency (``pip install 'rnnkit[timeseries]'``); nothing here imports it
at module level, so ``import rnnkit`` works without it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import _extras
from .._extras import MissingExtraError as MissingExtraError

EXTRA_HINT = "pip install 'rnnkit[timeseries]'"


def require(module: str):
    """Import ``module`` (pandas, statsmodels) or say how to install the forecasting extra."""
    return _extras.require(module, "timeseries", "forecasting")


# --- embedded data sets ----------------------------------------------------------------------

# Box & Jenkins (1976) Series G: international airline passengers, thousands per month,
# January 1949 to December 1960. statsmodels ships these numbers only inside its test suite
# (statsmodels/tsa/statespace/tests/results/results_sarimax.py, ``air2_data``, from Stata's
# air2), which distributions may strip, so rnnkit keeps its own copy; tests check the two agree.
AIRLINE_PASSENGERS = (
    112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118, 115, 126, 141, 135, 125, 149, 170, 170,
    158, 133, 114, 140, 145, 150, 178, 163, 172, 178, 199, 199, 184, 162, 146, 166, 171, 180, 193, 181,
    183, 218, 230, 242, 209, 191, 172, 194, 196, 196, 236, 235, 229, 243, 264, 272, 237, 211, 180, 201,
    204, 188, 235, 227, 234, 264, 302, 293, 259, 229, 203, 229, 242, 233, 267, 269, 270, 315, 364, 347,
    312, 274, 237, 278, 284, 277, 317, 313, 318, 374, 413, 405, 355, 306, 271, 306, 315, 301, 356, 348,
    355, 422, 465, 467, 404, 347, 305, 336, 340, 318, 362, 348, 363, 435, 491, 505, 404, 359, 310, 337,
    360, 342, 406, 396, 420, 472, 548, 559, 463, 407, 362, 405, 417, 391, 419, 461, 472, 535, 622, 606,
    508, 461, 390, 432,
)


@dataclass(frozen=True)
class Dataset:
    frame: Any  # a validated DataFrame: time index, target column
    season: int  # the seasonal period that seasonal naive and MASE use
    description: str


def load_dataset(name: str) -> Dataset:
    """``"airline"`` (monthly, season 12) or ``"sunspots"`` (yearly, season 11: the solar cycle)."""
    pd = require("pandas")
    if name == "airline":
        index = pd.date_range("1949-01-01", periods=len(AIRLINE_PASSENGERS), freq="MS", name="month")
        frame = pd.DataFrame({"passengers": np.asarray(AIRLINE_PASSENGERS, dtype=float)}, index=index)
        return Dataset(frame, 12, "airline passengers, monthly 1949-1960 (Box & Jenkins series G)")
    if name == "sunspots":
        sunspots = require("statsmodels.datasets.sunspots").load_pandas().data
        index = pd.Index(sunspots["YEAR"].astype(int).to_numpy(), name="year")
        frame = pd.DataFrame({"sunactivity": sunspots["SUNACTIVITY"].to_numpy(dtype=float)}, index=index)
        return Dataset(frame, 11, "yearly sunspot activity 1700-2008 (statsmodels.datasets.sunspots)")
    raise ValueError(f"dataset must be 'airline' or 'sunspots', got {name!r}")


# --- reading and validation ------------------------------------------------------------------


def read_csv_table(path: str | Path):
    """A CSV file with a header row as a DataFrame of strings, every cell as written (an empty
    cell stays ``''``, for :func:`validate_frame` to report as missing); a missing, empty or
    unreadable file is a clear error."""
    pd = require("pandas")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist")
    if not path.is_file():
        raise ValueError(f"data file {path} is not a file")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"data file {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"data file {path} is not a readable CSV file: {' '.join(str(error).split())}") from None


def read_series_csv(path: str | Path, time_column: str, target: str, covariates: Sequence[str] = (), *,
                    duplicates: str = "error"):  # fmt: skip
    """A CSV file as a validated series frame (see :func:`validate_frame`)."""
    table = read_csv_table(path)
    return validate_frame(table, time_column=time_column, target=target, covariates=covariates, source=str(path),
                          duplicates=duplicates)  # fmt: skip


DUPLICATES = ("error", "keep", "first", "last", "mean")


_MISSING = {"", "na", "nan", "n/a", "null", "none", "-"}


def validate_frame(table, *, time_column: str | None, target: str, covariates: Sequence[str] = (), source: str = "data",
                   duplicates: str = "error"):  # fmt: skip
    """``table``'s target and covariates as floats indexed by sorted, unique time; else a ValueError.

    ``time_column=None`` takes the time from the index. Times are integers (years, steps) when
    every value is an integer, else datetimes. A repeated timestamp is an error by default;
    ``duplicates`` says otherwise: ``"keep"`` every row as it stands (the index then repeats),
    ``"first"``/``"last"`` row of each time, or the ``"mean"`` of its values; each with a warning
    that says how many.
    """
    pd = require("pandas")
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {', '.join(repr(d) for d in DUPLICATES)}, got {duplicates!r}")
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(table).__name__}")
    wanted = [target, *covariates]
    if time_column is not None:
        wanted.insert(0, time_column)
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"the time column, target and covariates must be distinct columns, got {wanted}")
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise ValueError(
            f"{source} has no column {missing[0]!r}; its columns are {', '.join(repr(str(c)) for c in table.columns)}"
        )
    times = table[time_column] if time_column is not None else table.index.to_series()
    index = _parse_times(times, time_column or "index", source)
    values = {}
    for column in [target, *covariates]:
        values[column] = _numeric(table[column], column, index, source)
    frame = pd.DataFrame(values, index=index)
    duplicated = index.duplicated()
    if duplicated.any() and duplicates == "error":
        raise ValueError(f"{source}: duplicate timestamp {index[duplicated][0]} in {time_column or 'the index'}"
                         " (a policy for them: keep, first, last or mean)")  # fmt: skip
    if not index.is_monotonic_increasing:
        position = int(np.flatnonzero(np.diff(index.asi8 if hasattr(index, "asi8") else index.to_numpy()) < 0)[0])
        raise ValueError(
            f"{source}: timestamps must be sorted ascending; {index[position + 1]} comes after {index[position]}"
        )
    if duplicated.any():
        count, first = int(duplicated.sum()), index[duplicated][0]
        if duplicates == "keep":
            action = "kept, each row as it stands"
        else:
            grouped = frame.groupby(level=0, sort=False)
            frame = grouped.mean() if duplicates == "mean" else grouped.nth(0 if duplicates == "first" else -1)
            action = {"first": "the first row of each kept", "last": "the last row of each kept",
                      "mean": "their values averaged"}[duplicates]  # fmt: skip
        warnings.warn(f"{source}: {count} row(s) repeat an earlier timestamp (the first: {first}); {action}",
                      RuntimeWarning, stacklevel=3)  # fmt: skip
    return frame


def _parse_times(times, name: str, source: str):
    pd = require("pandas")
    text = times.astype(str).str.strip()
    blank = text.str.lower().isin(_MISSING)
    if blank.any():
        raise ValueError(f"{source}: missing timestamp in column {name!r} at row {_row(blank)}")
    as_number = pd.to_numeric(text, errors="coerce")
    if as_number.notna().all() and (as_number == as_number.round()).all():
        return pd.Index(as_number.astype("int64").to_numpy(), name=name)
    parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    if parsed.isna().any():
        bad = parsed.isna()
        raise ValueError(f"{source}: column {name!r} row {_row(bad)}: cannot read {text[bad].iloc[0]!r} as a time")
    return pd.DatetimeIndex(parsed.to_numpy(), name=name)


def _numeric(column, name: str, index, source: str) -> np.ndarray:
    pd = require("pandas")
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        numbers = column.astype(float)
        bad_missing = numbers.isna()
    else:
        text = column.astype(str).str.strip()
        bad_missing = text.str.lower().isin(_MISSING) | column.isna()
        numbers = pd.to_numeric(text.where(~bad_missing, None), errors="coerce")
        not_numeric = numbers.isna() & ~bad_missing
        if not_numeric.any():
            where = int(np.flatnonzero(not_numeric.to_numpy())[0])
            raise ValueError(
                f"{source}: column {name!r} holds a non-numeric value {text.iloc[where]!r}"
                f" at row {where + 1} (time {index[where]})"
            )
    if bad_missing.any():
        where = int(np.flatnonzero(bad_missing.to_numpy())[0])
        raise ValueError(
            f"{source}: column {name!r} has {int(bad_missing.sum())} missing value(s), the first at row {where + 1}"
            f" (time {index[where]}); fill or drop them first"
        )
    values = numbers.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        where = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"{source}: column {name!r} holds a non-finite value at row {where + 1} (time {index[where]})")
    return values


def _row(mask) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def infer_season(index) -> int:
    """The usual seasonal period of a time index's frequency: 12 monthly, 4 quarterly, 7 daily..."""
    pd = require("pandas")
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 3:
        return 1
    frequency = _frequency(index)
    if frequency is None:
        return 1
    head = frequency.split("-")[0]
    digits = head[: len(head) - len(head.lstrip("0123456789"))]
    base, multiple = head[len(digits) :].upper(), int(digits or 1)
    # sub-daily first ("MIN" would match the monthly "M"): the period is one day, or a business day of 8 hours
    per_day = {"MIN": 1440, "T": 1440, "H": 24, "BH": 8}.get(base)
    if per_day is not None:
        return per_day // multiple if per_day % multiple == 0 and per_day // multiple > 1 else 1
    for prefix, season in (("MS", 12), ("ME", 12), ("M", 12), ("QS", 4), ("QE", 4), ("Q", 4), ("W", 52),
                           ("B", 5), ("D", 7), ("H", 24)):  # fmt: skip
        if base.startswith(prefix):
            return season
    return 1


def _frequency(index) -> str | None:
    """pandas' inferred frequency as a string ('MS', 'D'...), on pandas 2 and 3 alike."""
    import warnings

    pd = require("pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 announces that infer_freq will return an offset
        frequency = pd.infer_freq(index)
    return getattr(frequency, "freqstr", frequency)


def future_index(index, steps: int):
    """The ``steps`` times after the end of ``index``, at its frequency (or its integer stride)."""
    pd = require("pandas")
    if isinstance(index, pd.DatetimeIndex):
        frequency = _frequency(index) if len(index) >= 3 else None
        if frequency is None:
            stride = index[-1] - index[-2]
            return pd.DatetimeIndex([index[-1] + stride * (i + 1) for i in range(steps)], name=index.name)
        return pd.date_range(index[-1], periods=steps + 1, freq=frequency, name=index.name)[1:]
    stride = int(index[-1] - index[-2]) if len(index) > 1 else 1
    return pd.Index([int(index[-1]) + stride * (i + 1) for i in range(steps)], name=index.name)


# --- scaling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scaler:
    """Per-column standardization, optionally of log values: ``z = (f(x) - mean) / std``.

    Fitted on the training rows only, so nothing about the held-out future leaks into the model;
    saved in the run directory as JSON (:meth:`to_json`).
    """

    columns: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    log: tuple[bool, ...]

    @classmethod
    def fit(cls, values: np.ndarray, columns: Sequence[str], log: Sequence[bool]) -> Scaler:
        values = np.asarray(values, dtype=float)  # (N, F)
        if values.ndim != 2 or values.shape[1] != len(columns):
            raise ValueError(f"values must be (rows, {len(columns)}), got shape {values.shape}")
        for j, (name, use_log) in enumerate(zip(columns, log)):
            if use_log and (values[:, j] <= 0).any():
                raise ValueError(f"transform='log' needs positive values, but column {name!r} has {values[:, j].min()}")
        transformed = np.where(np.asarray(log), np.log(np.where(np.asarray(log), values, 1.0)), values)
        std = transformed.std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant column is only centred
        return cls(tuple(columns), tuple(transformed.mean(0).tolist()), tuple(std.tolist()), tuple(bool(x) for x in log))

    def transform(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)  # (N, F)
        log = np.asarray(self.log)
        if (values[:, log] <= 0).any():
            raise ValueError("transform='log' needs positive values; the data holds zero or negative ones")
        out = np.where(log, np.log(np.where(log, values, 1.0)), values)
        return (out - np.asarray(self.mean)) / np.asarray(self.std)

    def inverse(self, scaled: np.ndarray, column: int = 0) -> np.ndarray:
        """Column ``column`` back in the data's units (any shape)."""
        out = np.asarray(scaled, dtype=float) * self.std[column] + self.mean[column]
        return np.exp(out) if self.log[column] else out

    def to_json(self) -> str:
        return json.dumps({"columns": list(self.columns), "mean": list(self.mean), "std": list(self.std),
                           "log": list(self.log)}, indent=1)  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Scaler:
        """A scaler as saved (``scaler.json``), checked: one finite mean and positive std per column."""
        try:
            columns, mean, std, log = (tuple(data[k]) for k in ("columns", "mean", "std", "log"))
        except (KeyError, TypeError) as error:
            raise ValueError(f"a scaler needs columns, mean, std and log lists, got {error}") from None
        if not (len(columns) == len(mean) == len(std) == len(log) >= 1):
            raise ValueError(f"a scaler needs one mean, std and log flag per column, got {len(columns)} columns,"
                             f" {len(mean)} means, {len(std)} stds, {len(log)} flags")  # fmt: skip
        values = np.asarray(mean + std, dtype=float)
        if not np.isfinite(values).all() or min(std) <= 0:
            raise ValueError(f"a scaler's means must be finite and its stds positive, got mean {mean}, std {std}")
        return cls(columns, mean, std, tuple(bool(v) for v in log))


# --- windowing -------------------------------------------------------------------------------


def windows(scaled: np.ndarray, origins: Sequence[int], lookback: int, horizon: int) -> tuple[Tensor, Tensor, Tensor]:
    """Inputs, targets and levels for forecasts made at ``origins`` (the index of the first step ahead).

    ``scaled`` is ``(N, F)`` with the target in column 0. Each window's target channel is shifted
    by the window's last observed target (its level), so the model learns changes, which carry
    over to levels the training data never reached (a trending series). Returns inputs
    ``(M, lookback, F)``, targets ``(M, horizon)`` (NaN past the end of the data) and levels ``(M,)``.
    """
    scaled = np.asarray(scaled, dtype=np.float32)
    n = scaled.shape[0]
    inputs, targets, levels = [], [], []
    for origin in origins:
        if origin < lookback or origin > n:
            raise ValueError(f"a forecast origin must lie in [lookback={lookback}, {n}], got {origin}")
        window = scaled[origin - lookback : origin].copy()  # (L, F)
        level = window[-1, 0]
        window[:, 0] -= level
        future = np.full(horizon, np.nan, dtype=np.float32)
        ahead = scaled[origin : origin + horizon, 0]
        future[: len(ahead)] = ahead - level
        inputs.append(window)
        targets.append(future)
        levels.append(level)
    return (torch.from_numpy(np.stack(inputs)) if inputs else torch.zeros(0, lookback, scaled.shape[1]),
            torch.from_numpy(np.stack(targets)) if targets else torch.zeros(0, horizon),
            torch.tensor(levels, dtype=torch.float32))  # fmt: skip


def check_length(rows: int, *, lookback: int, horizon: int, test_size: int, source: str) -> None:
    """Enough rows for one training window before the held-out part, and one test forecast."""
    need = lookback + horizon + test_size
    if rows < need:
        raise ValueError(
            f"{source} is too short: {rows} rows, but lookback={lookback} + horizon={horizon} +"
            f" test_size={test_size} (held out) need at least {need}"
        )
