"""NAB scoring against hand-computed cases; the anomaly detectors' streaming contracts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnkit.data.nab import window_indices
from rnnkit.metrics import nab

# one series of 100 rows, probation 15, one window over rows 40..49 (width 10)
ROWS, WINDOW = 100, [(40, 49)]
MAX_TP = 2 / (1 + math.exp(-5)) - 1  # sigma(-1)


def fire(*rows, n=ROWS):
    d = np.zeros(n, dtype=bool)
    d[list(rows)] = True
    return d


def test_scaled_sigmoid_values():
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(MAX_TP)
    assert nab.scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert nab.scaled_sigmoid(3.5) == -1.0


def test_probationary_length():
    assert nab.probationary_length(100) == 15
    assert nab.probationary_length(10_000) == 750  # capped at 15% of 5000


def test_perfect_and_null_detectors():
    perfect = nab.score_series(fire(40), WINDOW)
    null = nab.score_series(fire(), WINDOW)
    assert perfect.raw == pytest.approx(1.0) and perfect.true_positives == 1
    assert null.raw == pytest.approx(-1.0) and null.false_negatives == 1
    assert nab.normalised([perfect]) == pytest.approx(100.0)
    assert nab.normalised([null]) == pytest.approx(0.0)


def test_late_detection_scores_less_and_only_the_first_counts():
    late = nab.score_series(fire(45), WINDOW)
    # y = -(49 - 45 + 1) / 10 = -0.5
    assert late.raw == pytest.approx((2 / (1 + math.exp(-2.5)) - 1) / MAX_TP)
    assert late.raw < nab.score_series(fire(40), WINDOW).raw
    assert nab.score_series(fire(45, 47), WINDOW).raw == pytest.approx(late.raw)
    assert nab.score_series(fire(40, 45), WINDOW).raw == pytest.approx(1.0)


def test_false_positives_cost():
    before = nab.score_series(fire(20, 40), WINDOW)  # no preceding window: -A_FP
    assert before.raw == pytest.approx(1.0 - 0.11) and before.false_positives == 1
    assert nab.normalised([before]) == pytest.approx(100 * (0.89 + 1) / 2)
    after = nab.score_series(fire(40, 60), WINDOW)  # y = |60 - 49| / (10 - 1)
    assert after.raw == pytest.approx(1.0 + 0.11 * (2 / (1 + math.exp(5 * 11 / 9)) - 1))
    just_after = nab.score_series(fire(40, 50), WINDOW)
    assert after.raw < just_after.raw < 1.0


def test_probationary_rows_are_not_scored():
    assert nab.score_series(fire(5, 40), WINDOW).raw == pytest.approx(1.0)
    assert nab.score_series(fire(5, 40), WINDOW, probation=0).raw == pytest.approx(0.89)


def test_corpus_normalisation_sums_before_dividing():
    a = nab.score_series(fire(40), WINDOW)  # +1 of (-1, 1)
    b = nab.score_series(fire(), [(30, 39), (60, 69)])  # -2 of (-2, 2)
    quiet = nab.score_series(fire(70), [])  # no window: only a false positive
    assert nab.normalised([a, b]) == pytest.approx(100 * (-1 - -3) / (3 - -3))  # raw -1, null -3, perfect 3
    assert nab.normalised([a, quiet]) == pytest.approx(100 * (0.89 + 1) / 2)


def test_window_indices_from_timestamps():
    import pandas as pd

    times = pd.date_range("2020-01-01", periods=10, freq="h")
    assert window_indices(times, [["2020-01-01 02:30", "2020-01-01 05:00"]]) == [(3, 5)]
    with pytest.raises(ValueError, match="holds no row"):
        window_indices(times, [["2021-01-01", "2021-01-02"]])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="window 0"):
        nab.score_series(fire(), [(40, 200)])
    with pytest.raises(ValueError, match="disjoint"):
        nab.score_series(fire(), [(40, 49), (45, 60)])
    with pytest.raises(ValueError, match="booleans"):
        nab.score_series(np.full(ROWS, 0.5), WINDOW)
    with pytest.raises(ValueError, match="no scored anomaly window"):
        nab.normalised([nab.score_series(fire(), [])])


def test_best_threshold_picks_the_separating_one():
    scores = np.zeros(ROWS)
    scores[40] = 0.9
    scores[20] = 0.5
    threshold, value = nab.best_threshold({"s": scores}, {"s": WINDOW}, thresholds=[0.4, 0.6, 0.95])
    assert threshold == 0.6 and value == pytest.approx(100.0)


# --- the detectors ---------------------------------------------------------------------------

from rnnkit.apps import anomaly  # noqa: E402


def test_windowed_gaussian_matches_pandas_rolling():
    import pandas as pd

    rng = np.random.default_rng(0)
    values = 1000.0 + rng.normal(size=300)
    values[200] += 12.0
    g = anomaly.WindowedGaussian(window=50, threshold=5.0, min_history=10)
    scores, flags = anomaly.score_all(g, values)
    past = pd.Series(values).shift(1).rolling(50, min_periods=10)
    expected = ((pd.Series(values) - past.mean()).abs() / past.std(ddof=0)).fillna(0.0).to_numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-8)
    assert np.flatnonzero(flags).tolist() == [200]


def test_windowed_gaussian_state_round_trip_and_nan():
    rng = np.random.default_rng(1)
    values = rng.normal(size=120)
    whole = anomaly.WindowedGaussian(window=30, min_history=5)
    expected, _ = anomaly.score_all(whole, values)
    first = anomaly.WindowedGaussian(window=30, min_history=5)
    anomaly.score_all(first, values[:70])
    resumed = anomaly.WindowedGaussian(window=30, min_history=5)
    resumed.load_state_dict(first.state_dict())
    rest, _ = anomaly.score_all(resumed, values[70:])
    np.testing.assert_allclose(rest, expected[70:])
    score, flag = resumed.score(float("nan"))
    assert math.isnan(score) and not flag and resumed.missing == 1
    assert np.isfinite(resumed.score(0.0)[0])  # keeps running; the NaN never entered the sums


def test_windowed_gaussian_constant_and_bad_arguments():
    g = anomaly.WindowedGaussian(window=10, min_history=3)
    assert [g.score(5.0)[0] for _ in range(5)] == [0.0] * 5
    assert g.score(6.0) == (math.inf, True)
    with pytest.raises(ValueError, match="window"):
        anomaly.WindowedGaussian(window=1)
    with pytest.raises(TypeError, match="value"):
        g.score("3")


def test_windowed_gaussian_warm_is_streaming_unscored():
    rng = np.random.default_rng(2)
    values = 50.0 + rng.normal(size=200)
    expected, expected_flags = anomaly.score_all(anomaly.WindowedGaussian(window=60, min_history=20), values)
    g = anomaly.WindowedGaussian(window=60, min_history=20)
    g.warm(np.concatenate([[np.nan], values[:120]]))  # only its last 60 finite values count
    scores, flags = anomaly.score_all(g, values[120:])
    np.testing.assert_allclose(scores, expected[120:], rtol=1e-9)
    np.testing.assert_array_equal(flags, expected_flags[120:])
    cold = anomaly.WindowedGaussian(window=60, min_history=20)
    assert anomaly.score_all(cold, values[120:])[0][:20].tolist() == [0.0] * 20  # what the warm start removes


def test_dynamic_threshold_warm_fits_at_once_and_keeps_its_cadence():
    e = _errors_with_anomaly()
    t = anomaly.DynamicThreshold(window=200, refit_every=50, min_history=100)
    t.warm(e[:450])  # the last 200 count
    assert t.epsilon == pytest.approx(anomaly.select_epsilon(e[250:450], t.z_values)[0])
    anomaly.score_all(t, e[450:499])
    assert t.epsilon == pytest.approx(anomaly.select_epsilon(e[250:450], t.z_values)[0])
    t.score(e[499])  # refit_every errors after the warm start
    assert t.epsilon == pytest.approx(anomaly.select_epsilon(e[300:500], t.z_values)[0])
    scores, flags = anomaly.score_all(t, e[500:700])
    assert np.flatnonzero(flags).tolist() == [100, 101, 102, 103, 104]  # the anomaly at 600..604
    # too few errors to fit on: it fits at min_history, as a cold one does
    short = anomaly.DynamicThreshold(window=200, refit_every=50, min_history=100)
    short.warm(e[:60])
    assert short.epsilon is None
    anomaly.score_all(short, e[60:99])
    assert short.epsilon is None
    short.score(e[99])
    assert short.epsilon == pytest.approx(anomaly.select_epsilon(e[:100], short.z_values)[0])


def test_dynamic_threshold_warm_state_round_trip_and_old_states():
    e = _errors_with_anomaly(seed=3)
    whole = anomaly.DynamicThreshold(window=300, refit_every=40)
    whole.warm(e[:250])
    expected = anomaly.score_all(whole, e[250:])
    first = anomaly.DynamicThreshold(window=300, refit_every=40)
    first.warm(e[:250])
    anomaly.score_all(first, e[250:602])
    state = first.state_dict()
    resumed = anomaly.DynamicThreshold(window=300, refit_every=40)
    resumed.load_state_dict(state)
    rest = anomaly.score_all(resumed, e[602:])
    np.testing.assert_array_equal(rest[0], expected[0][352:])
    np.testing.assert_array_equal(rest[1], expected[1][352:])
    # a state saved before warm() existed (no refit_at) resumes on the old cadence
    cold = anomaly.DynamicThreshold(window=300, refit_every=40)
    whole_cold = anomaly.score_all(cold, e)
    first = anomaly.DynamicThreshold(window=300, refit_every=40)
    anomaly.score_all(first, e[:555])
    state = first.state_dict()
    del state["refit_at"]
    resumed = anomaly.DynamicThreshold(window=300, refit_every=40)
    resumed.load_state_dict(state)
    np.testing.assert_array_equal(anomaly.score_all(resumed, e[555:])[0], whole_cold[0][555:])


def _errors_with_anomaly(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    e = np.abs(rng.normal(0.3, 0.1, size=n))
    e[600:605] += 3.0
    return e


def _sine(n=600, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.sin(2 * np.pi * t / 25) + 0.05 * rng.normal(size=n)


@pytest.fixture(scope="module")
def detector():
    values = _sine()
    config = anomaly.RNNDetectorConfig(hidden_size=8, epochs=60, chunk=50)
    return anomaly.RNNDetector(config).fit(values[:300])


def test_rnn_streaming_equals_batch(detector):
    values = _sine(seed=1)
    values[450:455] += 3.0
    batch, batch_flags = detector.batch_scores(values)
    stream, stream_flags = anomaly.score_all(detector.scorer(), values)
    np.testing.assert_allclose(stream, batch, rtol=1e-4, atol=1e-4)
    assert (stream_flags == batch_flags).mean() > 0.99


def test_rnn_detector_flags_the_injected_anomaly(detector):
    values = _sine(seed=1)
    values[450:455] += 3.0
    scores, flags = detector.batch_scores(values)
    assert flags[450:470].any()
    assert scores[450:470].max() > 3 * np.median(scores[300:440])


def test_rnn_scorer_resumes_and_survives_nan(detector):
    values = _sine(seed=2)[:200]
    expected, _ = anomaly.score_all(detector.scorer(), values)
    first = detector.scorer()
    anomaly.score_all(first, values[:120])
    resumed = detector.scorer()
    resumed.load_state_dict(first.state_dict())
    rest, _ = anomaly.score_all(resumed, values[120:])
    np.testing.assert_allclose(rest, expected[120:], rtol=1e-5, atol=1e-6)
    score, flag = resumed.score(float("nan"))
    assert math.isnan(score) and not flag and resumed.missing == 1
    assert np.isfinite(resumed.score(0.0)[0])


def test_rnn_detector_rejects_bad_input():
    with pytest.raises(ValueError, match="at least"):
        anomaly.RNNDetector().fit(np.zeros(10))
    with pytest.raises(ValueError, match="finite"):
        anomaly.RNNDetector().fit(np.full(500, np.nan))
    with pytest.raises(ValueError, match="fit"):
        anomaly.RNNDetector().scorer()


def test_docstring_example_runs():
    import doctest

    from rnnkit.apps.anomaly import detector, scorers, thresholds

    for module in (detector, scorers, thresholds):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0
    assert result.attempted > 0


# --- `rnnkit detect` ---------------------------------------------------------------------------


def _csv(tmp_path, n=1000):
    import pandas as pd

    values = _sine(n)
    values[700] += 5.0
    path = tmp_path / "series.csv"
    pd.DataFrame({"timestamp": pd.date_range("2020-01-01", periods=n, freq="h"), "value": values}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("detector", ["gaussian", "lstm"])
def test_detect_command_on_a_csv(tmp_path, capsys, detector):
    from rnnkit.cli import main

    path, plot = _csv(tmp_path), tmp_path / "plot.png"
    assert main(["detect", "--data", str(path), "--detector", detector, "--plot", str(plot)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "timestamp,value,score,anomaly_score,anomaly" and len(lines) == 1001
    assert lines[701].endswith(",1")
    assert plot.stat().st_size > 1000


def test_detect_command_streams_standard_input(monkeypatch, capsys):
    import io

    from rnnkit.cli import main

    numbers = [f"{v:.3f}" for v in _sine(100)] + ["", "9"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(numbers) + "\n"))
    assert main(["detect"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "value,score,anomaly_score,anomaly" and out[101] == ",nan,nan,0" and out[102].endswith(",1")


def test_detect_command_errors_are_one_line(tmp_path, monkeypatch, capsys):
    import io

    from rnnkit.cli import main

    assert main(["detect", "--data", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv does not exist" in capsys.readouterr().err
    # a stream reports a bad line for that point, names it on stderr, and keeps going
    monkeypatch.setattr("sys.stdin", io.StringIO("1\nabc\n2\n"))
    assert main(["detect"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1:] == ["1,0.0000,0.0000,0", "abc,nan,nan,0", "2,0.0000,0.0000,0"]
    assert "line 2 is not a number" in captured.err


# --- anomaly likelihood (Ahmad et al. 2017) and the hold-off ------------------------------------


def test_likelihood_by_hand_against_scipy():
    norm = pytest.importorskip("scipy.stats").norm
    rng = np.random.default_rng(3)
    errors = np.abs(rng.normal(1.0, 0.3, 300))
    lk = anomaly.AnomalyLikelihood(short=4, window=50, min_history=20)
    averages, got = [], []
    for t, e in enumerate(errors):
        score, flag = lk.score(float(e))
        average = errors[max(0, t - 3) : t + 1].mean()  # eq. 5: the short mean, the newest error included
        history = np.array(averages[-50:])  # eq. 4: the long window of earlier short means
        if len(history) >= 20:
            expected = norm.cdf((average - history.mean()) / history.std())  # eq. 6: 1 - Q(z) = Phi(z)
            assert lk.likelihood == pytest.approx(expected, rel=1e-9, abs=1e-12)
            assert score == pytest.approx(anomaly.likelihood.log_score(expected))
            assert flag == (expected >= 1 - 1e-5)
            got.append(score)
        else:
            assert lk.likelihood == 0.5 and not flag  # still learning: Numenta's neutral 0.5
        averages.append(average)
    assert 0.0 <= min(got) and max(got) <= 1.0


def test_likelihood_flags_a_run_of_large_errors_not_one_blip_and_round_trips():
    lk = anomaly.AnomalyLikelihood(short=5, window=200, min_history=50)
    base = list(np.abs(np.random.default_rng(0).normal(1.0, 0.1, 300)))
    flags = [lk.score(e)[1] for e in base + [1.5] + base[:20]]
    # one error 5 standard deviations out (a z-score flags it), averaged with four usual ones: not unlikely enough
    assert not any(flags)
    z = anomaly.WindowedGaussian(window=200, threshold=4.0)
    assert [z.score(e)[1] for e in base + [1.5]][-1]
    state = lk.state_dict()
    run = [lk.score(e)[1] for e in [3.0] * 5]
    assert any(run)  # a run of them is
    again = anomaly.AnomalyLikelihood(short=5, window=200, min_history=50)
    again.load_state_dict(state)
    assert [again.score(e)[1] for e in [3.0] * 5] == run
    with pytest.raises(ValueError, match="state is for short=5"):
        anomaly.AnomalyLikelihood(short=4, window=200, min_history=50).load_state_dict(state)
    for bad, message in (({"epsilon": 0.0}, "epsilon must lie in"), ({"min_history": 500}, "min_history must be at most"),
                         ({"short": 0}, "short must be")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            anomaly.AnomalyLikelihood(**{"window": 200, **bad})


def test_hold_off_keeps_the_first_flag_of_an_event_and_the_scores():
    inner = anomaly.WindowedGaussian(window=50, threshold=3.0, min_history=10)
    plain = anomaly.WindowedGaussian(window=50, threshold=3.0, min_history=10)
    values = [1.0, 1.2, 0.8, 1.1] * 10 + [9.0, 9.0, 9.0, 1.0, 1.1, 20.0, 1.0, 1.0, 30.0]
    held = anomaly.HoldOff(inner, rows=4)
    got = anomaly.score_all(held, values)
    expected = anomaly.score_all(plain, values)
    np.testing.assert_array_equal(got[0], expected[0])  # the scores are the threshold's
    raw = np.flatnonzero(expected[1]).tolist()
    kept = np.flatnonzero(got[1]).tolist()
    assert raw[0] == 40 and len(raw) > 3 and kept == [40, 45]  # 41-44: the 4 rows held off after 40; 48: 3 after 45
    state = held.state_dict()
    copy = anomaly.HoldOff(anomaly.WindowedGaussian(window=50, threshold=3.0, min_history=10), rows=4)
    copy.load_state_dict(state)
    assert [copy.score(v) for v in (50.0, 60.0)] == [held.score(v) for v in (50.0, 60.0)]
    with pytest.raises(ValueError, match="rows must be a non-negative integer"):
        anomaly.HoldOff(plain, rows=-1)


def test_the_default_detector_is_the_likelihood_with_a_hold_off():
    config = anomaly.RNNDetectorConfig()
    assert config.threshold == "likelihood" and config.hold_off == 50
    detector = anomaly.RNNDetector(config)
    threshold = detector.threshold()
    assert isinstance(threshold, anomaly.HoldOff) and isinstance(threshold.threshold, anomaly.AnomalyLikelihood)
    assert isinstance(anomaly.RNNDetector(anomaly.RNNDetectorConfig(hold_off=0)).threshold(), anomaly.AnomalyLikelihood)
    with pytest.raises(ValueError, match="likelihood threshold settings: short must be at most window"):
        anomaly.RNNDetectorConfig(likelihood=anomaly.LikelihoodThresholdConfig(short=20, window=10))


# --- a bounded score beside the raw one, and the hold-off without a run directory (issue 15) -----


def test_bounded_scores_are_a_monotone_map_onto_the_unit_interval():
    z = np.array([0.0, 1.0, 4.0, 9.262, 1e6, np.inf, np.nan])
    gaussian = anomaly.WindowedGaussian(threshold=4.0)
    bounded = gaussian.bounded(z)
    np.testing.assert_allclose(bounded[:5], z[:5] / (z[:5] + 4.0))
    assert bounded[2] == 0.5 and bounded[5] == 1.0 and np.isnan(bounded[6])
    assert np.all(np.diff(bounded[:6]) > 0)  # strictly increasing: a z of 9 is still told from one of 20
    ratio = np.array([0.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(anomaly.DynamicThreshold().bounded(ratio), [0.0, 1 / 3, 0.5, 0.75])
    likelihood = anomaly.AnomalyLikelihood()
    np.testing.assert_array_equal(likelihood.bounded([0.0, 0.3, 1.0]), [0.0, 0.3, 1.0])  # already in [0, 1]
    np.testing.assert_array_equal(anomaly.HoldOff(gaussian, 5).bounded(z[:3]), bounded[:3])
    # 0.5 is where the method flags: a Gaussian's flags are its points with a bounded score >= 0.5
    values = _sine(400, seed=3)
    values[[150, 300]] += 4.0
    scorer = anomaly.WindowedGaussian(window=100, threshold=3.0)
    scores, flags = anomaly.score_all(scorer, values)
    assert flags.sum() >= 2 and (scores > 2.0).sum() > flags.sum()  # points on both sides of 0.5
    np.testing.assert_array_equal(flags, scorer.bounded(scores) >= 0.5)


def _spikes_csv(tmp_path):
    import pandas as pd

    values = _sine(1000)
    values[[700, 720, 800]] += 5.0  # two events 20 rows apart, one 100 rows later
    path = tmp_path / "spikes.csv"
    pd.DataFrame({"timestamp": pd.date_range("2020-01-01", periods=1000, freq="h"), "value": values}).to_csv(path, index=False)
    return path, values


def test_detect_without_a_run_directory_holds_off_as_a_trained_detector(tmp_path, monkeypatch, capsys):
    import io

    from rnnkit.cli import main

    path, values = _spikes_csv(tmp_path)
    raw = np.flatnonzero(anomaly.score_all(anomaly.WindowedGaussian(threshold=4.0), values)[1]).tolist()
    assert {700, 720, 800} <= set(raw)
    flagged = {}
    for extra in ([], ["--hold-off", "0"], ["--hold-off", "30"]):
        capsys.readouterr()
        assert main(["detect", "--data", str(path), *extra]) == 0
        rows = [line.split(",") for line in capsys.readouterr().out.splitlines()]
        assert rows[0] == ["timestamp", "value", "score", "anomaly_score", "anomaly"]
        bounded = np.array([float(r[3]) for r in rows[1:]])
        np.testing.assert_allclose(bounded, [float(r[2]) / (float(r[2]) + 4.0) for r in rows[1:]], atol=1e-4)
        flagged[" ".join(extra)] = [i for i, r in enumerate(rows[1:]) if r[4] == "1"]
    assert flagged[""] == [700, 800]  # 720 is held off: within 50 rows of 700, the trained detector's default
    assert flagged["--hold-off 0"] == raw and flagged["--hold-off 30"] == [700, 800]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(repr(float(v)) for v in values) + "\n"))
    assert main(["detect"]) == 0
    streamed = [i for i, line in enumerate(capsys.readouterr().out.splitlines()[1:]) if line.endswith(",1")]
    assert streamed == [700, 800]
    assert main(["detect", "--data", str(path), "--hold-off", "-1"]) == 2
    assert "hold_off must be at least 0" in capsys.readouterr().err


class _Replay:
    """A threshold that flags what it is told to (the flags of a mask, in order)."""

    missing = 0

    def __init__(self, mask):
        self._flags = iter(mask.tolist())

    def score(self, value):
        return value, next(self._flags)


def test_the_nab_benchmark_holds_flags_off_as_hold_off_does():
    """benchmarks/nab.py's held() is a numpy twin of HoldOff, for its threshold sweep: the two agree."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "nab.py"
    spec = importlib.util.spec_from_file_location("nab_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)  # defines its functions; main() runs only as a script
    rng = np.random.default_rng(0)
    for trial in range(300):
        n, rows = int(rng.integers(0, 120)), int(rng.choice([0, 1, 2, 5, 50]))
        mask = rng.random(n) < rng.choice([0.02, 0.2, 0.7])
        if trial % 7 == 0 and n > 3:
            mask[: n // 2] = True  # a long event: one flag, then the held-off rows
        expected = anomaly.score_all(anomaly.HoldOff(_Replay(mask), rows), np.zeros(n))[1]
        np.testing.assert_array_equal(benchmark.held(mask, rows), expected, err_msg=f"rows={rows}, mask={mask}")


def test_multi_step_prediction_errors_by_hand():
    """Malhotra et al. 2015's several-steps-ahead errors: x_t's error is the mean over horizons k of
    |x_t - the prediction of x_t made k + 1 steps before|, over the predictions there are."""
    rng = np.random.default_rng(0)
    x, predicted, earlier = rng.normal(size=6), rng.normal(size=(6, 3)), rng.normal(size=(2, 3))
    rows = np.concatenate([earlier, predicted])  # rows[i] was made after reading the value before x's (i - 2)th
    expected = []
    for t in range(6):
        made = [(k, 2 + t - 1 - k) for k in range(3) if 2 + t - 1 - k >= 0]
        expected.append(np.mean([abs(x[t] - rows[i, k]) for k, i in made]))
    np.testing.assert_allclose(anomaly.prediction_errors(x, predicted, earlier), expected, rtol=1e-12)
    cold = anomaly.prediction_errors(x[:3], predicted[:3], np.empty((0, 3)))  # a stream's start
    assert np.isnan(cold[0]) and cold[1] == abs(x[1] - predicted[0, 0])
    assert cold[2] == pytest.approx((abs(x[2] - predicted[1, 0]) + abs(x[2] - predicted[0, 1])) / 2)
    one = anomaly.prediction_errors(x, predicted[:, :1], earlier[-1:, :1])  # horizon 1: |x_t - prediction_t|
    np.testing.assert_array_equal(one, np.abs(x - np.concatenate([earlier[-1:, 0], predicted[:-1, 0]])))
    inputs, targets = anomaly.next_value_chunks(np.arange(20.0), chunk=4, horizon=3)
    assert inputs.shape == (4, 4, 1) and targets.shape == (4, 4, 3)  # the last 3 values are only targets
    assert targets[1, 2].tolist() == [7.0, 8.0, 9.0] and inputs[1, 2, 0] == 6.0
    with pytest.raises(ValueError, match="horizon must be an integer"):
        anomaly.RNNDetectorConfig(horizon=0)
