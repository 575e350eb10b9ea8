"""`rnnkit train detect` and `rnnkit detect RUN_DIR`; Hundman et al.'s dynamic threshold."""

from __future__ import annotations

import io
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.apps import anomaly

pd = pytest.importorskip("pandas")


def _series(n=600, seed=0, spike=None):
    rng = np.random.default_rng(seed)
    values = np.sin(2 * np.pi * np.arange(n) / 25) + 0.05 * rng.normal(size=n)
    if spike is not None:
        values[spike : spike + 3] += 4.0
    return values


def _write(path, values, times=None):
    times = pd.date_range("2021-01-01", periods=len(values), freq="h") if times is None else times
    pd.DataFrame({"time": times, "y": values}).to_csv(path, index=False)
    return path


TINY = ["--quiet", "--time-column", "time", "--target", "y", "--model.encoder.hidden_size=8", "--task.chunk=40",
        "--task.batch_size=4", "--train.lr=1e-2", "--task.dynamic.window=300", "--task.dynamic.refit_every=20",
        "--task.dynamic.min_history=40", "--task.threshold=dynamic", "--task.hold_off=0"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A detector trained from the command line in a second or two."""
    root = tmp_path_factory.mktemp("detect")
    data = _write(root / "train.csv", _series())
    run_dir = root / "run"
    assert main(["train", "detect", "--data", str(data), "--run-dir", str(run_dir), "--train.max_epochs=25", *TINY]) == 0
    return run_dir


def test_train_writes_a_run_directory(run):
    for name in ("config.json", "model.safetensors", "metrics.jsonl", "summary.md", "detector.json",
                 "plots/loss.png", "plots/detections.png"):  # fmt: skip
        assert (run / name).is_file(), name
    saved = json.loads((run / "detector.json").read_text())
    assert saved["train_rows"] == 480 and saved["rows"] == 600  # the last 20% held out
    assert saved["scoring"]["threshold"] == "dynamic" and saved["scoring"]["dynamic"]["window"] == 300
    assert saved["errors"]["validation"]["count"] == 120 and saved["errors"]["validation"]["mean"] > 0
    assert abs(saved["center"]) < 0.1 and 0.6 < saved["scale"] < 0.8  # sine: mean 0, std 1/sqrt(2)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    validation = [r["val_loss"] for r in records if r.get("split") == "val"]
    assert len(validation) == 25 and validation[-1] < 0.5 * validation[0]  # it learned the sine
    assert not list(run.rglob("*.pt")) and not list(run.rglob("*.pkl"))


def test_detect_a_file_from_the_run_directory(run, tmp_path, capsys):
    data = _write(tmp_path / "new.csv", _series(seed=5, spike=400))
    capsys.readouterr()
    assert main(["detect", str(run), "--data", str(data)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "time,value,score,anomaly_score,anomaly" and len(lines) == 601
    flagged = [i for i, line in enumerate(lines[1:]) if line.endswith(",1")]
    assert flagged and all(399 <= i <= 420 for i in flagged), flagged
    assert (run / "detections.png").stat().st_size > 1000 and "flagged" in captured.err


def test_detect_streams_standard_input_like_the_file(run, monkeypatch, capsys):
    values = _series(seed=5, spike=400)
    detector = anomaly.RNNDetector.load(run)
    batch, batch_flags = detector.batch_scores(values)
    lines = [repr(float(v)) for v in values] + ["oops", "", "nan", "0.5"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    capsys.readouterr()
    assert main(["detect", str(run)]) == 0
    captured = capsys.readouterr()
    rows = [line.split(",") for line in captured.out.splitlines()]
    assert rows[0] == ["value", "score", "anomaly_score", "anomaly"] and len(rows) == 605
    streamed = np.array([float(r[1]) for r in rows[1:601]])
    np.testing.assert_allclose(streamed, batch, rtol=1e-3, atol=1e-3)  # printed to 4 decimals
    assert [int(r[3]) for r in rows[1:601]] == batch_flags.astype(int).tolist()
    assert rows[601:604] == [["oops", "nan", "nan", "0"], ["", "nan", "nan", "0"], ["nan", "nan", "nan", "0"]]
    assert math.isfinite(float(rows[604][1]))  # the scorer kept running
    assert "line 601 is not a number" in captured.err


def test_dynamic_threshold_streaming_equals_batch(run):
    detector = anomaly.RNNDetector.load(run)
    assert detector.config.threshold == "dynamic"
    values = _series(n=900, seed=7, spike=650)
    batch, batch_flags = detector.batch_scores(values)
    streamed, stream_flags = anomaly.score_all(detector.scorer(), values)
    np.testing.assert_allclose(streamed, batch, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(stream_flags, batch_flags)
    assert batch_flags[650:670].any()


@pytest.mark.parametrize("method", ["likelihood", "dynamic", "gaussian"])
def test_detect_prints_a_bounded_score_beside_the_raw_one(run, tmp_path, capsys, method):
    """Issue 15, item 5: every method's score also as a monotone map onto [0, 1] (anomaly_score)."""
    data = _write(tmp_path / "new.csv", _series(seed=5, spike=400))
    capsys.readouterr()
    assert main(["detect", str(run), "--data", str(data), "--threshold-method", method, "--hold-off", "0"]) == 0
    rows = [line.split(",") for line in capsys.readouterr().out.splitlines()[1:]]
    scores, bounded = np.array([float(r[2]) for r in rows]), np.array([float(r[3]) for r in rows])
    assert 0.0 <= bounded.min() and bounded.max() <= 1.0 and bounded.max() > 0.5
    expected = {"likelihood": scores, "dynamic": scores / (scores + 1.0),
                "gaussian": scores / (scores + anomaly.RNNDetector.load(run).config.gaussian.z)}[method]
    np.testing.assert_allclose(bounded, expected, atol=1e-4)
    if method != "likelihood":  # 0.5 is the method's threshold: nothing is flagged below it
        assert all(b >= 0.5 for b, r in zip(bounded, rows) if r[4] == "1")


def test_load_picks_another_threshold_and_rejects_unknown_ones(run):
    gaussian = anomaly.RNNDetector.load(run, threshold="gaussian")
    assert isinstance(gaussian.scorer()._threshold, anomaly.WindowedGaussian)
    with pytest.raises(ValueError, match="threshold must be one of 'gaussian', 'dynamic'"):
        anomaly.RNNDetector.load(run, threshold="median")


# --- the warm start: a new series is judged from its first point ----------------------------------


def _flagged_rows(out):
    return [i for i, line in enumerate(out.splitlines()[1:]) if line.endswith(",1")]


def test_detect_flags_a_spike_at_the_start_of_a_new_file(run, tmp_path, capsys):
    data = _write(tmp_path / "early.csv", _series(seed=5, spike=12))
    capsys.readouterr()
    assert main(["detect", str(run), "--data", str(data)]) == 0
    flagged = _flagged_rows(capsys.readouterr().out)
    # flagged at once, and the LSTM's start from a zero state (larger errors for a few points) is not
    assert flagged and flagged[0] == 12 and all(12 <= i <= 30 for i in flagged), flagged
    # a cold threshold (as before the warm start) cannot flag it: it fits first after min_history = 40
    cold = anomaly.RNNDetector.load(run, warm_start=False)
    assert not cold.batch_scores(_series(seed=5, spike=12))[1][:40].any()


@pytest.mark.parametrize("threshold", ["dynamic", "gaussian"])
def test_warm_streaming_equals_batch(run, threshold):
    detector = anomaly.RNNDetector.load(run, threshold=threshold)
    values = _series(n=500, seed=8, spike=5)
    batch, batch_flags = detector.batch_scores(values)
    streamed, stream_flags = anomaly.score_all(detector.scorer(), values)
    np.testing.assert_allclose(streamed, batch, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(stream_flags, batch_flags)
    assert batch[0] == 0 and not batch_flags[0]  # the first value has no prediction
    assert batch_flags[5:10].any() and not batch_flags[:5].any()
    # a stream stopped and resumed inside the spike continues as the whole one (warm state included)
    first = detector.scorer()
    anomaly.score_all(first, values[:7])
    resumed = detector.scorer()
    resumed.load_state_dict(first.state_dict())
    rest = anomaly.score_all(resumed, values[7:])
    np.testing.assert_allclose(rest[0], streamed[7:], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(rest[1], stream_flags[7:])


def test_warm_start_round_trips_through_the_run_directory(run):
    text = (run / "detector.json").read_text()
    assert len(text.splitlines()) < 80  # the errors on one line, the rest readable
    saved = json.loads(text)["warm_start"]["errors"]
    # the validation tail (rows 480..599) scored as a new file is: from a zero state, its first row unscored
    cold = anomaly.RNNDetector.load(run, warm_start=False)
    assert cold.warm_errors is None
    np.testing.assert_allclose(saved, cold.smoothed_errors(_series()[480:])[1:], rtol=1e-6, atol=1e-9)
    detector = anomaly.RNNDetector.load(run)
    np.testing.assert_array_equal(detector.warm_errors, np.array(saved))
    threshold = detector.threshold()
    assert threshold.epsilon == pytest.approx(anomaly.select_epsilon(np.array(saved), threshold.z_values)[0])


def test_an_old_run_directory_starts_cold_with_a_warning(run, tmp_path, monkeypatch, capsys):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(run, old)
    saved = json.loads((old / "detector.json").read_text())
    del saved["warm_start"], saved["scoring"]["hold_off"], saved["scoring"]["online"]  # as written before they existed
    (old / "detector.json").write_text(json.dumps(saved, indent=1))
    data = _write(tmp_path / "early.csv", _series(seed=5, spike=12))
    capsys.readouterr()
    with pytest.warns(UserWarning, match="no warm_start errors .* flags nothing in the first 40 points"):
        assert main(["detect", str(old), "--data", str(data)]) == 0
    rows = [line.split(",") for line in capsys.readouterr().out.splitlines()[1:]]
    cold = anomaly.RNNDetector.load(run, warm_start=False)
    cold.config = replace(cold.config, online=anomaly.OnlineConfig(every=0))
    scores, flags = cold.batch_scores(_series(seed=5, spike=12))
    np.testing.assert_allclose([float(r[2]) for r in rows], scores, atol=1e-4)  # as a cold start scores it
    assert [r[4] == "1" for r in rows] == flags.tolist() and not flags[:40].any()
    with pytest.warns(UserWarning):
        loaded = anomaly.RNNDetector.load(old).config
    assert loaded.hold_off == 0 and loaded.online.every == 0  # it flagged every point and never learned then
    monkeypatch.setattr("sys.stdin", io.StringIO("1.0\n2.0\n"))
    with pytest.warns(UserWarning, match="no warm_start errors"):
        assert main(["detect", str(old)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["1.0,0.0000,0.0000,0", "2.0,0.0000,0.0000,0"]


def test_resume_continues_the_run(tmp_path):
    data = _write(tmp_path / "train.csv", _series())
    run_dir = tmp_path / "run"
    assert main(["train", "detect", "--data", str(data), "--run-dir", str(run_dir), "--train.max_epochs=2", *TINY]) == 0
    first = json.loads((run_dir / "checkpoints" / "best.json").read_text())
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--train.max_epochs=4", "--quiet"]) == 0
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 4 * 3  # 480 training rows: 11 chunks of 40, 3 batches of 4 per epoch
    assert json.loads((run_dir / "checkpoints" / "best.json").read_text()) != first


# --- the dynamic threshold --------------------------------------------------------------------------


def _reference_epsilon(e, z_values):
    """Hundman et al. 2018, section 3.2.2, written out plainly."""
    mu, sigma = e.mean(), e.std()
    best, chosen = -np.inf, z_values[-1]
    for z in z_values:
        eps = mu + z * sigma
        anomalous = e > eps
        if not anomalous.any():
            continue
        sequences = sum(1 for i in range(len(e)) if anomalous[i] and (i == 0 or not anomalous[i - 1]))
        rest = e[~anomalous]
        value = ((mu - rest.mean()) / mu + (sigma - rest.std()) / sigma) / (anomalous.sum() + sequences**2)
        if value >= best:
            best, chosen = value, z
    return mu + chosen * sigma


def test_select_epsilon_matches_the_paper_formula():
    rng = np.random.default_rng(3)
    z_values = np.arange(2.5, 10.01, 0.5)
    for _ in range(20):
        e = np.abs(rng.normal(size=400))
        e[rng.integers(0, 400, size=3)] += rng.uniform(2, 8, size=3)
        epsilon, z = anomaly.select_epsilon(e, z_values)
        assert epsilon == pytest.approx(_reference_epsilon(e, z_values))
        assert epsilon == pytest.approx(e.mean() + z * e.std())
    flat = np.ones(50)
    assert anomaly.select_epsilon(flat, z_values) == (1.0, 10.0)  # sigma 0: nothing to choose


@pytest.mark.parametrize("maxima, nominal, expected", [
    ([10.0, 5.0, 4.9], 4.5, [True, False, False]),  # 10 -> 5 is a 50% drop; 5 -> 4.9 -> 4.5 are small
    ([4.9, 10.0, 5.0], 4.5, [False, True, False]),  # the same, in another order
    ([10.0, 5.0, 4.8], 1.0, [True, True, True]),  # the drop to the nominal errors keeps them all
    ([10.0, 9.5, 9.0], 8.5, [False, False, False]),  # no decrease reaches 13%: all nominal
    ([10.0, 10.0, 2.0], 1.9, [True, True, False]),  # equal maxima share a fate
    ([], 3.0, []),
])  # fmt: skip
def test_pruning_by_hand(maxima, nominal, expected):
    assert anomaly.prune_sequences(maxima, nominal, 0.13).tolist() == expected


def _errors(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    e = np.abs(rng.normal(0.3, 0.1, size=n))
    e[600:605] += 3.0  # a clear anomaly
    return e


def test_dynamic_threshold_refits_over_its_window():
    t = anomaly.DynamicThreshold(window=200, refit_every=50, min_history=100)
    e = _errors()
    for count, value in enumerate(e[:725], 1):
        t.score(value)
        if count == 99:
            assert t.epsilon is None  # nothing before min_history
    # refits at 100, 150, ..., 700: the last over errors 500..699
    assert t.epsilon == pytest.approx(anomaly.select_epsilon(e[500:700], t.z_values)[0])


def test_dynamic_threshold_flags_the_anomaly_alone():
    scores, flags = anomaly.score_all(anomaly.DynamicThreshold(window=500, refit_every=50), _errors())
    assert np.flatnonzero(flags).tolist() == [600, 601, 602, 603, 604]
    assert scores[600] > 1 > np.median(scores[100:])


@pytest.mark.parametrize("prune, expected", [(0.13, [False, False, True, False, False]),
                                             (0.0, [True, False, True, False, True])])  # fmt: skip
def test_dynamic_threshold_prunes_a_run_barely_above_the_nominal_errors(prune, expected):
    # z fixed at 2: epsilon = 1.05 + 2 * 0.05 = 1.15 over errors 1.0, 1.1, ...; the nominal max is 1.1
    t = anomaly.DynamicThreshold(window=200, refit_every=200, z_min=2, z_max=2, prune=prune)
    for value in [1.0, 1.1] * 100:
        t.score(value)
    assert t.epsilon == pytest.approx(1.15)
    scores, flags = anomaly.score_all(t, [1.2, 1.0, 1.5, 1.0, 1.2])
    # 1.2 is 8% above 1.1: pruned (p = 0.13) unless p = 0; 1.5 is 27% above: kept; a later 1.2
    # opens a new run, which is pruned again
    assert scores[0] == pytest.approx(1.2 / 1.15)
    assert flags.tolist() == expected
    grown = anomaly.score_all(t, [1.2, 1.5])[1]  # a run that grows past the cut is kept from then on
    assert grown.tolist() == [prune == 0, True]


def test_dynamic_threshold_state_round_trip_mid_stream():
    e = _errors(seed=1)
    whole = anomaly.score_all(anomaly.DynamicThreshold(window=300, refit_every=40), e)
    first = anomaly.DynamicThreshold(window=300, refit_every=40)
    anomaly.score_all(first, e[:602])  # stops inside the anomaly and between refits
    state = first.state_dict()
    resumed = anomaly.DynamicThreshold(window=300, refit_every=40)
    resumed.load_state_dict(state)
    rest = anomaly.score_all(resumed, e[602:])
    np.testing.assert_array_equal(rest[0], whole[0][602:])
    np.testing.assert_array_equal(rest[1], whole[1][602:])
    with pytest.raises(ValueError, match="window"):
        anomaly.DynamicThreshold(window=100, refit_every=40).load_state_dict(state)


def test_rnn_scorer_state_round_trip_with_the_dynamic_threshold(run):
    detector = anomaly.RNNDetector.load(run)
    values = _series(n=400, seed=9, spike=300)
    expected = anomaly.score_all(detector.scorer(), values)
    first = detector.scorer()
    anomaly.score_all(first, values[:301])
    resumed = detector.scorer()
    resumed.load_state_dict(first.state_dict())
    rest = anomaly.score_all(resumed, values[301:])
    np.testing.assert_allclose(rest[0], expected[0][301:], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(rest[1], expected[1][301:])


def test_dynamic_threshold_missing_values_and_bad_settings():
    t = anomaly.DynamicThreshold(window=50, refit_every=10)
    for value in [1.0, 1.2, 0.9, 1.1] * 5:
        t.score(value)
    assert t.score(math.nan)[0] != t.score(math.nan)[0] and t.missing == 2  # nan, nan
    assert t.score(math.inf) == (pytest.approx(math.nan, nan_ok=True), False) and t.missing == 3
    assert math.isfinite(t.score(1.0)[0])
    with pytest.raises(ValueError, match="min_history"):
        anomaly.DynamicThreshold(window=10, refit_every=20)
    with pytest.raises(ValueError, match="prune"):
        anomaly.DynamicThreshold(prune=1.5)
    with pytest.raises(TypeError, match="value"):
        t.score("1.0")


# --- bad input: one line, exit 2 -------------------------------------------------------------------


def _fails(capsys, argv, *needles):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


def test_bad_input_is_one_line(run, tmp_path, capsys):
    train = ["train", "detect", "--run-dir", str(tmp_path / "never"), *TINY]
    _fails(capsys, [*train, "--data", str(tmp_path / "missing.csv")], "missing.csv does not exist")
    _fails(capsys, ["train", "detect", "--run-dir", str(tmp_path / "never"), "--quiet"], "needs --data")
    values = _series(n=200)
    cells = [f"{v:.4f}" for v in values]
    cells[50] = "high"
    text = _write(tmp_path / "text.csv", cells)
    _fails(capsys, [*train, "--data", str(text)], "non-numeric value 'high'", "row 51")
    times = list(pd.date_range("2021-01-01", periods=200, freq="h"))
    times[10], times[11] = times[11], times[10]
    _fails(capsys, [*train, "--data", str(_write(tmp_path / "unsorted.csv", values, times))], "sorted")
    times[10] = times[9]
    duplicate = str(_write(tmp_path / "duplicate.csv", values, times))
    _fails(capsys, ["detect", str(run), "--data", duplicate, "--duplicates", "error"], "duplicate timestamp",
           "a policy for them")  # fmt: skip
    short = _write(tmp_path / "short.csv", _series(n=60))
    _fails(capsys, [*train, "--data", str(short)], "too short", "60 rows")
    _fails(capsys, ["detect", "--data", str(short), "--detector", "lstm", "--time-column", "time", "--target", "y"],
           "too short")  # fmt: skip
    _fails(capsys, ["detect", str(run), "--data", str(text)], "non-numeric")
    _fails(capsys, ["detect", str(run), "--data", str(tmp_path / "missing.csv")], "does not exist")
    _fails(capsys, ["detect", str(tmp_path / "nowhere")], "does not exist")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text("{}")
    _fails(capsys, ["detect", str(tmp_path / "other"), "--data", str(short)], "not a detect run directory")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "detector.json").write_text("{}")
    (tmp_path / "broken" / "model.safetensors").write_text("")
    _fails(capsys, ["detect", str(tmp_path / "broken")], "not a detector file")
    _fails(capsys, ["detect", str(run), "--detector", "lstm"], "--detector applies without RUN_DIR")
    _fails(capsys, ["detect", "--detector", "lstm"], "needs training first")
    _fails(capsys, [*train, "--data", str(short), "--task.threshold=median"], "threshold must be one of")
    _fails(capsys, [*train, "--data", str(short), "--task.dynamic.min_history=500"], "dynamic threshold settings",
           "min_history must be at most window=300")  # fmt: skip
    header_only = tmp_path / "header.csv"
    header_only.write_text("time,y\n")
    _fails(capsys, ["detect", str(run), "--data", str(header_only)], "has a header but no rows")
    _fails(capsys, ["detect", str(run), "--data", str(short), "--plot", str(tmp_path / "no" / "dir" / "x.png")],
           "--plot", "does not exist")  # fmt: skip
    assert not (tmp_path / "no").exists()  # no directory made for a mistyped path
    _fails(capsys, ["detect", str(run), "--data", str(short), "--plot", str(tmp_path)], "must name a file")


def test_stdin_with_a_byte_order_mark_or_binary_data(run, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("\ufeff1.5\n2.5\n".encode())))
    capsys.readouterr()
    assert main(["detect", str(run)]) == 0
    rows = [line.split(",") for line in capsys.readouterr().out.splitlines()]
    assert [r[0] for r in rows[1:]] == ["1.5", "2.5"]  # the mark is not part of the first reading
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"1.0\n\x00\x01\xff\n")))
    _fails(capsys, ["detect", str(run)], "standard input line 2 looks binary")


def test_lines_that_arrived_together_come_as_one_batch():
    import os

    from rnnkit.data.textfiles import text_line_batches

    read, write = os.pipe()
    with os.fdopen(read, "r") as stream, os.fdopen(write, "wb", buffering=0) as producer:
        batches = text_line_batches(stream)
        producer.write(b"\xef\xbb\xbf1.0\n2.0\r\n3")  # a burst, its last line unfinished
        assert next(batches) == ["1.0\n", "2.0\r\n"]
        producer.write(b".5\n")
        assert next(batches) == ["3.5\n"]  # a lone line is not held back waiting for more
        producer.write(b"4\n\x005\n6\n")
        assert next(batches) == ["4\n"]  # the good lines first, then the error, as text_lines has it
        with pytest.raises(ValueError, match="standard input line 5 looks binary"):
            next(batches)
    assert list(text_line_batches(io.StringIO("1\n2"))) == [["1\n"], ["2"]]  # no bytes under it: one a batch
    # an unfinished last line is only known to be one at the end
    assert list(text_line_batches(io.TextIOWrapper(io.BytesIO(b"1\n\n2")))) == [["1\n", "\n"], ["2"]]


def test_stdin_scored_in_batches_prints_what_one_line_at_a_time_prints(run, monkeypatch, capsys):
    values = _series(n=400, seed=6, spike=250)
    lines = [repr(float(v)) for v in values[:200]] + ["oops", ""] + [repr(float(v)) for v in values[200:]]
    text = "\n".join(lines) + "\n"
    sizes = []
    score_many = anomaly.RNNScorer.score_many
    monkeypatch.setattr(anomaly.RNNScorer, "score_many", lambda self, v: sizes.append(len(v)) or score_many(self, v))
    outputs = []
    for stdin in (io.StringIO(text), io.TextIOWrapper(io.BytesIO(text.encode()))):  # one line a batch; all at once
        monkeypatch.setattr("sys.stdin", stdin)
        capsys.readouterr()
        assert main(["detect", str(run)]) == 0
        outputs.append(capsys.readouterr())
    assert max(sizes[:402]) == 1 and sizes[402:] == [402]
    one, batched = ([line.split(",") for line in o.out.splitlines()] for o in outputs)
    assert len(one) == len(batched) == 403 and [r[0] for r in one] == [r[0] for r in batched]
    np.testing.assert_allclose([float(r[1]) for r in batched[1:]], [float(r[1]) for r in one[1:]], atol=2e-4)
    assert [r[-1] for r in batched] == [r[-1] for r in one] and "1" in [r[-1] for r in one[251:270]]
    assert outputs[0].err == outputs[1].err and "line 201 is not a number" in outputs[1].err


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_rnn_scorer_state_round_trip_for_any_cell(cell):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    detector = anomaly.RNNDetector(anomaly.RNNDetectorConfig(threshold="dynamic"))
    detector.model = anomaly.next_value_model({"encoder": {"cell": cell, "hidden_size": 4, "num_layers": 2}}).eval()
    values = _series(n=200, seed=4)
    expected = anomaly.score_all(detector.scorer(), values)
    first = detector.scorer()
    anomaly.score_all(first, values[:90])
    resumed = detector.scorer()
    resumed.load_state_dict(first.state_dict())
    np.testing.assert_allclose(anomaly.score_all(resumed, values[90:])[0], expected[0][90:], rtol=1e-6, atol=1e-7)


# --- gaps in a regular series ----------------------------------------------------------------


def test_find_gaps_in_a_regular_series():
    from rnnkit.apps.anomaly import find_gaps

    times = pd.date_range("2021-01-01", periods=50, freq="5min").delete([10, 11, 12, 30])
    gaps, cadence = find_gaps(times)
    assert cadence == pd.Timedelta(minutes=5)
    assert gaps == [(pd.Timestamp("2021-01-01 00:50"), 3), (pd.Timestamp("2021-01-01 02:30"), 1)]
    assert find_gaps(pd.Index(np.delete(np.arange(0, 100, 2), [5])))[0] == [(10, 1)]  # numeric time
    irregular = pd.DatetimeIndex(pd.Timestamp("2021-01-01") + pd.to_timedelta(np.cumsum(np.arange(1, 40)), "s"))
    assert find_gaps(irregular) == ([], None)


def _gappy_file(path):
    times = pd.date_range("2021-01-01", periods=600, freq="h")
    keep = np.ones(600, dtype=bool)
    keep[[200, 201, 202, 350]] = False
    return _write(path, _series(seed=5, spike=400)[keep], times[keep])


GAP_WARNINGS = ["3 reading(s) missing from 2021-01-09 08:00:00 (one every h); scored as missing",
                "1 reading(s) missing from 2021-01-15 14:00:00 (one every h); scored as missing"]  # fmt: skip


def test_a_gap_is_reported_and_scored_as_missing(run, tmp_path, capsys):
    data = _gappy_file(tmp_path / "gappy.csv")
    columns = ["--time-column", "time", "--target", "y"]
    for command in (["detect", str(run), "--data", str(data), "--gaps", "fill"],
                    ["detect", "--data", str(data), *columns, "--gaps", "fill"]):  # fmt: skip
        capsys.readouterr()
        with pytest.warns(RuntimeWarning) as warned:
            assert main(command) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 601  # the 4 missing hours are back, as rows
        assert lines[201] == "2021-01-09 08:00:00,,,,0" and lines[351].startswith("2021-01-15 14:00:00,,,")
        assert sum(",,," in line for line in lines) == 4
        assert [str(w.message) for w in warned if "missing" in str(w.message)] == [f"{data}: {m}" for m in GAP_WARNINGS]
    flagged = [i for i, line in enumerate(lines[1:]) if line.endswith(",1")]
    assert flagged and all(399 <= i <= 420 for i in flagged), flagged  # the scorer kept running past the gaps


def test_warnings_print_as_one_line_each(tmp_path):
    import subprocess
    import sys

    data = _gappy_file(tmp_path / "gappy.csv")
    result = subprocess.run([sys.executable, "-m", "rnnkit.cli", "detect", "--data", str(data), "--time-column", "time",
                             "--target", "y", "--gaps", "fill"],
                            capture_output=True, text=True, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert result.returncode == 0
    assert result.stderr.splitlines() == [f"rnnkit: warning: {data}: {m}" for m in GAP_WARNINGS]


def test_online_adaptation_streams_as_it_batches_and_learns_the_new_level():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    online = anomaly.OnlineConfig(every=30, window=120, steps=10, lr=3e-2)
    values = np.concatenate([_series(n=150, seed=4), _series(n=150, seed=5) + 3.0])  # the level moves at 150
    scores = {}
    for every in (0, 30):
        detector = anomaly.RNNDetector(anomaly.RNNDetectorConfig(threshold="gaussian", online=replace(online, every=every)))
        detector.model = anomaly.next_value_model({"encoder": {"cell": "lstm", "hidden_size": 4}}).eval()
        torch.manual_seed(1)
        detector.model.load_state_dict(anomaly.next_value_model({"encoder": {"cell": "lstm", "hidden_size": 4}}).state_dict())
        before = {k: v.clone() for k, v in detector.model.state_dict().items()}
        batch, batch_flags = detector.batch_scores(values)
        scorer = detector.scorer()
        streamed, stream_flags = anomaly.score_all(scorer, values[:200])
        state = scorer.state_dict()
        resumed = detector.scorer()
        resumed.load_state_dict(state)
        rest, rest_flags = anomaly.score_all(resumed, values[200:])
        np.testing.assert_allclose(np.concatenate([streamed, rest]), batch, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(np.concatenate([stream_flags, rest_flags]), batch_flags)
        for k, v in detector.model.state_dict().items():  # every stream learns on its own copy
            torch.testing.assert_close(v, before[k])
        scores[every] = detector.smoothed_errors(values)
    assert scores[0][:30] == pytest.approx(scores[30][:30])  # the same until the first update
    assert scores[30][250:].mean() < 0.5 * scores[0][250:].mean()  # after the move it has learned the new level
    for bad, message in (({"every": -1}, "every must be"), ({"lr": 0.0}, "lr must be"), ({"window": 1}, "window must be")):
        with pytest.raises(ValueError, match=f"online adaptation settings: {message}"):
            anomaly.OnlineConfig(**bad)


@pytest.mark.parametrize("every", [0, 30])
def test_score_many_equals_score_and_batch(run, every):
    """Issue 15, item 4: values scored in chunks (a file, lines that arrived together) through the
    sequence forward with the carried state give what stepping gives, online updates included."""
    detector = anomaly.RNNDetector.load(run)
    detector.config = replace(detector.config, online=anomaly.OnlineConfig(every=every, window=100, steps=2, lr=3e-2))
    values = _series(n=500, seed=11, spike=320)
    batch, batch_flags = detector.batch_scores(values)
    stepper = detector.scorer()
    stepped, step_flags = anomaly.score_all(stepper, values)
    chunked = detector.scorer()
    sizes = np.random.default_rng(every).integers(1, 75, size=40)  # across update boundaries, a lone value now and then
    cuts = np.cumsum(sizes)[np.cumsum(sizes) < len(values)]
    parts = [chunked.score_many(part) if len(part) > 1 else chunked.score(float(part[0]))
             for part in np.split(values, cuts)]  # fmt: skip
    scores = np.concatenate([np.atleast_1d(p[0]) for p in parts])
    flags = np.concatenate([np.atleast_1d(p[1]) for p in parts])
    for got, got_flags in ((stepped, step_flags), (scores, flags)):
        np.testing.assert_allclose(got, batch, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(got_flags, batch_flags)
    assert batch_flags[320:340].any()
    if every:  # the chunked stream learned what the stepped one did, on the same values
        learned = chunked._model.state_dict()
        for name, value in stepper._model.state_dict().items():
            np.testing.assert_array_equal(learned[name].numpy(), value.numpy(), err_msg=name)
        assert not np.array_equal(learned["head.weight"].numpy(), detector.model.state_dict()["head.weight"].numpy())
    # missing readings inside a chunk: stepped alone, as score() steps them
    holes = values.copy()
    holes[[0, 1, 60, 61, 62, 299]] = np.nan
    expected = anomaly.score_all(detector.scorer(), holes)
    got = detector.scorer().score_many(holes)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_allclose(detector.score_series(holes)[0], expected[0], rtol=1e-4, atol=1e-5)
    with pytest.raises(TypeError, match="real numbers"):
        detector.scorer().score_many(["1.0", "2.0"])
    with pytest.raises(ValueError, match="1-D"):
        detector.scorer().score_many(np.zeros((2, 3)))


def test_multi_step_errors_stream_chunk_and_batch_alike(tmp_path, capsys):
    """Issue 15, item 2: the predictor predicts several steps ahead (Malhotra et al. 2015), online
    adaptation included; streaming, chunks and batch still agree, and a run trains and scores with it."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    detector = anomaly.RNNDetector(anomaly.RNNDetectorConfig(
        threshold="gaussian", horizon=3, online=anomaly.OnlineConfig(every=30, window=100, steps=2, lr=3e-2)))  # fmt: skip
    detector.model = anomaly.next_value_model({"encoder": {"cell": "lstm", "hidden_size": 6}}, horizon=3).eval()
    values = _series(n=400, seed=12, spike=250)
    batch, batch_flags = detector.batch_scores(values)
    stepper = detector.scorer()
    stepped = anomaly.score_all(stepper, values[:170])
    resumed = detector.scorer()
    resumed.load_state_dict(stepper.state_dict())  # stopped between two online updates
    rest = [resumed.score_many(values[i : i + 45]) for i in range(170, 400, 45)]
    scores = np.concatenate([stepped[0], *[r[0] for r in rest]])
    np.testing.assert_allclose(scores, batch, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.concatenate([stepped[1], *[r[1] for r in rest]]), batch_flags)
    single = anomaly.RNNDetector(replace(detector.config, horizon=1))
    single.model = anomaly.next_value_model({"encoder": {"cell": "lstm", "hidden_size": 6}}).eval()
    with pytest.raises(ValueError, match="horizon is 1"):
        single.scorer().load_state_dict(stepper.state_dict())
    first, whole = single.scorer(), anomaly.score_all(single.scorer(), values)  # a state saved before the horizon
    anomaly.score_all(first, values[:50])
    old = first.state_dict()
    old["prediction"] = old.pop("predictions")[-1][0]
    again = single.scorer()
    again.load_state_dict(old)
    np.testing.assert_array_equal(anomaly.score_all(again, values[50:])[0], whole[0][50:])
    holes = values.copy()
    holes[[0, 100, 101, 102]] = np.nan
    np.testing.assert_allclose(detector.scorer().score_many(holes)[0], anomaly.score_all(detector.scorer(), holes)[0],
                               rtol=1e-4, atol=1e-5)  # fmt: skip
    # from the command line: --task.horizon, saved with the run and read back by rnnkit detect
    data = _write(tmp_path / "train.csv", _series())
    run_dir = tmp_path / "run"
    assert main(["train", "detect", "--data", str(data), "--run-dir", str(run_dir), "--train.max_epochs=3",
                 *TINY, "--task.horizon=3"]) == 0  # fmt: skip
    assert json.loads((run_dir / "detector.json").read_text())["scoring"]["horizon"] == 3
    loaded = anomaly.RNNDetector.load(run_dir)
    assert loaded.config.horizon == 3 and loaded.model.config.outputs == 3
    capsys.readouterr()
    assert main(["detect", str(run_dir), "--data", str(_write(tmp_path / "new.csv", _series(seed=5)))]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 601


def test_by_default_the_output_keeps_the_input_rows_one_for_one(run, tmp_path, capsys):
    """Issue 15, item 5: a gap no longer adds rows, and repeated timestamps are scored as rows."""
    data = _gappy_file(tmp_path / "gappy.csv")
    with pytest.warns(RuntimeWarning, match="not filled"):
        assert main(["detect", str(run), "--data", str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 597 and lines[201].startswith("2021-01-09 11:00:00,")  # 596 rows in, 596 out
    values = _series(n=300)
    times = list(pd.date_range("2021-01-01", periods=300, freq="h"))
    times[100] = times[99]
    repeated = _write(tmp_path / "repeated.csv", values, times)
    outputs = {}
    for policy in ("keep", "first", "last", "mean"):
        with pytest.warns(RuntimeWarning, match="1 row\\(s\\) repeat an earlier timestamp"):
            assert main(["detect", str(run), "--data", str(repeated), "--duplicates", policy]) == 0
        outputs[policy] = capsys.readouterr().out.splitlines()[1:]
    assert len(outputs["keep"]) == 300 and outputs["keep"][99].split(",")[0] == outputs["keep"][100].split(",")[0]
    assert all(len(outputs[p]) == 299 for p in ("first", "last", "mean"))
    row = {p: float(outputs[p][99].split(",")[1]) for p in ("first", "last", "mean")}
    assert row["first"] == pytest.approx(values[99], abs=1e-4) and row["last"] == pytest.approx(values[100], abs=1e-4)
    assert row["mean"] == pytest.approx((values[99] + values[100]) / 2, abs=1e-4)
