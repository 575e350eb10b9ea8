"""Many series in one long file: reading and its errors, adaptive windows, bucketed batches, the
global model end to end (CLI and Python), the classical baselines against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pd = pytest.importorskip("pandas")
pytest.importorskip("statsmodels")

from rnnkit.apps.forecast import Forecaster  # noqa: E402
from rnnkit.apps.forecast.baselines import auto_arima, auto_ets, naive2, seasonality_test, theta  # noqa: E402
from rnnkit.apps.forecast.many import mase_scale  # noqa: E402
from rnnkit.data.panel import BucketBatches, adaptive_windows, validate_long  # noqa: E402


def long_frame(series: int = 6, base: int = 30, seed: int = 0, tiny: bool = False):
    rng, rows = np.random.default_rng(seed), []
    for i in range(series):
        n = base + 4 * i
        t = pd.date_range("2000-01", periods=n, freq="MS")
        y = 20 + 5 * i + 3 * np.sin(np.arange(n) * np.pi / 6) + 0.2 * np.arange(n) + rng.normal(0, 0.3, n)
        rows += [(f"s{i}", "AB"[i % 2], d.strftime("%Y-%m-%d"), v) for d, v in zip(t, y)]
    if tiny:
        rows += [("tiny", "A", "2000-01-01", 3.0), ("tiny", "A", "2000-02-01", 4.0)]
    return pd.DataFrame(rows, columns=["series_id", "cat", "date", "y"])


KW = {"id_column": "series_id", "time_column": "date", "target": "y"}


# --- reading --------------------------------------------------------------------------------------


def test_long_table_is_sorted_within_series_and_keeps_first_seen_order():
    table = pd.DataFrame({"id": ["b", "a", "b", "a"], "t": [2, 1, 1, 2], "y": ["4", "1", "3", "2"]})
    panel = validate_long(table, id_column="id", time_column="t", target="y")
    assert panel.ids == ["b", "a"]
    assert panel.values["b"].tolist() == [3.0, 4.0] and list(panel.times["b"]) == [1, 2]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.rename(columns={"series_id": "sid"}), "no column 'series_id' \\(--id-column\\)"),
        (lambda t: pd.concat([t, t.iloc[[3]]]), "duplicate row for series 's0' at time 2000-04-01"),
        (lambda t: t.assign(y=t["y"].astype(str).where(t.index != 5, "abc")), "non-numeric value 'abc'"),
        (lambda t: t.assign(date=t["date"].where(t["series_id"] != "s1",
                                                 pd.date_range("2000-01-01", periods=len(t), freq="D")
                                                 .strftime("%Y-%m-%d"))), "mixed frequencies"),
        (lambda t: t.assign(cat=np.where(t.index == 0, "Z", t["cat"])), "more than one 'cat'"),
    ],
)
def test_bad_long_tables_are_one_clear_error(change, message):
    with pytest.raises(ValueError, match=message):
        validate_long(change(long_frame(3)), static="cat", **KW)


# --- windows and batches -----------------------------------------------------------------------------


def test_adaptive_windows_are_relative_to_the_level_and_shorter_at_the_start():
    x, y, lengths, levels = adaptive_windows(np.arange(6.0), [2, 5], lookback=4, horizon=2, features=np.array([1.0]))
    assert lengths.tolist() == [2, 4] and levels.tolist() == [1.0, 4.0]
    assert x[0, :, 0].tolist() == [-1.0, 0.0, 0.0, 0.0] and x[0, :, 1].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert x[1, :, 0].tolist() == [-3.0, -2.0, -1.0, 0.0]
    assert y[0].tolist() == [1.0, 2.0] and y[1, 0].item() == 1.0 and torch.isnan(y[1, 1])


def test_bucket_batches_group_similar_lengths_and_cover_every_row_once():
    lengths = torch.tensor([1, 8, 2, 7, 1, 8, 2, 7])
    inputs = torch.arange(8.0)[:, None, None].expand(8, 8, 1).clone()
    b = BucketBatches(inputs, torch.zeros(8, 1), lengths, batch_size=2, seed=3)
    seen = []
    for x, _, length in b.epoch(0):
        assert x.shape[1] == int(length.max())  # cut to the longest window of the batch
        assert len(set(length.tolist())) == 1  # pairs of equal lengths go together
        seen += x[:, 0, 0].long().tolist()
    assert sorted(seen) == list(range(8))
    assert [t[2].tolist() for t in b.epoch(1)] == [t[2].tolist() for t in b.epoch(1)]  # seeded


# --- baselines ----------------------------------------------------------------------------------------


def test_seasonal_methods_against_hand_computed_cases():
    season = np.tile([1.0, 2.0, 3.0, 2.0], 6) * 10  # exactly seasonal, positive
    assert seasonality_test(season, 4) and not seasonality_test(np.arange(1.0, 25.0) ** 0, 4)
    np.testing.assert_allclose(naive2(season, 4, 4), [10, 20, 30, 20], rtol=1e-6)  # naive on a flat adjusted series
    line = 5.0 + 2.0 * np.arange(30)  # its next values are 65, 67, 69
    # Theta on a line: half the regression line (65, 67, 69) and half SES of the theta=2 line, the line
    # itself, whose SES (alpha near 1) stays at the last value 63: 64, 65, 66 (the classic half drift)
    np.testing.assert_allclose(theta(line, 3, 1), [64, 65, 66], rtol=1e-3)
    np.testing.assert_allclose(auto_arima(line, 3, 1), [65, 67, 69], rtol=0.01)
    np.testing.assert_allclose(auto_ets(line, 3, 1), [65, 67, 69], rtol=0.01)
    assert mase_scale(np.array([1.0, 3.0, 2.0]), 12) == pytest.approx(1.5)  # naive scale where a season does not fit


# --- the global model, Python and CLI --------------------------------------------------------------------


def test_forecaster_fits_a_long_frame_and_forecasts_every_series():
    table = long_frame(4, tiny=True)
    f = Forecaster(horizon=3, max_epochs=2, hidden_size=8, batch_size=64)
    with pytest.warns(UserWarning, match="'tiny'.*naive fallback"):
        f.fit(table, **KW)
        out = f.predict()
    assert out.groupby("series_id").size().to_dict() == {"s0": 3, "s1": 3, "s2": 3, "s3": 3, "tiny": 3}
    tiny = out[out["series_id"] == "tiny"]
    assert tiny["fallback"].all() and (tiny["mean"] == 4.0).all()
    assert list(tiny["date"].dt.strftime("%Y-%m-%d")) == ["2000-03-01", "2000-04-01", "2000-05-01"]
    real = out[~out["fallback"]]
    assert (real["lower"] <= real["mean"]).all() and (real["mean"] <= real["upper"]).all()
    assert real["mean"].between(15, 60).all()  # per-series scaling put forecasts back in each series' units


def test_global_model_beats_naive_on_seasonal_series():
    torch.manual_seed(0)
    result = Forecaster(horizon=6, max_epochs=25, hidden_size=16, batch_size=32, lr=1e-2).backtest(
        long_frame(8, base=48), **KW, baselines=True
    )
    scores = result["scores"]
    assert scores["RNN"]["smape"] < scores["naive"]["smape"]
    assert set(scores) >= {"naive", "seasonal naive", "Naive2", "Theta", "ETS"}


def rnnkit(*args, capsys):
    from rnnkit.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_trains_forecasts_every_series_and_refuses_a_missing_id_column(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    long_frame(3, tiny=True).to_csv(tmp_path / "long.csv", index=False)
    common = ["--data", "long.csv", "--time-column", "date", "--target", "y", "--horizon", "3"]
    done = rnnkit("train", "forecast", *common, "--id-column", "series_id", "--task.static", "cat",
                  "--task.baselines", "false", "--train.max_epochs", "1", "--model.encoder.hidden_size", "8",
                  "--run-dir", "run", capsys=capsys)  # fmt: skip
    assert done[0] == 0, done[2]
    assert "3 series, one global model" in done[1]
    with pytest.warns(UserWarning, match="'tiny'.*naive fallback"):  # the CLI prints it as one line
        code, out, err = rnnkit("forecast", "run", "--data", "long.csv", capsys=capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "series_id,date,mean,lower,upper,fallback" and len(lines) == 1 + 4 * 3
    code, out, err = rnnkit("train", "forecast", *common, "--id-column", "nope", "--run-dir", "run2", capsys=capsys)
    assert code != 0 and "no column 'nope' (--id-column)" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("freq", "season"), [("30min", 48), ("h", 24), ("15min", 96), ("bh", 8), ("MS", 12),
                                              ("D", 7), ("B", 5), ("QS", 4)])  # fmt: skip
def test_sub_daily_frequencies_infer_a_one_day_season(freq, season):
    from rnnkit.data.series import infer_season

    assert infer_season(pd.date_range("2024-01-01 09:00", periods=40, freq=freq)) == season
