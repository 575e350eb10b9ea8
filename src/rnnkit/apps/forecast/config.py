"""Forecast settings (the ``task`` section of ``rnnkit train forecast``) and what follows from them alone."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ForecastConfig:
    data: str | None = None  # a CSV file; None: the embedded ``dataset``
    dataset: Literal["airline", "sunspots"] = "airline"
    time_column: str | None = None  # required with ``data``
    target: str | None = None  # required with ``data``
    covariates: str = ""  # comma-separated columns, read over the lookback window only
    horizon: int = 12
    lookback: int | None = None  # None: max(2 * season, 2 * horizon)
    season: int | None = None  # None: the data set's, or inferred from the time frequency
    test_size: int | None = None  # rows held out for the backtest; None: 2 * horizon
    step: int = 1  # rolling-origin stride through the held-out rows
    transform: Literal["auto", "log", "none"] = "auto"  # auto: log for a positive target
    head: Literal["gaussian", "quantile"] = "gaussian"
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)  # quantile head: lowest and highest bound the interval
    interval: float = 0.8  # gaussian head: central interval probability
    batch_size: int = 16
    baselines: bool = True  # ETS and ARIMA (statsmodels) beside naive and seasonal naive
    strategy: Literal["direct", "autoregressive"] = "direct"  # all steps at once, or one step fed back
    sample_paths: int = 200  # autoregressive: sampled paths that the point forecast and interval come from
    calibrate: bool = True  # conformal calibration of the interval on the end of the training part
    calibration_size: int | None = None  # rows at the end of the training part it uses; None: 2 * horizon
    # many series in one long file (a global model, see ``many``): the column naming each series
    id_column: str | None = None
    static: str | None = None  # a column of one category per series, fed to the model as a one-hot input
    min_lookback: int = 3  # many series: the shortest window; a series shorter than this + 1 uses the fallback
    windows_per_series: int | None = None  # many series: train on each series' last windows only; None: all
    # many series: divide each series by its classical multiplicative seasonal indices (fitted on its
    # history, where the M4 90% seasonality test passes) before the network, multiply them back after
    deseasonalize: bool = True

    def __post_init__(self) -> None:
        for name in ("horizon", "step", "batch_size"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("lookback", "season", "test_size", "calibration_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or null, got {value!r}")
        if self.test_size is not None and self.test_size < self.horizon:
            raise ValueError(f"test_size must be at least horizon={self.horizon}, got {self.test_size}")
        if self.data is not None and (not self.time_column or not self.target):
            raise ValueError("--data needs --time-column and --target: the CSV columns of time and of the series")
        if self.id_column is not None:
            if self.covariates or self.strategy != "direct":
                raise ValueError("many series (id_column) take no covariates and strategy='direct' only, got"
                                 f" covariates={self.covariates!r}, strategy={self.strategy!r}")  # fmt: skip
            if self.test_size is not None and self.test_size != self.horizon:
                raise ValueError(f"many series (id_column) hold out the last horizon={self.horizon} rows of every"
                                 f" series; test_size must be null or {self.horizon}, got {self.test_size}")  # fmt: skip
        elif self.static is not None:
            raise ValueError(f"static={self.static!r} needs id_column: a static covariate is one value per series")
        if isinstance(self.min_lookback, bool) or not isinstance(self.min_lookback, int) or self.min_lookback < 1:
            raise ValueError(f"min_lookback must be a positive integer, got {self.min_lookback!r}")
        if self.windows_per_series is not None and (not isinstance(self.windows_per_series, int)
                                                    or self.windows_per_series < 1):  # fmt: skip
            raise ValueError(f"windows_per_series must be a positive integer or null, got {self.windows_per_series!r}")
        qs = self.quantiles
        if len(qs) < 2 or list(qs) != sorted(set(qs)) or not all(0 < q < 1 for q in qs):
            raise ValueError(f"quantiles must be at least two increasing numbers in (0, 1), got {list(qs)}")
        if not 0 < self.interval < 1:
            raise ValueError(f"interval must be in (0, 1), got {self.interval}")
        if self.strategy == "autoregressive" and (self.head != "gaussian" or self.covariate_list):
            raise ValueError(
                "strategy='autoregressive' needs head='gaussian' (paths are sampled from it) and no covariates"
                f" (their future values are unknown), got head={self.head!r}, covariates={self.covariates!r}"
            )
        if self.sample_paths < 10:
            raise ValueError(f"sample_paths must be at least 10, got {self.sample_paths}")
        if not isinstance(self.calibrate, bool):
            raise TypeError(f"calibrate must be true or false, got {self.calibrate!r}")
        if self.calibrate and self.calibration_size is not None:
            needed = self.horizon + min_calibration_origins(self.level) - 1
            if self.calibration_size < needed:
                raise ValueError(
                    f"calibration_size must be at least horizon + {needed - self.horizon} = {needed} rows (the"
                    f" {self.level:g} conformal quantile needs {needed - self.horizon + 1} forecast origins whose"
                    f" horizon fits), got {self.calibration_size}"
                )

    @property
    def level(self) -> float:
        """The interval's nominal coverage: ``interval``, or the quantile head's outer quantiles' spread."""
        return self.interval if self.head == "gaussian" else self.quantiles[-1] - self.quantiles[0]

    @property
    def covariate_list(self) -> list[str]:
        return [c.strip() for c in self.covariates.split(",") if c.strip()]


