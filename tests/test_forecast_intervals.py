"""Conformal calibration of forecast intervals: coverage near nominal on series with known noise
(a miscalibrated head corrected), calibration from training rows only, the run-directory round
trip, and bad settings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

pd = pytest.importorskip("pandas")
pytest.importorskip("statsmodels")

from rnnkit.cli import main  # noqa: E402
from rnnkit.apps import forecast as fc  # noqa: E402

Z80 = 1.2815516  # the standard normal's 0.9 quantile: half-width of a central 80% interval


def random_walk(n, seed=0, sigma=1.0):
    """y_t = y_{t-1} + N(0, sigma^2): from any origin, h steps ahead is N(last value, h sigma^2)."""
    rng = np.random.default_rng(seed)
    y = 50 + np.cumsum(rng.normal(0, sigma, n))
    return pd.DataFrame({"y": y}, index=pd.RangeIndex(n, name="t"))


class ConstantHead(nn.Module):
    """A 'network' whose head outputs are fixed, ``(B, steps * K)``: a known, miscalibrated forecaster."""

    def __init__(self, values: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("values", values.reshape(-1))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.values.expand(inputs.shape[0], -1)  # (B, steps * K)


def too_narrow_head(config: fc.ForecastConfig, sigma_scaled: float, factor: float) -> ConstantHead:
    """The random walk's true centre (no change) with ``factor`` times its true spread."""
    steps = fc.steps_per_forecast(config)
    spread = factor * sigma_scaled * torch.sqrt(torch.arange(1, steps + 1, dtype=torch.float32))  # (steps,)
    if config.head == "gaussian":
        raw = torch.log(torch.expm1(spread - 1e-3))  # the inverse of the head's softplus(raw) + 1e-3
        values = torch.stack([torch.zeros(steps), raw], dim=-1)  # (steps, 2): mean, raw scale
    else:
        z = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(config.quantiles))  # (K,)
        values = spread[:, None] * z[None, :]  # (steps, K)
    return ConstantHead(values)


@pytest.mark.parametrize("options", [
    {"head": "gaussian"},
    {"head": "quantile"},
    {"strategy": "autoregressive", "sample_paths": 100},
])  # fmt: skip
def test_calibration_corrects_a_too_narrow_interval_to_nominal(options):
    frame = random_walk(1400)
    config = fc.ForecastConfig(horizon=4, lookback=8, season=1, test_size=800, transform="none",
                               calibration_size=300, **options)  # fmt: skip
    setup = fc.SeriesSetup(frame, config, "random walk")
    scaler = fc.fit_scaler(setup, setup.train_end)
    model = too_narrow_head(config, 1.0 / scaler.std[0], factor=0.3)
    calibration = fc.fit_calibration(model, frame, scaler, config, fc.calibration_rows(config, setup.train_end))
    assert calibration.rows == (300, 600) and calibration.origins == 297 and len(calibration.q) == 4
    result = fc.backtest(model, setup, scaler, baselines=False, calibration=calibration)
    scores = result.scores["RNN"]
    # 797 origins x 4 steps; an interval 0.3 times too narrow covers about 30%
    assert scores["raw coverage"] < 0.45
    assert abs(scores["coverage"] - 0.8) < 0.05, scores
    uncalibrated = fc.backtest(model, setup, scaler, baselines=False)
    assert uncalibrated.scores["RNN"]["coverage"] == scores["raw coverage"]
    np.testing.assert_array_equal(uncalibrated.forecasts["RNN"], result.forecasts["RNN"])  # same point forecast
    assert uncalibrated.scores["RNN"]["MASE"] == scores["MASE"]
    if config.strategy == "direct":  # the bounds move out to about the walk's true 0.1 and 0.9 quantiles
        true_half_width = Z80 * np.sqrt(np.arange(1, 5)) / scaler.std[0]
        np.testing.assert_allclose(np.asarray(calibration.q) + 0.3 * true_half_width, true_half_width, rtol=0.2)


def test_calibration_narrows_a_too_wide_interval():
    frame = random_walk(1400, seed=2)
    config = fc.ForecastConfig(horizon=4, lookback=8, season=1, test_size=800, transform="none",
                               head="quantile", calibration_size=300)  # fmt: skip
    setup = fc.SeriesSetup(frame, config, "random walk")
    scaler = fc.fit_scaler(setup, setup.train_end)
    model = too_narrow_head(config, 1.0 / scaler.std[0], factor=3.0)
    calibration = fc.fit_calibration(model, frame, scaler, config, fc.calibration_rows(config, setup.train_end))
    assert max(calibration.q) < 0  # CQR moves both bounds inwards
    scores = fc.backtest(model, setup, scaler, baselines=False, calibration=calibration).scores["RNN"]
    # (on seeds 0-5 of this walk calibrated coverage is 0.76-0.82, for too wide and too narrow heads alike)
    assert scores["raw coverage"] > 0.99 and abs(scores["coverage"] - 0.8) < 0.05, scores


