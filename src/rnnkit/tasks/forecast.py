"""Deprecated: moved to :mod:`rnnkit.apps.forecast`."""

from rnnkit.apps.forecast import head_size as _head_size
from rnnkit.apps.forecast import steps_per_forecast as _steps
from rnnkit.apps.forecast import arima as arima
from rnnkit.apps.forecast import Backtest as Backtest
from rnnkit.apps.forecast import backtest as backtest
from rnnkit.apps.forecast import BASELINES as BASELINES
from rnnkit.apps.forecast import forecast_model as build_model
from rnnkit.apps.forecast import calibrate as calibrate
from rnnkit.apps.forecast import Calibration as Calibration
from rnnkit.apps.forecast import CALIBRATION_FILE as CALIBRATION_FILE
from rnnkit.apps.forecast import calibration_rows as calibration_rows
from rnnkit.apps.forecast import check_calibration as check_calibration
from rnnkit.apps.forecast import check_history as check_history
from rnnkit.apps.forecast import coverage as coverage
from rnnkit.apps.forecast import ets as ets
from rnnkit.apps.forecast import fit_calibration as fit_calibration
from rnnkit.apps.forecast import fit_scaler as fit_scaler
from rnnkit.apps.forecast import FORECAST_FILE as FORECAST_FILE
from rnnkit.apps.forecast import forecast_run as forecast_run
from rnnkit.apps.forecast import ForecastConfig as ForecastConfig
from rnnkit.apps.forecast import Forecaster as Forecaster
from rnnkit.apps.forecast import ForecastObjective as ForecastObjective
from rnnkit.apps.forecast import load_run as load_run
from rnnkit.apps.forecast import configured_series as load_series
from rnnkit.apps.forecast import mae as mae
from rnnkit.apps.forecast import mase as mase
from rnnkit.apps.forecast import min_calibration_origins as min_calibration_origins
from rnnkit.apps.forecast import naive as naive
from rnnkit.apps.forecast import PLOT_FILE as PLOT_FILE
from rnnkit.apps.forecast import plot_forecast as plot_forecast
from rnnkit.apps.forecast import point_column as point_column
from rnnkit.apps.forecast import predict_at as predict_at
from rnnkit.apps.forecast import resolve as resolve
from rnnkit.apps.forecast import rmse as rmse
from rnnkit.apps.forecast import SCALER_FILE as SCALER_FILE
from rnnkit.apps.forecast import seasonal_naive as seasonal_naive
from rnnkit.apps.forecast import seasonal_naive_scale as seasonal_naive_scale
from rnnkit.apps.forecast import SeriesSetup as SeriesSetup
from rnnkit.apps.forecast import smape as smape
from rnnkit.apps.forecast import training_windows as training_windows
from rnnkit.data.series import check_length as check_length
from rnnkit.data.series import future_index as future_index
from rnnkit.data.series import infer_season as infer_season
from rnnkit.data.series import load_dataset as load_dataset
from rnnkit.data.series import read_series_csv as read_series_csv
from rnnkit.data.series import require as require
from rnnkit.data.series import Scaler as Scaler
from rnnkit.data.series import validate_frame as validate_frame
from rnnkit.data.series import windows as windows
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.apps.forecast")
