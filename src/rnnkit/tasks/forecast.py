"""Time-series forecasting: a recurrent direct multi-horizon forecaster with prediction intervals.

``rnnkit train forecast --data FILE.csv --time-column T --target Y --horizon H`` (or an embedded
``--task.dataset``), ``rnnkit forecast RUN_DIR`` and, in Python,
``Forecaster(horizon=12).fit(series).predict()``.

How it works, in order:

1. The last ``test_size`` rows are held out. The scaler (per-column standardization, of logs for
   a positive target under ``transform="auto"``) is fitted on the rows before them only.
2. Windows of ``lookback`` rows (target and past covariates) are the inputs of a
   :class:`~rnnkit.models.ManyToOne` whose head has ``horizon x K`` outputs: direct multi-output
   forecasting, every step ahead at once (no feedback of the model's own errors). The target
   channel is taken relative to the window's last value (see :func:`series.windows`).
3. ``head="gaussian"``: K=2, a mean and a scale per step, trained by Gaussian negative
   log-likelihood (DeepAR's likelihood, Salinas et al. 2020, sec. 3.1, without autoregression);
   ``head="quantile"``: K quantiles trained by the pinball loss (Koenker & Bassett 1978; MQ-RNN,
   Wen et al. 2017, sec. 3).
4. ``calibrate=True`` (default): split-conformal calibration of the interval, one correction per
   step ahead, from a second model trained without the last ``calibration_size`` training rows
   and scored on them (CQR, Romano et al. 2019; CF-RNN, Stankeviciute et al. 2021; see the
   comment above :class:`Calibration`). The point forecast is unchanged.
5. Rolling-origin backtest over the held-out rows: a forecast from every origin whose horizon
   fits, scored with MAE, RMSE, sMAPE, MASE (scaled by the in-sample seasonal naive MAE on the
   training rows, Hyndman & Koehler 2006) and interval coverage, beside naive, seasonal naive,
   ETS and ARIMA forecasts (statsmodels, refit at every origin) on the same origins.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from .._io import atomic_write_text, read_json, save_figure
from ..config import from_dict, to_dict
from ..models import ManyToOne, ManyToOneConfig
from ..training import StepOutput, TensorBatches
from ..metrics.forecasting import coverage, mae, mase, rmse, seasonal_naive_scale, smape
from ._registry import Prepared, Task, register_task
from ..data.series import (
    Scaler,
    check_length,
    future_index,
    infer_season,
    load_dataset,
    read_series_csv,
    require,
    validate_frame,
    windows,
)

FORECAST_FILE = "forecast.json"  # settings, columns, scaler: what `rnnkit forecast` needs besides the weights
SCALER_FILE = "scaler.json"
CALIBRATION_FILE = "calibration.json"  # the conformal corrections (task.calibrate), written after training
PLOT_FILE = "forecast.png"


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


# --- baselines (each: history (N,), horizon, season -> forecast (horizon,)) ---------------------


def naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    return np.full(horizon, history[-1], dtype=float)


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    last_season = history[-season:]
    return np.array([last_season[i % season] for i in range(horizon)], dtype=float)


def ets(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Holt-Winters exponential smoothing: damped additive trend, and a seasonal component
    (multiplicative for a positive series) where two full seasons are there to fit it."""
    holt = require("statsmodels.tsa.holtwinters")
    seasonal = None
    if season > 1 and len(history) >= 2 * season:
        seasonal = "mul" if (history > 0).all() else "add"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = holt.ExponentialSmoothing(history, trend="add", damped_trend=True, seasonal=seasonal,
                                          seasonal_periods=season if seasonal else None,
                                          initialization_method="estimated")  # fmt: skip
        return np.asarray(model.fit().forecast(horizon), dtype=float)