def test_trained_forecaster_on_known_noise_lands_near_nominal():
    rng = np.random.default_rng(0)
    t = np.arange(500)
    y = 10 + 2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, len(t))  # N(0, 0.5^2) around a season
    series = pd.Series(y, index=pd.RangeIndex(len(t), name="t"), name="y")
    forecaster = fc.Forecaster(horizon=3, lookback=12, season=12, hidden_size=16, max_epochs=8, transform="none",
                               options={"calibration_size": 150})  # fmt: skip
    result = forecaster.backtest(series, test_size=200, baselines=False)
    scores = result.scores["RNN"]  # 198 origins x 3 steps
    assert result.calibration is not None and result.calibration.origins == 148
    assert result.calibration.rows == (150, 300)
    # a well-fitted head needs only small shifts (the noise's standard deviation is about 0.3 scaled units)
    assert all(abs(q) < 0.3 for q in result.calibration.q), result.calibration.q
    # 148 scores per step: the calibrated coverage varies from series to series (seeds 0-3: 0.80-0.90)
    assert abs(scores["coverage"] - 0.8) < 0.1, scores


# --- calibration reads the training part only ------------------------------------------------


def test_calibration_ignores_the_evaluated_part():
    frame = random_walk(200, seed=2)
    config = fc.ForecastConfig(horizon=4, lookback=8, season=1, test_size=50, transform="none")
    setup = fc.SeriesSetup(frame, config, "random walk")
    scaler = fc.fit_scaler(setup, setup.train_end)
    torch.manual_seed(0)
    model = fc.forecast_model(config, 1, {"encoder": {"cell": "gru", "hidden_size": 8}}).eval()  # reads its inputs
    rows = fc.calibration_rows(config, setup.train_end)
    assert rows == (142, 150)  # default: 2 x horizon rows at the end of the 150 training rows
    calibration = fc.fit_calibration(model, frame, scaler, config, rows)
    changed = frame.copy()
    changed.iloc[150:, 0] = 1e6  # the held-out part: anything
    assert fc.fit_calibration(model, changed, scaler, config, rows) == calibration
    changed.iloc[148, 0] += 5.0  # a calibration row: must matter, or this test could not fail
    assert fc.fit_calibration(model, changed, scaler, config, rows) != calibration


def test_forecaster_backtest_calibration_does_not_depend_on_the_test_part():
    series = random_walk(90, seed=4)["y"]
    forecaster = fc.Forecaster(horizon=3, lookback=6, season=1, hidden_size=4, max_epochs=2, transform="none")
    first = forecaster.backtest(series, test_size=20, baselines=False)
    changed = series.copy()
    changed.iloc[-20:] = changed.iloc[-20:] * 3 + 100
    second = forecaster.backtest(changed, test_size=20, baselines=False)
    assert first.calibration == second.calibration and first.calibration.rows == (64, 70)
    np.testing.assert_array_equal(first.forecasts["RNN"][0], second.forecasts["RNN"][0])  # same model


# --- the run directory ----------------------------------------------------------------------------


def write_series(path, n=72):
    t = np.arange(n)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.3, n)
    pd.DataFrame({"date": pd.date_range("2000-01", periods=n, freq="MS").strftime("%Y-%m-%d"), "y": y}).to_csv(
        path, index=False
    )
    return path


def train(tmp_path, name, *settings):
    data = write_series(tmp_path / "series.csv")
    run = tmp_path / name
    code = main(["train", "forecast", "--data", str(data), "--time-column", "date", "--target", "y", "--horizon", "4",
                 "--task.lookback=12", "--task.test_size=8", "--task.baselines=false", "--train.max_epochs=2",
                 "--model.encoder.hidden_size=4", "--run-dir", str(run), "--quiet", *settings])  # fmt: skip
    assert code == 0
    return data, run


