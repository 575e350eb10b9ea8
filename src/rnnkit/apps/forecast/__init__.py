"""Time-series forecasting: a recurrent direct multi-horizon forecaster with prediction intervals.

``rnnkit train forecast --data FILE.csv --time-column T --target Y --horizon H`` (or an embedded
``--task.dataset``), ``rnnkit forecast RUN_DIR`` and, in Python,
``Forecaster(horizon=12).fit(series).predict()``.

How it works, in order (the modules of this package):

1. The last ``test_size`` rows are held out (``data``). The scaler (per-column standardization, of
   logs for a positive target under ``transform="auto"``) is fitted on the rows before them only.
2. Windows of ``lookback`` rows (target and past covariates) are the inputs of a
   :class:`~rnnkit.models.ManyToOne` whose head has ``horizon x K`` outputs: direct multi-output
   forecasting, every step ahead at once (no feedback of the model's own errors). The target
   channel is taken relative to the window's last value (see :func:`rnnkit.data.series.windows`).
3. ``head="gaussian"``: K=2, a mean and a scale per step, trained by Gaussian negative
   log-likelihood (DeepAR's likelihood, Salinas et al. 2020, sec. 3.1, without autoregression);
   ``head="quantile"``: K quantiles trained by the pinball loss (Koenker & Bassett 1978; MQ-RNN,
   Wen et al. 2017, sec. 3) (``model``).
4. ``calibrate=True`` (default): split-conformal calibration of the interval, one correction per
   step ahead, from a second model trained without the last ``calibration_size`` training rows
   and scored on them (CQR, Romano et al. 2019; CF-RNN, Stankeviciute et al. 2021; see the
   comment above :class:`Calibration`, ``calibration``). The point forecast is unchanged. It runs
   after training (the app's ``finalize``) and writes ``calibration.json``.
5. Rolling-origin backtest over the held-out rows: a forecast from every origin whose horizon
   fits, scored with MAE, RMSE, sMAPE, MASE (scaled by the in-sample seasonal naive MAE on the
   training rows, Hyndman & Koehler 2006) and interval coverage, beside naive, seasonal naive,
   ETS and ARIMA forecasts (statsmodels, refit at every origin) on the same origins (``backtest``,
   ``baselines``).
"""

from ...data.series import read_series_csv as read_series_csv
from ...metrics.forecasting import coverage as coverage
from ...metrics.forecasting import mae as mae
from ...metrics.forecasting import mase as mase
from ...metrics.forecasting import rmse as rmse
from ...metrics.forecasting import seasonal_naive_scale as seasonal_naive_scale
from ...metrics.forecasting import smape as smape
from .app import ForecastApp as ForecastApp
from .backtest import Backtest as Backtest
from .backtest import backtest as backtest
from .backtest import format_scores as format_scores
from .baselines import BASELINES as BASELINES
from .baselines import arima as arima
from .baselines import ets as ets
from .baselines import naive as naive
from .baselines import seasonal_naive as seasonal_naive
from .calibration import Calibration as Calibration
from .calibration import calibrate as calibrate
from .calibration import fit_calibration as fit_calibration
from .config import ForecastConfig as ForecastConfig
from .config import calibration_rows as calibration_rows
from .config import check_calibration as check_calibration
from .config import head_size as head_size
from .config import interval_label as interval_label
from .config import min_calibration_origins as min_calibration_origins
from .config import point_column as point_column
from .config import steps_per_forecast as steps_per_forecast
from .data import SeriesSetup as SeriesSetup
from .data import check_history as check_history
from .data import configured_series as configured_series
from .data import fit_scaler as fit_scaler
from .data import resolve as resolve
from .data import training_windows as training_windows
from .forecaster import CALIBRATION_FILE as CALIBRATION_FILE
from .forecaster import FORECAST_FILE as FORECAST_FILE
from .forecaster import PLOT_FILE as PLOT_FILE
from .forecaster import SCALER_FILE as SCALER_FILE
from .forecaster import Forecaster as Forecaster
from .forecaster import ForecastRun as ForecastRun
from .forecaster import forecast_run as forecast_run
from .forecaster import load_run as load_run
from .model import ForecastObjective as ForecastObjective
from .model import fit_model as fit_model
from .model import forecast_model as forecast_model
from .plots import plot_forecast as plot_forecast
from .predict import predict_at as predict_at

__all__ = ["read_series_csv", "coverage", "mae", "mase", "rmse", "seasonal_naive_scale", "smape", "ForecastApp",
           "Backtest", "backtest", "format_scores", "BASELINES", "arima", "ets", "naive", "seasonal_naive",
           "Calibration", "calibrate", "fit_calibration", "ForecastConfig", "calibration_rows", "check_calibration",
           "head_size", "interval_label", "min_calibration_origins", "point_column", "steps_per_forecast",
           "SeriesSetup", "check_history", "configured_series", "fit_scaler", "resolve", "training_windows",
           "CALIBRATION_FILE", "FORECAST_FILE", "PLOT_FILE", "SCALER_FILE", "Forecaster", "ForecastRun",
           "forecast_run", "load_run", "ForecastObjective", "fit_model", "forecast_model", "plot_forecast",
           "predict_at"]  # fmt: skip