def head_size(config: ForecastConfig) -> int:
    """K, the head's outputs per step: a mean and a scale, or one per quantile."""
    return 2 if config.head == "gaussian" else len(config.quantiles)


def steps_per_forecast(config: ForecastConfig) -> int:
    """Steps the head predicts at once: the horizon (direct), or one (autoregressive)."""
    return config.horizon if config.strategy == "direct" else 1


def point_column(config: ForecastConfig) -> str:
    """``mean`` for the Gaussian head, ``median`` for the quantile head (its middle quantile)."""
    return "mean" if config.head == "gaussian" else "median"


def interval_label(config: ForecastConfig) -> str:
    """How the interval is named in reports and plots: ``80% interval``, ``0.1-0.9 quantiles``."""
    if config.head == "gaussian":
        return f"{config.interval:.0%} interval"
    return f"{config.quantiles[0]:g}-{config.quantiles[-1]:g} quantiles"


def min_calibration_origins(level: float) -> int:
    """The fewest scores n for which the conformal rank ceil((n + 1) * level) is at most n."""
    n = 1
    while math.ceil((n + 1) * level - 1e-9) > n:
        n += 1
    return n


def calibration_rows(config: ForecastConfig, train_rows: int) -> tuple[int, int]:
    """The calibration part ``[start, train_rows)``: the last ``calibration_size`` training rows."""
    size = config.calibration_size or 2 * config.horizon
    return train_rows - size, train_rows


def check_calibration(config: ForecastConfig, train_rows: int, source: str) -> None:
    """The calibration part must hold enough origins, and leave the second model a training window."""
    start, end = calibration_rows(config, train_rows)
    needed = min_calibration_origins(config.level)
    origins = end - config.horizon + 1 - max(start, config.lookback)
    if origins < needed:
        raise ValueError(
            f"calibration_size={end - start} is too short for horizon={config.horizon}: the {config.level:g} conformal"
            f" quantile needs {needed} forecast origins, it leaves {max(origins, 0)}; set a larger"
            " task.calibration_size or task.calibrate=false"
        )
    if start < config.lookback + steps_per_forecast(config):
        raise ValueError(
            f"{source} is too short to calibrate: calibration_size={end - start} leaves {max(start, 0)} training rows"
            f" before it, fewer than lookback={config.lookback} + {steps_per_forecast(config)} for one training window;"
            " set a smaller task.calibration_size or task.calibrate=false"
        )
