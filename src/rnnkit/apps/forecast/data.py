"""The series a forecaster trains on, with its settings filled in from the data, the scaler, windows.

Shared by the app, :class:`~rnnkit.apps.forecast.Forecaster` and ``rnnkit forecast``. The last
``test_size`` rows are held out; the scaler (per-column standardization, of logs for a positive
target under ``transform="auto"``) is fitted on the rows before them only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from torch import Tensor

from ...data.series import Scaler, check_length, infer_season, load_dataset, read_series_csv, windows
from .config import ForecastConfig, check_calibration, steps_per_forecast


@dataclass
class SeriesSetup:
    frame: Any  # the validated DataFrame
    config: ForecastConfig  # with lookback, season and test_size filled in
    source: str

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    @property
    def train_end(self) -> int:
        return len(self.frame) - self.config.test_size


def resolve(frame, config: ForecastConfig, source: str, *, default_season: int | None = None,
            holdout: bool = True) -> SeriesSetup:  # fmt: skip
    """Fill in the settings left as None from the data, and check the series is long enough."""
    season = config.season or default_season or infer_season(frame.index)
    lookback = config.lookback or max(2 * season, 2 * config.horizon)
    test_size = config.test_size or 2 * config.horizon
    config = replace(config, season=season, lookback=lookback, test_size=test_size)
    check_length(len(frame), lookback=lookback, horizon=config.horizon, test_size=test_size if holdout else 0,
                 source=source)  # fmt: skip
    if holdout and len(frame) - test_size <= season:
        raise ValueError(f"{source} is too short: MASE needs more than season={season} rows before the held-out part")
    if config.calibrate:
        check_calibration(config, len(frame) - test_size if holdout else len(frame), source)
    return SeriesSetup(frame, config, source)


def configured_series(config: ForecastConfig) -> tuple[Any, str, int | None]:
    """The configured data: a CSV file, or the embedded data set. Returns (frame, source, season)."""
    if config.data is not None:
        frame = read_series_csv(config.data, config.time_column, config.target, config.covariate_list)
        return frame, str(config.data), None
    dataset = load_dataset(config.dataset)
    if config.covariate_list:
        raise ValueError(f"the embedded {config.dataset!r} series has no covariates, got {config.covariates!r}")
    return dataset.frame, dataset.description, dataset.season


def check_history(frame, config: ForecastConfig, source: str) -> None:
    """A forecast reads the last ``lookback`` rows: fewer is an error."""
    if len(frame) < config.lookback:
        raise ValueError(f"{source} is too short to forecast from: {len(frame)} rows, fewer than lookback={config.lookback}")


def fit_scaler(setup: SeriesSetup, rows: int) -> Scaler:
    values = setup.frame.to_numpy(dtype=float)[:rows]  # (N_train, F): training rows only
    transform = setup.config.transform
    positive = bool((values[:, 0] > 0).all())
    if transform == "log" and not positive:
        raise ValueError(f"transform='log' needs a positive target; {setup.columns[0]!r} has {values[:, 0].min()}")
    log = [transform == "log" or (transform == "auto" and positive)] + [False] * (values.shape[1] - 1)
    return Scaler.fit(values, setup.columns, log)


def training_windows(setup: SeriesSetup, scaler: Scaler, rows: int) -> tuple[Tensor, Tensor]:
    """Every window whose target block lies inside the first ``rows`` rows."""
    c = setup.config
    scaled = scaler.transform(setup.frame.to_numpy(dtype=float)[:rows])
    origins = range(c.lookback, rows - steps_per_forecast(c) + 1)
    inputs, targets, _ = windows(scaled, origins, c.lookback, steps_per_forecast(c))
    return inputs, targets
