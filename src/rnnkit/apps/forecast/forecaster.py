"""Forecasting from Python: :class:`Forecaster` (fit, predict, backtest) and a trained run's
:class:`ForecastRun` (``rnnkit forecast RUN_DIR``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

from torch import nn

from ..._io import check_file_record, read_json, run_file
from ...config import from_dict
from ...data.series import Scaler, future_index, require, validate_frame
from .backtest import Backtest, backtest
from .calibration import Calibration, calibrate
from .config import ForecastConfig, interval_label, point_column
from .data import SeriesSetup, check_history, configured_series, fit_scaler, resolve, training_windows
from .model import fit_model
from .plots import plot_forecast
from .predict import frame_of, predict_at

FORECAST_FILE = "forecast.json"  # settings, columns, scaler: what `rnnkit forecast` needs besides the weights
SCALER_FILE = "scaler.json"
CALIBRATION_FILE = "calibration.json"  # the conformal corrections (task.calibrate), written after training
PLOT_FILE = "forecast.png"


# --- a trained run: `rnnkit forecast RUN_DIR` -------------------------------------------------------


class ForecastRun(NamedTuple):
    """The model, settings, scaler and ``forecast.json`` of a ``rnnkit train forecast`` run; its
    calibration is ``saved["calibration"]`` (a :class:`Calibration`, or None under ``calibrate=false``)."""

    model: nn.Module
    config: ForecastConfig
    scaler: Scaler
    saved: dict[str, Any]

    def predict(self, data: str | Path | None = None):
        """The next ``horizon`` steps after the end of the CSV ``data`` (default: the series the
        run trained on), as a DataFrame indexed by future time: the point forecast, ``lower``, ``upper``."""
        return self._forecast(data)[0]

    def predict_with_history(self, data: str | Path | None = None):
        """``(forecast, history)``: :meth:`predict`'s DataFrame and the series it continues, as read
        (a DataFrame of the run's columns, the target first), for a plot of both."""
        result, frame, _ = self._forecast(data)
        return result, frame

    def _forecast(self, data):
        config, saved = self.config, self.saved
        if data is not None:  # a run on an embedded series reads the same column names from the CSV
            config = replace(config, data=str(data), time_column=config.time_column or saved.get("time_column"),
                             target=config.target or saved["columns"][0])  # fmt: skip
        elif config.data is not None:  # the training series: only the very file the run recorded
            record = saved.get("data_file")
            if record is None:
                raise ValueError("this run directory records no training file to forecast from: give --data FILE.csv")
            config = replace(config, data=str(check_file_record(record, "the training data")))
        frame, source, _ = configured_series(config)
        if list(frame.columns) != saved["columns"]:  # read_series_csv returns exactly the configured columns
            raise ValueError(f"{source} must have the columns {saved['columns']}, got {list(frame.columns)}")
        check_history(frame, config, source)
        predicted = predict_at(self.model, frame, self.scaler, config, [len(frame)], saved["calibration"])
        return frame_of(predicted, future_index(frame.index, config.horizon), config), frame, source


def load_run(run_dir: str | Path) -> ForecastRun:
    """The trained run in ``run_dir``: ``model, config, scaler, saved = load_run(run_dir)``."""
    from ...training import load

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    if not (run_dir / FORECAST_FILE).is_file():
        raise FileNotFoundError(f"{run_dir / FORECAST_FILE} does not exist: is {run_dir} a forecast run directory?")
    saved = read_json(run_file(run_dir, FORECAST_FILE))
    if saved.get("id_column"):  # many series: a PanelRun
        from .many import load_panel_run

        return load_panel_run(run_dir, saved)
    # a run saved before calibration existed has no such setting: its intervals are the head's own
    config = from_dict(ForecastConfig, {"calibrate": False, **saved["config"]}, where="task")
    scaler = Scaler.from_dict(read_json(run_file(run_dir, SCALER_FILE)))
    saved["data_file"] = read_json(run_file(run_dir, "config.json")).get("data_files", {}).get("data")
    saved["calibration"] = None
    if config.calibrate:
        if not (run_dir / CALIBRATION_FILE).is_file():
            raise FileNotFoundError(
                f"{run_dir / CALIBRATION_FILE} does not exist: the run stopped before its calibration step;"
                f" finish it with rnnkit train --run-dir {run_dir} --resume"
            )
        saved["calibration"] = Calibration.from_dict(read_json(run_file(run_dir, CALIBRATION_FILE)))
    return ForecastRun(load(run_dir), config, scaler, saved)


def forecast_run(run_dir: str | Path, data: str | Path | None = None, *, plot: str | Path | None = None):
    """The next ``horizon`` steps after the end of ``data`` (default: the series the run trained on).

    Returns a DataFrame indexed by future time with the point forecast and interval columns; writes
    the plot to ``plot`` (default: ``RUN_DIR/forecast.png``).
    """
    run = load_run(run_dir)
    if not isinstance(run, ForecastRun):  # many series: a long frame; the plot shows the first series
        result, panel = run._forecast(data)
        c, first = run.config, panel.ids[0]
        pd = require("pandas")
        history = pd.Series(panel.values[first], index=panel.times[first]).iloc[-4 * max(c.season, c.horizon):]
        mine = result[result[c.id_column] == first].set_index(c.time_column)
        plot_forecast(history, mine, plot or Path(run_dir) / PLOT_FILE,
                      title=f"{c.target}: series {first} (1 of {len(panel.ids)}), {panel.source}",
                      interval_label=interval_label(c), point=point_column(c))  # fmt: skip
        return result
    result, frame, source = run._forecast(data)
    config = run.config
    history = frame.iloc[-4 * max(config.season, config.horizon):, 0]
    plot_forecast(history, result, plot or Path(run_dir) / PLOT_FILE, title=f"{frame.columns[0]}: {source}",
                  interval_label=interval_label(config), point=point_column(config))  # fmt: skip
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
        from ...training import TrainConfig

        scaler = fit_scaler(setup, rows)
        inputs, targets = training_windows(setup, scaler, rows)
        if len(inputs) == 0:
            raise ValueError(f"data too short: no window of lookback {setup.config.lookback} + horizon {self.horizon}")
        settings = {"encoder": {"cell": self.cell, "hidden_size": self.hidden_size}}
        train_config = TrainConfig(max_epochs=self.max_epochs, lr=self.lr, seed=self.seed, clip_norm=1.0)
        model = fit_model(setup.config, inputs, targets, settings, train_config)
        calibration = None
        if setup.config.calibrate:
            calibration = calibrate(setup, scaler, rows,
                                    lambda x, y: fit_model(setup.config, x, y, settings, train_config))  # fmt: skip
        return model, scaler, calibration

    def _panel_setup(self, data, target, time_column, id_column, holdout: bool):
        from .many import load_panel, resolve_panel

        if time_column is None or target is None:
            raise ValueError("a long DataFrame (id_column) needs time_column and target too")
        options = {k: v for k, v in self.options.items() if k not in ("calibrate",)}
        config = ForecastConfig(horizon=self.horizon, lookback=self.lookback, season=self.season, head=self.head,
                                transform=self.transform, batch_size=self.batch_size, data="<DataFrame>",
                                time_column=time_column, target=target, id_column=id_column, calibrate=False,
                                **options)  # fmt: skip
        return resolve_panel(load_panel(data, config), config, holdout=holdout)

    def _train_panel(self, setup):
        from ...training import TrainConfig, Trainer
        from .many import batches
        from .model import ForecastObjective, forecast_model

        import torch

        torch.manual_seed(self.seed)
        model = forecast_model(setup.config, 1 + len(setup.categories),
                               {"encoder": {"cell": self.cell, "hidden_size": self.hidden_size}})  # fmt: skip
        train_config = TrainConfig(max_epochs=self.max_epochs, lr=self.lr, seed=self.seed, clip_norm=1.0)
        Trainer(model, ForecastObjective(setup.config), train_config, quiet=True).fit(batches(setup, self.seed))
        return model.cpu().eval()

    def fit(self, data, *, target: str | None = None, time_column: str | None = None,
            id_column: str | None = None) -> Forecaster:  # fmt: skip
        """Train on ``data``: a Series with a time index, or a DataFrame (time index or ``time_column``);
        with ``id_column``, a long DataFrame of many series (one row per series and time) and one global model."""
        if id_column is not None:
            self.setup = self._panel_setup(data, target, time_column, id_column, holdout=False)
            self.model, self.scaler, self.calibration = self._train_panel(self.setup), None, None
            return self
        frame = self._frame(data, target, time_column)
        self.setup = resolve(frame, self._config(frame.columns[0]), "data", holdout=False)
        self.model, self.scaler, self.calibration = self._train(self.setup, len(frame))
        return self

    def predict(self, data=None, *, target: str | None = None, time_column: str | None = None):
        """The next ``horizon`` steps after ``data`` (default: the fitted series) as a DataFrame:
        the point forecast (``mean``, or ``median`` for the quantile head), ``lower`` and ``upper``."""
        if self.model is None:
            raise ValueError("call fit() before predict()")
        if getattr(self.setup, "panel", None) is not None:  # many series: every series of data, a long frame
            from .many import PanelRun

            run = PanelRun(self.model, self.setup.config, {"categories": self.setup.categories, "data_file": None})
            if data is None:
                from .many import long_frame, predict_panel

                panel = self.setup.panel
                return long_frame(panel, predict_panel(self.model, self.setup, panel.values), self.setup.config)
            return run.predict(data)
        frame = self.setup.frame if data is None else self._frame(data, target or self.setup.columns[0], time_column)
        if list(frame.columns) != self.setup.columns:
            raise ValueError(f"data must have the columns {self.setup.columns}, got {list(frame.columns)}")
        check_history(frame, self.setup.config, "data")
        predicted = predict_at(self.model, frame, self.scaler, self.setup.config, [len(frame)], self.calibration)
        return frame_of(predicted, future_index(frame.index, self.horizon), self.setup.config)

    def backtest(self, data, *, test_size: int | None = None, target: str | None = None,
                 time_column: str | None = None, baselines: bool = True, id_column: str | None = None):  # fmt: skip
        """Refit on all but the last ``test_size`` rows (default 2 x horizon); score rolling-origin
        forecasts through them beside the baselines. The fitted model stays as it was. With
        ``id_column`` (many series): hold out each series' last ``horizon`` rows and return the mean
        scores of the global model and the classical methods (a dict, see ``many.evaluate_panel``)."""
        if id_column is not None:
            from .many import evaluate_panel

            setup = self._panel_setup(data, target, time_column, id_column, holdout=True)
            return evaluate_panel(self._train_panel(setup), setup, baselines=baselines)
        frame = self._frame(data, target, time_column)
        setup = resolve(frame, self._config(frame.columns[0], test_size), "data")
        model, scaler, calibration = self._train(setup, setup.train_end)
        return backtest(model, setup, scaler, baselines=baselines, calibration=calibration)
