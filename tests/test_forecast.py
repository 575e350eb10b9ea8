"""Forecasting: metrics by hand, scaling on training rows only, windows, learning a seasonal
series, the CLI round trip, bad input, and the DataFrame API."""

from __future__ import annotations

import math

import numpy as np
import torch
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("statsmodels")

from rnnkit.cli import main  # noqa: E402
from rnnkit.apps import forecast as fc  # noqa: E402
from rnnkit.data.series import (  # noqa: E402
    AIRLINE_PASSENGERS,
    MissingExtraError,
    Scaler,
    load_dataset,
    read_series_csv,
    require,
    windows,
)


def seasonal_series(n=120, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + 0.05 * t + rng.normal(0, 0.1, n)
    return pd.Series(y, index=pd.date_range("2000-01", periods=n, freq="MS", name="month"), name="y")


def write_csv(path, rows, header="date,y,x"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


# --- metrics against hand-computed values -------------------------------------------------------


def test_metrics_by_hand():
    actual, predicted = [1.0, 2.0, 4.0], [2.0, 2.0, 1.0]
    assert fc.mae(actual, predicted) == pytest.approx((1 + 0 + 3) / 3)
    assert fc.rmse(actual, predicted) == pytest.approx(np.sqrt((1 + 0 + 9) / 3))
    # sMAPE: 200|y-f|/(|y|+|f|): 200/3, 0, 600/5 -> mean
    assert fc.smape(actual, predicted) == pytest.approx((200 / 3 + 0 + 120) / 3)
    assert fc.smape([0.0], [0.0]) == 0.0
    insample = [1.0, 3.0, 2.0, 5.0]  # season 2: |2-1|, |5-3| -> scale 1.5
    assert fc.seasonal_naive_scale(insample, 2) == pytest.approx(1.5)
    assert fc.mase(actual, predicted, insample, 2) == pytest.approx((4 / 3) / 1.5)
    assert fc.coverage([1.0, 2.0, 3.0, 4.0], [0.0, 2.5, 3.0, 0.0], [1.0, 3.0, 3.0, 3.9]) == pytest.approx(0.5)
    # a constant series: the scale is 0 and MASE undefined (NaN), not an error (issue 13, item 11)
    assert fc.seasonal_naive_scale([2.0, 2.0, 2.0], 1) == 0.0
    assert math.isnan(fc.mase([2.0], [2.5], [2.0, 2.0, 2.0], 1))


def test_baselines_by_hand():
    history = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert fc.naive(history, 3, 2).tolist() == [5.0, 5.0, 5.0]
    assert fc.seasonal_naive(history, 5, 2).tolist() == [4.0, 5.0, 4.0, 5.0, 4.0]


# --- scaling and windows ------------------------------------------------------------------------


def test_scaler_is_fitted_on_training_rows_only():
    frame = pd.DataFrame({"y": np.r_[np.arange(1.0, 11.0), np.full(5, 1000.0)]})
    setup = fc.SeriesSetup(frame, fc.ForecastConfig(transform="none"), "test")
    scaler = fc.fit_scaler(setup, 10)
    assert scaler.mean[0] == pytest.approx(5.5)  # the held-out 1000s are not in it
    assert scaler.std[0] == pytest.approx(np.arange(1.0, 11.0).std())
    log_scaler = fc.fit_scaler(fc.SeriesSetup(frame, fc.ForecastConfig(), "test"), 10)
    assert log_scaler.log == (True,) and log_scaler.mean[0] == pytest.approx(np.log(np.arange(1.0, 11.0)).mean())
    values = np.array([[3.0], [1000.0]])
    np.testing.assert_allclose(log_scaler.inverse(log_scaler.transform(values)[:, 0]), values[:, 0])
    again = Scaler.from_dict(__import__("json").loads(log_scaler.to_json()))
    assert again == log_scaler


def test_windows_shapes_and_levels():
    scaled = np.stack([np.arange(10.0), np.arange(10.0) * 10], axis=1)  # (N=10, F=2)
    inputs, targets, levels = windows(scaled, [4, 5, 9], lookback=4, horizon=3)
    assert inputs.shape == (3, 4, 2) and targets.shape == (3, 3) and levels.shape == (3,)
    assert levels.tolist() == [3.0, 4.0, 8.0]
    assert inputs[0, :, 0].tolist() == [-3.0, -2.0, -1.0, 0.0]  # the target relative to the last value
    assert inputs[0, :, 1].tolist() == [0.0, 10.0, 20.0, 30.0]  # covariates as they are
    assert targets[0].tolist() == [1.0, 2.0, 3.0]
    assert targets[2, 0].item() == 1.0 and torch.isnan(targets[2, 1:]).all()  # past the end: NaN
    with pytest.raises(ValueError, match="origin"):
        windows(scaled, [2], lookback=4, horizon=3)


# --- learning -----------------------------------------------------------------------------------


def test_learns_a_seasonal_series_better_than_seasonal_naive():
    result = fc.Forecaster(horizon=6, max_epochs=60, hidden_size=32).backtest(
        seasonal_series(), test_size=12, baselines=False
    )
    assert len(result.origins) == 7
    assert result.scores["RNN"]["MASE"] < result.scores["seasonal naive"]["MASE"]
    assert 0 <= result.scores["RNN"]["coverage"] <= 1


def test_dataframe_api_with_covariates_and_quantile_head():
    y = seasonal_series(72)
    frame = pd.DataFrame({"when": y.index.strftime("%Y-%m-%d"), "sales": y.to_numpy(),
                          "price": np.linspace(1, 2, 72)})  # fmt: skip
    forecaster = fc.Forecaster(horizon=4, lookback=12, covariates=("price",), head="quantile", max_epochs=2)
    result = forecaster.fit(frame, target="sales", time_column="when").predict()
    assert result.columns.tolist() == ["median", "lower", "upper"]
    assert result.index[0] == pd.Timestamp("2006-01-01") and len(result) == 4
    assert (result["lower"] <= result["median"]).all() and (result["median"] <= result["upper"]).all()
    gaussian = fc.Forecaster(horizon=3, lookback=12, max_epochs=2).fit(y).predict()
    assert gaussian.columns.tolist() == ["mean", "lower", "upper"]
    with pytest.raises(ValueError, match="call fit"):
        fc.Forecaster().predict()


# --- the command line ---------------------------------------------------------------------------


def test_cli_train_and_forecast_round_trip(tmp_path, capsys):
    y = seasonal_series(60)
    rows = [f"{t:%Y-%m-%d},{v:.4f},{i % 3}" for i, (t, v) in enumerate(y.items())]
    data = write_csv(tmp_path / "sales.csv", rows)
    run = tmp_path / "run"
    code = main(["train", "forecast", "--data", str(data), "--time-column", "date", "--target", "y",
                 "--covariates", "x", "--horizon", "6", "--run-dir", str(run), "--quiet",
                 "--task.test_size=12", "--train.max_epochs=2", "--model.encoder.hidden_size=8"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    for method in ("RNN", "naive", "seasonal naive", "ETS", "ARIMA"):
        assert f"\n{method} " in out
    assert (run / "scaler.json").is_file() and (run / "plots" / "backtest.png").is_file()
    assert main(["forecast", str(run), "--data", str(data)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "date,mean,lower,upper" and len(lines) == 7
    assert lines[1].startswith("2005-01-01,")
    assert (run / "forecast.png").stat().st_size > 1000


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    data = write_csv(tmp_path / "bad.csv", ["2000-01-01,1,2", "2000-02-01,x,2"])
    code = main(["train", "forecast", "--data", str(data), "--time-column", "date", "--target", "y"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "non-numeric value 'x'" in err
    assert main(["forecast", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows,message",
    [
        (["2000-01-01,1,2", "2000-02-01,,2"], "column 'y' has 1 missing value"),
        (["2000-01-01,1,2", "2000-02-01,NA,2"], "missing value"),
        (["2000-01-01,1,2", "2000-02-01,abc,2"], "non-numeric value 'abc' at row 2"),
        (["2000-02-01,1,2", "2000-01-01,2,2"], "sorted ascending"),
        (["2000-01-01,1,2", "2000-01-01,2,2"], "duplicate timestamp 2000-01-01"),
        (["2000-01-01,1,2", "someday,2,2"], "cannot read 'someday' as a time"),
    ],
)
def test_bad_csv_cells(tmp_path, rows, message):
    with pytest.raises(ValueError, match=message):
        read_series_csv(write_csv(tmp_path / "d.csv", rows), "date", "y", ["x"])


def test_missing_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["2000-01-01,1,2"])
    with pytest.raises(ValueError, match="no column 'sales'; its columns are 'date', 'y', 'x'"):
        read_series_csv(path, "date", "sales")
    with pytest.raises(ValueError, match="no column 'z'"):
        read_series_csv(path, "date", "y", ["z"])


def test_missing_or_empty_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_series_csv(tmp_path / "none.csv", "date", "y")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        read_series_csv(tmp_path / "empty.csv", "date", "y")


def test_series_too_short(tmp_path):
    y = seasonal_series(30)
    with pytest.raises(ValueError, match="too short: 30 rows, but lookback=24 \\+ horizon=12 \\+ test_size=24"):
        fc.Forecaster(horizon=12).backtest(y)
    with pytest.raises(ValueError, match="too short"):
        fc.Forecaster(horizon=12, lookback=24).fit(seasonal_series(20))


def test_config_errors():
    with pytest.raises(ValueError, match="--data needs --time-column and --target"):
        fc.ForecastConfig(data="x.csv")
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        fc.ForecastConfig(horizon=0)
    with pytest.raises(ValueError, match="quantiles"):
        fc.ForecastConfig(quantiles=(0.9, 0.1))
    with pytest.raises(TypeError, match="Series or DataFrame"):
        fc.Forecaster().fit([1, 2, 3])


def test_missing_extra_names_the_install_command():
    with pytest.raises(MissingExtraError, match=r"pip install 'rnnkit\[timeseries\]'"):
        require("rnnkit_no_such_module")
    assert issubclass(MissingExtraError, ValueError)  # the CLI prints it as one line


# --- embedded data ------------------------------------------------------------------------------


def test_embedded_data_sets():
    airline = load_dataset("airline")
    assert len(airline.frame) == 144 and airline.season == 12
    assert airline.frame.index[0] == pd.Timestamp("1949-01-01") and airline.frame.iloc[-1, 0] == 432
    sunspots = load_dataset("sunspots")
    assert len(sunspots.frame) == 309 and sunspots.frame.index[0] == 1700 and sunspots.season == 11
    try:  # statsmodels keeps the same series inside its test suite, where installed
        from statsmodels.tsa.statespace.tests.results.results_sarimax import air2_data
    except ImportError:
        return
    assert tuple(air2_data) == AIRLINE_PASSENGERS


def test_docstring_example_runs():
    import doctest

    result = doctest.testmod(fc.forecaster, optionflags=doctest.ELLIPSIS)  # the Forecaster's example
    assert result.attempted > 0 and result.failed == 0


def test_forecast_needs_only_lookback_rows():
    forecaster = fc.Forecaster(horizon=3, lookback=12, max_epochs=1).fit(seasonal_series(40))
    assert len(forecaster.predict(seasonal_series(12))) == 3
    with pytest.raises(ValueError, match="too short to forecast from: 11 rows, fewer than lookback=12"):
        forecaster.predict(seasonal_series(11))


def test_forecast_new_csv_after_a_run_on_an_embedded_series(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "forecast", "--task.dataset=sunspots", "--horizon", "3", "--task.lookback=11",
                 "--task.baselines=false", "--train.max_epochs=1", "--model.encoder.hidden_size=4",
                 "--run-dir", str(run), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    frame = load_dataset("sunspots").frame
    frame.iloc[-20:].to_csv(tmp_path / "recent.csv")  # columns year, sunactivity: as in the run
    assert main(["forecast", str(run), "--data", str(tmp_path / "recent.csv")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "year,mean,lower,upper" and [l.split(",")[0] for l in lines[1:]] == ["2009", "2010", "2011"]
    frame.iloc[-20:].to_csv(tmp_path / "renamed.csv", header=["spots"])
    assert main(["forecast", str(run), "--data", str(tmp_path / "renamed.csv")]) == 2
    assert "no column 'sunactivity'; its columns are 'year', 'spots'" in capsys.readouterr().err


def test_cli_without_pandas_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)  # import pandas now fails
    assert main(["train", "forecast", "--task.dataset=airline", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "pip install 'rnnkit[timeseries]'" in err


def test_autoregressive_strategy_samples_paths():
    y = seasonal_series(60)
    forecaster = fc.Forecaster(horizon=5, lookback=12, max_epochs=2, options={"strategy": "autoregressive",
                                                                              "sample_paths": 50})  # fmt: skip
    assert forecaster.fit(y).model.head.out_features == 2  # one step: a mean and a scale
    result = forecaster.predict()
    assert result.columns.tolist() == ["mean", "lower", "upper"] and len(result) == 5
    assert (result["lower"] <= result["mean"]).all() and (result["mean"] <= result["upper"]).all()
    assert result.equals(forecaster.predict())  # the paths are drawn from a fixed seed
    with pytest.raises(ValueError, match="autoregressive' needs head='gaussian'"):
        fc.ForecastConfig(strategy="autoregressive", head="quantile")


def test_a_constant_series_is_said_before_training_and_its_mase_is_undefined(tmp_path, capsys):
    """Issue 13, item 11: a constant target trained for minutes and then exited 2 ("MASE is
    undefined"). It is said before training, and the backtest reports the metric as undefined."""
    rows = [f"{t:%Y-%m-%d},5.0" for t in pd.date_range("2000-01", periods=48, freq="MS")]
    data = write_csv(tmp_path / "flat.csv", rows, header="date,y")
    with pytest.warns(UserWarning, match="is constant .* MASE is undefined"):
        code = main(["train", "forecast", "--data", str(data), "--time-column", "date", "--target", "y",
                     "--horizon", "3", "--run-dir", str(tmp_path / "run"), "--quiet", "--task.test_size=6",
                     "--train.max_epochs=1", "--model.encoder.hidden_size=4"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "undefined" in out and "in-sample seasonal naive error is 0" in out