def test_calibration_round_trips_through_the_run_directory(tmp_path, capsys):
    data, run = train(tmp_path, "calibrated", "--task.calibration_size=10")
    out = capsys.readouterr().out
    assert "conformal calibration (CQR) on training rows 54-63: 7 origins per step" in out
    assert "raw coverage" in out
    saved = json.loads((run / fc.FORECAST_FILE).read_text())["config"]
    assert saved["calibrate"] is True and saved["calibration_size"] == 10
    model, config, scaler, extra = fc.load_run(run)
    calibration = extra["calibration"]
    assert calibration == fc.Calibration.from_dict(json.loads((run / fc.CALIBRATION_FILE).read_text()))
    assert calibration.rows == (54, 64) and len(calibration.q) == 4 and calibration.level == 0.8
    result = fc.forecast_run(run, data)
    frame = fc.read_series_csv(data, "date", "y")
    expected = fc.predict_at(model, frame, scaler, config, [len(frame)], calibration)
    raw = fc.predict_at(model, frame, scaler, config, [len(frame)])
    np.testing.assert_allclose(result["lower"], expected["lower"][0])
    np.testing.assert_allclose(result["upper"], expected["upper"][0])
    np.testing.assert_allclose(result["mean"], raw["point"][0])  # calibration leaves the point forecast
    assert not np.allclose(result["upper"], raw["upper"][0])
    (run / fc.CALIBRATION_FILE).unlink()
    assert main(["forecast", str(run)]) == 2
    assert "calibration.json does not exist" in capsys.readouterr().err


def test_calibration_switched_off_round_trips(tmp_path, capsys):
    data, run = train(tmp_path, "raw", "--task.calibrate=false")
    out = capsys.readouterr().out
    assert "conformal" not in out and "raw coverage" not in out
    assert not (run / fc.CALIBRATION_FILE).exists()
    model, config, scaler, extra = fc.load_run(run)
    assert config.calibrate is False and extra["calibration"] is None
    frame = fc.read_series_csv(data, "date", "y")
    raw = fc.predict_at(model, frame, scaler, config, [len(frame)])
    result = fc.forecast_run(run, data)
    np.testing.assert_allclose(result["lower"], raw["lower"][0])
    np.testing.assert_allclose(result["upper"], raw["upper"][0])
    saved = json.loads((run / fc.FORECAST_FILE).read_text())
    del saved["config"]["calibrate"], saved["config"]["calibration_size"]  # a run from before calibration
    (run / fc.FORECAST_FILE).write_text(json.dumps(saved))
    assert fc.load_run(run)[1].calibrate is False
    np.testing.assert_allclose(fc.forecast_run(run, data)["upper"], raw["upper"][0])


# --- bad settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("settings,error,message", [
    ({"interval": 1.0}, ValueError, r"interval must be in \(0, 1\), got 1.0"),
    ({"interval": 0.0}, ValueError, "interval must be in"),
    ({"interval": -0.2}, ValueError, "interval must be in"),
    ({"head": "quantile", "quantiles": (0.1, 1.2)}, ValueError, r"quantiles must be .* in \(0, 1\)"),
    ({"calibration_size": 0}, ValueError, "calibration_size must be a positive integer or null, got 0"),
    ({"horizon": 6, "calibration_size": 5}, ValueError, "calibration_size must be at least horizon \\+ 3 = 9"),
    ({"horizon": 3, "interval": 0.95, "calibration_size": 10}, ValueError,
     "calibration_size must be at least horizon \\+ 18 = 21"),
    ({"calibrate": "yes"}, TypeError, "calibrate must be true or false"),
])  # fmt: skip
def test_bad_calibration_settings_name_the_argument(settings, error, message):
    with pytest.raises(error, match=message):
        fc.ForecastConfig(**settings)


def test_calibration_part_too_long_for_the_training_part():
    frame = random_walk(60)
    config = fc.ForecastConfig(horizon=4, lookback=8, season=1, test_size=10, calibration_size=40)
    with pytest.raises(ValueError, match="calibration_size=40 leaves 10 training rows before it, fewer than lookback"):
        fc.resolve(frame, config, "walk")
    fc.resolve(frame, fc.ForecastConfig(horizon=4, lookback=8, season=1, test_size=10, calibration_size=30), "walk")
    fc.resolve(frame, fc.ForecastConfig(horizon=4, lookback=8, season=1, test_size=10, calibration_size=40,
                                        calibrate=False), "walk")  # fmt: skip
    with pytest.raises(ValueError, match="calibration_size=8 is too short for horizon=4: the 0.9 conformal quantile"):
        # the default, 2 x horizon rows, leaves 5 origins; a 90% interval needs 9
        fc.check_calibration(fc.ForecastConfig(horizon=4, lookback=8, interval=0.9), 60, "walk")


def test_cli_bad_calibration_size_is_one_line_exit_2(tmp_path, capsys):
    data = write_series(tmp_path / "series.csv")
    code = main(["train", "forecast", "--data", str(data), "--time-column", "date", "--target", "y", "--horizon", "4",
                 "--task.calibration_size=3"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "calibration_size" in err


def test_min_calibration_origins():
    for level in (0.5, 0.8, 0.9, 0.95):
        n = fc.min_calibration_origins(level)
        assert math.ceil((n + 1) * level - 1e-9) <= n and math.ceil(n * level - 1e-9) > n - 1
    assert fc.min_calibration_origins(0.8) == 4 and fc.min_calibration_origins(0.95) == 19