def arima(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """ARIMA(2,1,1), with a seasonal (0,1,1) part of period ``season`` when there is one
    (Box & Jenkins' airline model is (0,1,1)x(0,1,1)_12); on logs for a positive series."""
    sarimax = require("statsmodels.tsa.statespace.sarimax")
    positive = (history > 0).all()
    values = np.log(history) if positive else history
    seasonal = (0, 1, 1, season) if season > 1 and len(history) >= 3 * season else (0, 0, 0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sarimax.SARIMAX(values, order=(2, 1, 1), seasonal_order=seasonal)
        forecast = np.asarray(model.fit(disp=False).forecast(horizon), dtype=float)
    return np.exp(forecast) if positive else forecast


BASELINES = {"naive": naive, "seasonal naive": seasonal_naive, "ETS": ets, "ARIMA": arima}


# --- the model's head and loss -----------------------------------------------------------------


def _head_size(config: ForecastConfig) -> int:
    return 2 if config.head == "gaussian" else len(config.quantiles)


def _steps(config: ForecastConfig) -> int:
    """Steps the head predicts at once: the horizon (direct), or one (autoregressive)."""
    return config.horizon if config.strategy == "direct" else 1


def _split_outputs(outputs: Tensor, config: ForecastConfig) -> Tensor:
    return outputs.view(outputs.shape[0], _steps(config), _head_size(config))  # (B, H or 1, K)


def _gaussian(outputs: Tensor) -> tuple[Tensor, Tensor]:
    mean, raw = outputs[..., 0], outputs[..., 1]  # (B, H) each
    return mean, nn.functional.softplus(raw) + 1e-3  # a positive scale, bounded away from 0


class ForecastObjective:
    """Gaussian NLL or pinball loss of ``(B, H, K)`` head outputs against targets ``(B, H)``.

    Target steps past the end of the data (NaN) are left out of the loss.
    """

    def __init__(self, config: ForecastConfig) -> None:
        self.config = config
        self.quantiles = torch.tensor(config.quantiles)

    def __call__(self, model: nn.Module, batch: tuple[Tensor, ...], state: Any = None) -> StepOutput:
        inputs, targets = batch[0], batch[1]
        out = _split_outputs(model(inputs), self.config)  # (B, H, K)
        known = ~torch.isnan(targets)  # (B, H)
        y = torch.nan_to_num(targets)
        if self.config.head == "gaussian":
            mean, scale = _gaussian(out)
            # -log N(y; mean, scale^2) without the constant log(2 pi) / 2
            losses = torch.log(scale) + 0.5 * ((y - mean) / scale) ** 2  # (B, H)
            point = mean
        else:
            q = self.quantiles.to(out.device)  # (K,)
            error = y.unsqueeze(-1) - out  # (B, H, K)
            losses = torch.maximum(q * error, (q - 1) * error).mean(-1)  # pinball, mean over quantiles
            point = out[..., len(self.config.quantiles) // 2]
        count = int(known.sum())
        loss = (losses * known).sum() / max(count, 1)
        scaled_mae = float(((point.detach() - y).abs() * known).sum() / max(count, 1))
        return StepOutput(loss, count, None, {"scaled_mae": scaled_mae})


def _point_and_interval(out: Tensor, config: ForecastConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Point forecast, lower and upper bound ``(B, H)`` each, in the model's (scaled) units."""
    if config.head == "gaussian":
        mean, scale = _gaussian(out)
        z = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.5 + config.interval / 2))
        return mean, mean - z * scale, mean + z * scale
    ordered = out.sort(dim=-1).values  # quantile heads may cross; sorting fixes the order
    return ordered[..., len(config.quantiles) // 2], ordered[..., 0], ordered[..., -1]


def point_column(config: ForecastConfig) -> str:
    """``mean`` for the Gaussian head, ``median`` for the quantile head (its middle quantile)."""
    return "mean" if config.head == "gaussian" else "median"


# --- data preparation shared by the task, the Forecaster and `rnnkit forecast` ------------------


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


def load_series(config: ForecastConfig) -> tuple[Any, str, int | None]:
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
    origins = range(c.lookback, rows - _steps(c) + 1)
    inputs, targets, _ = windows(scaled, origins, c.lookback, _steps(c))
    return inputs, targets


def build_model(config: ForecastConfig, features: int, model_settings: dict[str, Any]) -> ManyToOne:
    settings = dict(model_settings)
    settings["input"] = {"features": features}
    settings["outputs"] = _steps(config) * _head_size(config)
    return ManyToOne(from_dict(ManyToOneConfig, settings, where="model"))


@torch.no_grad()
def predict_at(model: nn.Module, frame, scaler: Scaler, config: ForecastConfig, origins,
               calibration: Calibration | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Forecasts from each origin: ``point``, ``lower``, ``upper`` arrays ``(len(origins), H)`` in data units.

    With a ``calibration`` the interval is the conformally calibrated one, and ``raw_lower`` and
    ``raw_upper`` hold the head's own; the point forecast is the same either way.
    """
    raw = _scaled_forecasts(model, scaler.transform(frame.to_numpy(dtype=float)), scaler, config, list(origins))
    lower, upper = (raw["lower"], raw["upper"]) if calibration is None else calibration.apply(raw)
    result = {"point": raw["point"], "lower": scaler.inverse(lower), "upper": scaler.inverse(upper)}
    if calibration is not None:
        # a CQR correction may narrow the interval; it still holds the point forecast (conformal
        # scores only move the bounds, Romano et al. 2019, and widening never lowers coverage)
        result["lower"] = np.minimum(result["lower"], result["point"])
        result["upper"] = np.maximum(result["upper"], result["point"])
        result["raw_lower"], result["raw_upper"] = scaler.inverse(raw["lower"]), scaler.inverse(raw["upper"])
    return result


@torch.no_grad()
def _scaled_forecasts(model: nn.Module, scaled: np.ndarray, scaler: Scaler, config: ForecastConfig,
                      origins: list[int]) -> dict[str, np.ndarray]:  # fmt: skip
    """The head's forecasts from each origin, ``(M, H)`` arrays: ``point`` in data units; ``lower``
    and ``upper`` in scaled units, levels added back."""
    model.eval()
    if config.strategy == "autoregressive":
        return _sample_paths(model, scaled, scaler, config, origins)
    inputs, _, levels = windows(scaled, origins, config.lookback, config.horizon)
    out = _split_outputs(model(inputs), config)  # (M, H, K)
    point, lower, upper = (v + levels[:, None] for v in _point_and_interval(out, config))
    return {"point": scaler.inverse(point.numpy()), "lower": lower.numpy(), "upper": upper.numpy()}


def _sample_paths(model: nn.Module, scaled: np.ndarray, scaler: Scaler, config: ForecastConfig,
                  origins: list[int]) -> dict[str, np.ndarray]:  # fmt: skip
    """Autoregressive forecasts: S paths per origin, each step drawn from the one-step Gaussian
    and fed back as the next input (DeepAR's ancestral sampling, Salinas et al. 2020, sec. 3.1).
    The point forecast is the paths' mean in data units; the interval their central quantiles
    (taken in scaled units: the inverse transform is monotone, so they are the data's quantiles)."""
    S, L, H = config.sample_paths, config.lookback, config.horizon
    generator = torch.Generator().manual_seed(0)  # the same paths every call
    history, _, _ = windows(scaled, origins, L, 1)  # (M, L, 1), relative to each window's level
    levels = torch.tensor([scaled[o - 1, 0] for o in origins], dtype=torch.float32)  # (M,)
    paths = (history[..., 0] + levels[:, None]).repeat_interleave(S, dim=0)  # (M*S, L) absolute, scaled
    for _ in range(H):
        window = paths[:, -L:]  # (M*S, L)
        level = window[:, -1:]  # (M*S, 1)
        mean, scale = _gaussian(_split_outputs(model((window - level).unsqueeze(-1)), config)[:, 0])  # (M*S,) each
        draw = level[:, 0] + mean + scale * torch.randn(mean.shape, generator=generator)
        paths = torch.cat([paths, draw[:, None]], dim=1)
    future = paths[:, -H:].reshape(len(origins), S, H).numpy()  # (M, S, H), scaled
    tail = (1 - config.interval) / 2
    return {"point": scaler.inverse(future).mean(1), "lower": np.quantile(future, tail, axis=1),
            "upper": np.quantile(future, 1 - tail, axis=1)}  # fmt: skip


# --- conformal calibration of the interval -------------------------------------------------------
#
# The head's interval comes from a scale (or quantiles) learned on windows the network has fitted,
# so it understates out-of-sample error. Split conformal prediction (Vovk et al. 2005; Lei et al.
# 2018) fixes the width on data the model has not seen: a second model, trained the same way on
# the training part minus its last ``calibration_size`` rows, forecasts from every origin in those
# rows whose horizon fits (the held-out backtest's geometry, inside the training part), and the
# conformity scores of its errors give one correction per step ahead (per-step calibration as in
# CF-RNN, Stankeviciute et al. 2021, sec. 3, without their Bonferroni split: we target each step's
# own coverage, which is what the coverage metric counts, not all H steps jointly). The correction
# is then applied to the intervals of the model trained on the whole training part, whose point
# forecast is unchanged. Every head's interval [lower, upper] (the Gaussian's central ``interval``,
# the outer quantiles, or the sampled paths' quantiles) is treated as conformalized quantile
# regression treats its quantiles (CQR, Romano et al. 2019): in scaled units (logs for a
# log-transformed target), the score of an outcome y is max(lower - y, y - upper) (eq. 6), and the
# calibrated interval is [lower - q_h, upper + q_h] (eq. 7); q_h < 0 narrows a too-wide interval.
# q_h is the ceil((n + 1) * level)-th smallest of the n scores of step h (Romano et al. 2019,
# theorem 1: coverage at least ``level`` for exchangeable scores; a time series is not
# exchangeable, so here it is an estimate, not a guarantee). For the Gaussian head we also tried the
# normalized score |y - mean| / scale (Lei et al. 2018, sec. 5.2): on airline and sunspots it gave
# similar coverage with intervals 1.2-2.6 times wider than CQR's (docs/forecasting.md).


def min_calibration_origins(level: float) -> int:
    """The fewest scores n for which the conformal rank ceil((n + 1) * level) is at most n."""
    n = 1
    while math.ceil((n + 1) * level - 1e-9) > n:
        n += 1
    return n


@dataclass(frozen=True)
class Calibration:
    """Per-step conformal corrections ``q`` (H,) of the interval's bounds, in scaled units, and
    where they came from."""

    level: float
    q: tuple[float, ...]  # one per step ahead
    rows: tuple[int, int]  # the calibration part [start, end) of the training rows
    origins: int  # forecasts scored per step

    def apply(self, raw: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated ``(lower, upper)``, scaled units, from :func:`_scaled_forecasts`' output."""
        q = np.asarray(self.q, dtype=np.float32)  # (H,), broadcast over origins
        return raw["lower"] - q, raw["upper"] + q  # Romano et al. 2019, eq. 7

    def to_json(self) -> str:
        return json.dumps({"level": self.level, "q": list(self.q), "rows": list(self.rows), "origins": self.origins},
                          indent=1)  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(float(data["level"]), tuple(float(v) for v in data["q"]), tuple(data["rows"]), int(data["origins"]))


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
    if start < config.lookback + _steps(config):
        raise ValueError(
            f"{source} is too short to calibrate: calibration_size={end - start} leaves {max(start, 0)} training rows"
            f" before it, fewer than lookback={config.lookback} + {_steps(config)} for one training window;"
            " set a smaller task.calibration_size or task.calibrate=false"
        )


def fit_calibration(model: nn.Module, frame, scaler: Scaler, config: ForecastConfig,
                    rows: tuple[int, int]) -> Calibration:  # fmt: skip
    """Conformal corrections from ``model``'s forecasts at every origin in ``rows`` whose horizon fits.

    ``model`` must not have been trained on rows from ``rows[0]`` on. Only ``frame``'s first
    ``rows[1]`` rows are read: the calibration never sees what comes after the training part.
    """
    start, end = rows
    H = config.horizon
    scaled = scaler.transform(frame.to_numpy(dtype=float)[:end])  # (end, F): nothing past the training part
    origins = list(range(max(start, config.lookback), end - H + 1))
    raw = _scaled_forecasts(model, scaled, scaler, config, origins)
    actual = np.stack([scaled[o : o + H, 0] for o in origins])  # (n, H)
    scores = np.maximum(raw["lower"] - actual, actual - raw["upper"])  # (n, H), Romano et al. 2019, eq. 6
    n = len(origins)
    rank = math.ceil((n + 1) * config.level - 1e-9)  # Romano et al. 2019, theorem 1
    if rank > n:
        raise ValueError(f"calibration needs at least {min_calibration_origins(config.level)} origins, got {n}")
    q = np.sort(scores, axis=0)[rank - 1]  # (H,)
    return Calibration(config.level, tuple(float(v) for v in q), (start, end), n)


def calibrate(setup: SeriesSetup, scaler: Scaler, train_rows: int,
              fit_model: Callable[[Tensor, Tensor], nn.Module]) -> Calibration:  # fmt: skip
    """Train a second model by ``fit_model(inputs, targets)`` on the training rows before the
    calibration part, and calibrate on that part (see the comment above :class:`Calibration`)."""
    rows = calibration_rows(setup.config, train_rows)
    inputs, targets = training_windows(setup, scaler, rows[0])
    return fit_calibration(fit_model(inputs, targets), setup.frame, scaler, setup.config, rows)


# --- the rolling-origin backtest ---------------------------------------------------------------


@dataclass
class Backtest:
    origins: list[int]
    scores: dict[str, dict[str, float]]  # method -> metric -> value
    forecasts: dict[str, np.ndarray]  # method -> (origins, H)
    lower: np.ndarray
    upper: np.ndarray
    calibration: Calibration | None = None  # what widened (or narrowed) the interval, if anything

    def table(self) -> str:
        names = ["MAE", "RMSE", "sMAPE", "MASE", "coverage", "width"]
        if any("raw coverage" in scores for scores in self.scores.values()):
            names += ["raw coverage", "raw width"]  # the head's own interval, before calibration
        widths = [max(10, len(n) + 2) for n in names]
        lines = [f"{'method':<16}" + "".join(f"{n:>{w}}" for n, w in zip(names, widths))]
        for method, scores in self.scores.items():
            cells = "".join(f"{scores[n]:>{w}.3f}" if n in scores else f"{'-':>{w}}" for n, w in zip(names, widths))
            lines.append(f"{method:<16}{cells}")
        return "\n".join(lines)


def backtest(model: nn.Module, setup: SeriesSetup, scaler: Scaler, *, baselines: bool = True,
             name: str = "RNN", calibration: Calibration | None = None) -> Backtest:  # fmt: skip
    """Forecasts from every origin in the held-out rows (stride ``step``) whose horizon fits.

    ``coverage`` is that of the interval forecasts carry (calibrated, with a ``calibration``);
    ``raw coverage`` that of the head's own interval, shown beside it when there is a calibration;
    ``width`` and ``raw width`` are the intervals' mean widths in data units.
    """
    c = setup.config
    values = setup.frame.to_numpy(dtype=float)[:, 0]  # (N,)
    first = setup.train_end
    origins = list(range(first, len(values) - c.horizon + 1, c.step))
    actual = np.stack([values[o : o + c.horizon] for o in origins])  # (M, H)
    insample = values[:first]
    predicted = predict_at(model, setup.frame, scaler, c, origins, calibration)
    forecasts = {name: predicted["point"]}
    methods = ["naive", "seasonal naive"] + (["ETS", "ARIMA"] if baselines else [])
    for method in methods:
        forecasts[method] = np.stack([BASELINES[method](values[:o], c.horizon, c.season) for o in origins])
    scores = {}
    for method, forecast in forecasts.items():
        scores[method] = {
            "MAE": mae(actual, forecast),
            "RMSE": rmse(actual, forecast),
            "sMAPE": smape(actual, forecast),
            "MASE": mase(actual, forecast, insample, c.season),
        }
    scores[name]["coverage"] = coverage(actual, predicted["lower"], predicted["upper"])
    scores[name]["width"] = float(np.mean(predicted["upper"] - predicted["lower"]))
    if calibration is not None:
        scores[name]["raw coverage"] = coverage(actual, predicted["raw_lower"], predicted["raw_upper"])
        scores[name]["raw width"] = float(np.mean(predicted["raw_upper"] - predicted["raw_lower"]))
    return Backtest(origins, scores, forecasts, predicted["lower"], predicted["upper"], calibration)


# --- plots ---------------------------------------------------------------------------------------


def plot_forecast(history, forecast, path: str | Path, *, title: str = "", interval_label: str = "interval",
                  point: str = "mean") -> Path:  # fmt: skip
    """A PNG of the history (its last few seasons), the forecast and its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4))
    axes.plot(history.index, history.to_numpy(), color="black", linewidth=1.2, label="history")
    axes.fill_between(forecast.index, forecast["lower"], forecast["upper"], color="tab:blue", alpha=0.25,
                      label=interval_label)  # fmt: skip
    axes.plot(forecast.index, forecast[point], color="tab:blue", linewidth=1.6, label=f"forecast ({point})")
    if "actual" in forecast:
        axes.plot(forecast.index, forecast["actual"], color="tab:red", linewidth=1, linestyle="--", label="actual")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    path = save_figure(figure, path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def _time_text(time) -> str:
    """A timestamp without a midnight time of day: '1960-01-01', not '1960-01-01 00:00:00'."""
    text = str(time)
    return text[:-9] if text.endswith(" 00:00:00") else text


def _interval_label(config: ForecastConfig) -> str:
    if config.head == "gaussian":
        return f"{config.interval:.0%} interval"
    return f"{config.quantiles[0]:g}-{config.quantiles[-1]:g} quantiles"


def _frame_of(predicted: dict[str, np.ndarray], index, config: ForecastConfig):
    pd = require("pandas")
    return pd.DataFrame({point_column(config): predicted["point"][0], "lower": predicted["lower"][0],
                         "upper": predicted["upper"][0]}, index=index)  # fmt: skip


# --- the task: `rnnkit train forecast` -------------------------------------------------------------


def _prepare(task: ForecastConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
    frame, source, season = load_series(task)
    setup = resolve(frame, task, source, default_season=season)
    scaler = fit_scaler(setup, setup.train_end)
    inputs, targets = training_windows(setup, scaler, setup.train_end)
    model = build_model(setup.config, frame.shape[1], model_settings)

    def report(result) -> str:
        run_dir = getattr(result, "run_dir", None)
        if run_dir is not None and (Path(run_dir) / "model.safetensors").is_file():
            from ..training import load

            trained = load(run_dir)  # the weights the run directory keeps
        else:
            trained = model
        c = setup.config
        calibration = None
        if c.calibrate:
            train_config = _run_train_config(run_dir)

            def fit(inputs: Tensor, targets: Tensor) -> nn.Module:  # the calibration model, trained as the run's
                return _fit_model(setup.config, inputs, targets, model_settings, train_config)

            calibration = calibrate(setup, scaler, setup.train_end, fit)
            if run_dir is not None:
                atomic_write_text(Path(run_dir) / CALIBRATION_FILE, calibration.to_json())
        bt = backtest(trained, setup, scaler, baselines=task.baselines, calibration=calibration)
        if run_dir is not None:
            path = Path(run_dir) / "plots" / "backtest.png"
            _plot_backtest(setup, bt, path)
        lines = [
            f"forecast: {source}, {len(frame)} rows, target {setup.columns[0]!r}"
            + (f", covariates {', '.join(setup.columns[1:])}" if len(setup.columns) > 1 else ""),
            f"horizon {c.horizon} ({c.strategy}), lookback {c.lookback}, season {c.season}, head {c.head},"
            f" scaling fitted on the first {setup.train_end} rows ({'log, ' if scaler.log[0] else ''}standardized)",
            f"rolling-origin backtest on the last {c.test_size} rows: {len(bt.origins)} origins x {c.horizon} steps;"
            f" MASE scaled by the in-sample seasonal naive MAE (m={c.season}); coverage of the"
            f" {_interval_label(c)}",
        ]
        if calibration is not None:
            lines.append(_calibration_text(calibration))
        lines.append(bt.table())
        return "\n".join(lines)

    artifacts = {
        FORECAST_FILE: json.dumps({"config": to_dict(setup.config), "columns": setup.columns,
                                   "time_column": frame.index.name, "source": source,
                                   "train_rows": setup.train_end}, indent=1),  # fmt: skip
        SCALER_FILE: scaler.to_json(),
    }
    train = TensorBatches(inputs, targets, batch_size=task.batch_size, seed=seed)
    return Prepared(model, ForecastObjective(setup.config), train, None, "windows", report, artifacts)


def _run_train_config(run_dir):
    """The run's training settings (its ``config.json``), for the calibration model; defaults without one."""
    from ..training import TrainConfig

    path = Path(run_dir) / "config.json" if run_dir is not None else None
    if path is None or not path.is_file():
        return TrainConfig()
    return from_dict(TrainConfig, read_json(path)["train"], where="train")


def _fit_model(config: ForecastConfig, inputs: Tensor, targets: Tensor, model_settings: dict[str, Any],
               train_config) -> nn.Module:  # fmt: skip
    """A fresh model trained on ``inputs``/``targets`` exactly as the run's own model was (same
    settings, seed, batch order rule), without a run directory."""
    from ..training import Trainer

    torch.manual_seed(train_config.seed)
    model = build_model(config, inputs.shape[-1], model_settings)
    batches = TensorBatches(inputs, targets, batch_size=config.batch_size, seed=train_config.seed)
    Trainer(model, ForecastObjective(config), train_config, quiet=True).fit(batches)
    return model.eval()


def _calibration_text(calibration: Calibration) -> str:
    start, end = calibration.rows
    q = calibration.q
    return (f"conformal calibration (CQR) on training rows {start}-{end - 1}: {calibration.origins} origins per step;"
            f" bounds moved out by {q[0]:.3f} (step 1) to {q[-1]:.3f} (step {len(q)}) scaled units")  # fmt: skip


def _plot_backtest(setup: SeriesSetup, bt: Backtest, path: Path) -> Path:
    """The last origin's forecast against what happened."""
    pd = require("pandas")
    c, o = setup.config, bt.origins[-1]
    index = setup.frame.index[o : o + c.horizon]
    forecast = pd.DataFrame({"RNN": bt.forecasts["RNN"][-1], "lower": bt.lower[-1], "upper": bt.upper[-1],
                             "actual": setup.frame.iloc[o : o + c.horizon, 0].to_numpy()}, index=index)  # fmt: skip
    history = setup.frame.iloc[max(0, o - 4 * max(c.season, c.horizon)) : o, 0]
    return plot_forecast(history, forecast, path, title=f"backtest: forecast from {_time_text(setup.frame.index[o])}",
                         interval_label=_interval_label(c), point="RNN")  # fmt: skip


register_task(Task(
    name="forecast",
    help="time-series forecasting with intervals, rolling-origin backtest and baselines (needs rnnkit[timeseries])",
    example="rnnkit train forecast --data sales.csv --time-column date --target sales --horizon 12",
    config_class=ForecastConfig,
    prepare=_prepare,
    model_name="many_to_one",
    default_model={"encoder": {"cell": "lstm", "hidden_size": 64}},
    default_train={"lr": 3e-3, "max_epochs": 150, "clip_norm": 1.0, "log_every": 50},
    arguments={"--data": "task.data", "--time-column": "task.time_column", "--target": "task.target",
               "--covariates": "task.covariates", "--horizon": "task.horizon"},
))  # fmt: skip


# --- using a run: `rnnkit forecast RUN_DIR` ----------------------------------------------------------


def load_run(run_dir: str | Path) -> tuple[nn.Module, ForecastConfig, Scaler, dict[str, Any]]:
    """The model, settings, scaler and ``forecast.json`` of a run; its calibration is
    ``saved["calibration"]`` (a :class:`Calibration`, or None under ``calibrate=false``)."""
    from ..training import load

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    if not (run_dir / FORECAST_FILE).is_file():
        raise FileNotFoundError(f"{run_dir / FORECAST_FILE} does not exist: is {run_dir} a forecast run directory?")
    saved = read_json(run_dir / FORECAST_FILE)
    # a run saved before calibration existed has no such setting: its intervals are the head's own
    config = from_dict(ForecastConfig, {"calibrate": False, **saved["config"]}, where="task")
    scaler = Scaler.from_dict(read_json(run_dir / SCALER_FILE))
    saved["calibration"] = None
    if config.calibrate:
        if not (run_dir / CALIBRATION_FILE).is_file():
            raise FileNotFoundError(
                f"{run_dir / CALIBRATION_FILE} does not exist: the run stopped before its calibration step;"
                f" finish it with rnnkit train --run-dir {run_dir} --resume"
            )
        saved["calibration"] = Calibration.from_dict(read_json(run_dir / CALIBRATION_FILE))
    return load(run_dir), config, scaler, saved


def forecast_run(run_dir: str | Path, data: str | Path | None = None, *, plot: str | Path | None = None):
    """The next ``horizon`` steps after the end of ``data`` (default: the series the run trained on).

    Returns a DataFrame indexed by future time with the point forecast and interval columns; writes
    the plot to ``plot`` (default: ``RUN_DIR/forecast.png``).
    """
    model, config, scaler, saved = load_run(run_dir)
    if data is not None:  # a run on an embedded series reads the same column names from the CSV
        config = replace(config, data=str(data), time_column=config.time_column or saved.get("time_column"),
                         target=config.target or saved["columns"][0])  # fmt: skip
    frame, source, _ = load_series(config)
    if list(frame.columns) != saved["columns"]:  # read_series_csv returns exactly the configured columns
        raise ValueError(f"{source} must have the columns {saved['columns']}, got {list(frame.columns)}")
    check_history(frame, config, source)
    predicted = predict_at(model, frame, scaler, config, [len(frame)], saved["calibration"])
    result = _frame_of(predicted, future_index(frame.index, config.horizon), config)
    history = frame.iloc[-4 * max(config.season, config.horizon):, 0]
    plot_forecast(history, result, plot or Path(run_dir) / PLOT_FILE, title=f"{frame.columns[0]}: {source}",
                  interval_label=_interval_label(config), point=point_column(config))  # fmt: skip
    return result


# --- the Python API ---------------------------------------------------------------------------------


@dataclass
class Forecaster:
    """Fit on a pandas Series or DataFrame, then forecast with intervals.

    >>> import numpy as np, pandas as pd
    >>> t = pd.date_range("2000-01", periods=96, freq="MS")
    >>> y = pd.Series(10 + np.sin(np.arange(96) * np.pi / 6), index=t, name="y")
    >>> f = Forecaster(horizon=6, max_epochs=3).fit(y)
    >>> f.predict().columns.tolist()
    ['mean', 'lower', 'upper']

    ``fit`` trains on every row (nothing held out); :meth:`backtest` is the honest score: it
    refits on all but the last ``test_size`` rows and forecasts from rolling origins through them.
    """

    horizon: int = 12
    lookback: int | None = None
    season: int | None = None
    covariates: tuple[str, ...] = ()
    head: Literal["gaussian", "quantile"] = "gaussian"
    transform: Literal["auto", "log", "none"] = "auto"
    hidden_size: int = 64
    cell: str = "lstm"
    max_epochs: int = 150
    lr: float = 3e-3
    batch_size: int = 16
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # more ForecastConfig settings (quantiles, interval,
    # calibrate, calibration_size)

    def __post_init__(self) -> None:
        self.model = None
        self.calibration = None

    def _config(self, target: str, test_size: int | None = None) -> ForecastConfig:
        return ForecastConfig(horizon=self.horizon, lookback=self.lookback, season=self.season,
                              covariates=",".join(self.covariates), head=self.head, transform=self.transform,
                              batch_size=self.batch_size, test_size=test_size, **self.options)  # fmt: skip

    def _frame(self, data, target: str | None, time_column: str | None):
        pd = require("pandas")
        if isinstance(data, pd.Series):
            target = target or (str(data.name) if data.name is not None else "y")
            data = data.to_frame(target)
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a pandas Series or DataFrame, got {type(data).__name__}")
        if target is None:
            candidates = [c for c in data.columns if c != time_column and c not in self.covariates]
            if len(candidates) != 1:
                raise ValueError(f"target is needed: the frame has columns {[str(c) for c in data.columns]}")
            target = candidates[0]
        return validate_frame(data, time_column=time_column, target=target, covariates=self.covariates,
                              source="data")  # fmt: skip

    def _train(self, setup: SeriesSetup, rows: int) -> tuple[nn.Module, Scaler, Calibration | None]:
        """The model trained on the first ``rows`` rows, its scaler, and (``calibrate``) the
        conformal calibration on the end of those rows."""
        from ..training import TrainConfig

        scaler = fit_scaler(setup, rows)
        inputs, targets = training_windows(setup, scaler, rows)
        if len(inputs) == 0:
            raise ValueError(f"data too short: no window of lookback {setup.config.lookback} + horizon {self.horizon}")
        settings = {"encoder": {"cell": self.cell, "hidden_size": self.hidden_size}}
        train_config = TrainConfig(max_epochs=self.max_epochs, lr=self.lr, seed=self.seed, clip_norm=1.0)
        model = _fit_model(setup.config, inputs, targets, settings, train_config)
        calibration = None
        if setup.config.calibrate:
            calibration = calibrate(setup, scaler, rows,
                                    lambda x, y: _fit_model(setup.config, x, y, settings, train_config))  # fmt: skip
        return model, scaler, calibration

    def fit(self, data, *, target: str | None = None, time_column: str | None = None) -> Forecaster:
        """Train on ``data``: a Series with a time index, or a DataFrame (time index or ``time_column``)."""
        frame = self._frame(data, target, time_column)
        self.setup = resolve(frame, self._config(frame.columns[0]), "data", holdout=False)
        self.model, self.scaler, self.calibration = self._train(self.setup, len(frame))
        return self

    def predict(self, data=None, *, target: str | None = None, time_column: str | None = None):
        """The next ``horizon`` steps after ``data`` (default: the fitted series) as a DataFrame:
        the point forecast (``mean``, or ``median`` for the quantile head), ``lower`` and ``upper``."""
        if self.model is None:
            raise ValueError("call fit() before predict()")
        frame = self.setup.frame if data is None else self._frame(data, target or self.setup.columns[0], time_column)
        if list(frame.columns) != self.setup.columns:
            raise ValueError(f"data must have the columns {self.setup.columns}, got {list(frame.columns)}")
        check_history(frame, self.setup.config, "data")
        predicted = predict_at(self.model, frame, self.scaler, self.setup.config, [len(frame)], self.calibration)
        return _frame_of(predicted, future_index(frame.index, self.horizon), self.setup.config)

    def backtest(self, data, *, test_size: int | None = None, target: str | None = None,
                 time_column: str | None = None, baselines: bool = True) -> Backtest:  # fmt: skip
        """Refit on all but the last ``test_size`` rows (default 2 x horizon); score rolling-origin
        forecasts through them beside the baselines. The fitted model stays as it was."""
        frame = self._frame(data, target, time_column)
        setup = resolve(frame, self._config(frame.columns[0], test_size), "data")
        model, scaler, calibration = self._train(setup, setup.train_end)
        return backtest(model, setup, scaler, baselines=baselines, calibration=calibration)
