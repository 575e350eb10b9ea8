"""A run directory from someone else: every value checked before anything is allocated, nothing
read from outside it or through a link, and a diverged run refused -- each in one line.

Issue 13, items 2 and 6-9. A run directory is an input like any other file: a config.json that asks
for a 640 GB model, weights of the wrong shape or holding NaN, a 2-symbol tokenizer, a detector
whose scale is 0 or whose window asks for 7 TiB, a data path naming a file of yours, or a symlink
among its checkpoints must each end in ``rnnkit: error: ...`` and exit 2, promptly.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from rnnkit.cli import main

pd = pytest.importorskip("pandas")

PLAY = ("ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east.\n\n") * 30
TEXT = ["--model.encoder.hidden_size=8", "--model.encoder.num_layers=1", "--task.bptt=16", "--task.batch_size=4",
        "--task.sample_length=10", "--train.warmup_steps=0", "--train.max_epochs=1", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    (root / "play.txt").write_text(PLAY, encoding="utf-8")
    assert main(["train", "text", "--data", str(root / "play.txt"), "--run-dir", str(root / "run"), *TEXT]) == 0
    return root / "run"


def copy_of(run, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(run, target, symlinks=True)
    return target


def fails(capsys, argv, *needles):
    started = time.perf_counter()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: ") and err.count("\n") == 1, err  # one line, no traceback
    for needle in needles:
        assert needle in err, err
    assert time.perf_counter() - started < 30  # refused before anything large is allocated or trained
    return err


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_a_config_asking_for_a_huge_model_is_refused_before_allocating(text_run, tmp_path, capsys):
    run = copy_of(text_run, tmp_path)
    edit_json(run / "config.json", lambda c: c["model"]["config"]["encoder"].update(hidden_size=200_000))
    fails(capsys, ["generate", str(run), "--length", "5"], "does not fit the model in config.json")


def test_weights_of_the_wrong_shape_are_one_line(text_run, tmp_path, capsys):
    run = copy_of(text_run, tmp_path)
    weights = load_file(run / "model.safetensors")
    name = next(n for n in weights if n.endswith("weight_hh_l0"))
    weights[name] = torch.zeros(weights[name].shape[0], weights[name].shape[1] + 1)
    save_file(weights, run / "model.safetensors")
    fails(capsys, ["generate", str(run), "--length", "5"], name, "has shape")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_that_diverged_are_refused(text_run, tmp_path, capsys, value):
    run = copy_of(text_run, tmp_path)
    weights = load_file(run / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name].clone().fill_(value)
    save_file(weights, run / "model.safetensors")
    for argv in (["generate", str(run), "--length", "5"], ["generate", str(run), "--length", "5", "--temperature", "0"]):
        fails(capsys, argv, "non-finite weights", name)


def test_a_tokenizer_that_is_not_the_models_is_refused(text_run, tmp_path, capsys):
    run = copy_of(text_run, tmp_path)
    (run / "tokenizer.json").write_text(json.dumps({"kind": "char", "symbols": ["a", "b"]}))
    fails(capsys, ["generate", str(run), "--length", "5"], "tokenizer is not the model's")


def test_a_symlink_in_the_run_directory_is_refused(text_run, tmp_path, capsys):
    run = copy_of(text_run, tmp_path)
    outside = tmp_path / "elsewhere.json"
    shutil.move(run / "tokenizer.json", outside)
    os.symlink(outside, run / "tokenizer.json")
    fails(capsys, ["generate", str(run), "--length", "5"], "symbolic link")


def test_a_symlinked_checkpoint_is_never_loaded_on_resume(text_run, tmp_path, capsys):
    """A checkpoint that is a link to one outside the run (here: another run's) is skipped with a
    warning naming it, and nothing else being usable, resume says so."""
    run = copy_of(text_run, tmp_path)
    other = copy_of(text_run, tmp_path / "other")
    checkpoints = run / "checkpoints"
    for step in checkpoints.glob("step-*"):
        shutil.rmtree(step)
    for step in (other / "checkpoints").glob("step-*"):
        os.symlink(step, checkpoints / step.name)
    with pytest.warns(UserWarning, match="symbolic link"):
        fails(capsys, ["train", "--run-dir", str(run), "--resume", "--quiet", "--train.max_epochs=2"], "no usable checkpoint")


def test_a_checkpoint_whose_optimizer_state_does_not_fit_is_one_line(text_run, tmp_path, capsys):
    from rnnkit.training.checkpoint import CheckpointManager

    run = copy_of(text_run, tmp_path)
    checkpoint = CheckpointManager(run).load_latest()
    state = checkpoint.optimizer_state
    index = next(i for i, s in state["state"].items() if "exp_avg" in s)
    state["state"][index]["exp_avg"] = torch.zeros(3, 3, 3)
    for step in (run / "checkpoints").glob("step-*"):
        shutil.rmtree(step)
    CheckpointManager(run).save(checkpoint.step, model_state=checkpoint.model_state, optimizer_state=state,
                                scheduler_state=checkpoint.scheduler_state, scaler_state=checkpoint.scaler_state,
                                trainer_state=checkpoint.trainer_state, extra_tensors=checkpoint.extra_tensors,
                                rng_state=checkpoint.rng_state)  # fmt: skip
    fails(capsys, ["train", "--run-dir", str(run), "--resume", "--quiet", "--train.max_epochs=2"], "exp_avg", "shape")


# --- detector.json -----------------------------------------------------------------------------
def series_csv(path, n=400):
    import numpy as np

    t = pd.date_range("2021-01-01", periods=n, freq="h")
    values = np.sin(np.arange(n) / 4) + 0.05 * np.random.default_rng(0).normal(size=n)
    pd.DataFrame({"timestamp": t, "value": values}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def detect_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("detect")
    data = series_csv(root / "train.csv")
    assert main(["train", "detect", "--data", str(data), "--run-dir", str(root / "run"), "--quiet",
                 "--model.encoder.hidden_size=4", "--task.chunk=40", "--train.max_epochs=2",
                 "--task.dynamic.window=200", "--task.dynamic.min_history=40"]) == 0  # fmt: skip
    return root / "run", data


@pytest.mark.parametrize("change, needle", [
    (lambda d: d.update(scale=0), "positive scale"),
    (lambda d: d.update(center=float("nan")), "finite"),
    (lambda d: d["scoring"]["dynamic"].update(window=10**12), "at most"),
    (lambda d: d["scoring"]["gaussian"].update(window=10**12), "at most"),
    (lambda d: d["scoring"]["dynamic"].update(z_step=1e-9), "z_step"),
])  # fmt: skip
def test_detector_settings_are_bounded_before_allocating(detect_run, tmp_path, capsys, change, needle):
    run = copy_of(detect_run[0], tmp_path)
    edit_json(run / "detector.json", change)
    fails(capsys, ["detect", str(run), "--data", str(detect_run[1])], needle)


# --- data paths ----------------------------------------------------------------------------------
def test_relative_data_works_from_another_directory_and_only_the_recorded_file_is_read(tmp_path, capsys, monkeypatch):
    """Issue 13, items 8 and 9: --data given relative is stored absolute with its size and sha256;
    forecasting from the training series and --resume work from any directory, and read nothing
    but that file -- a config.json naming another file of yours is refused without reading it."""
    import numpy as np

    home = tmp_path / "project"
    home.mkdir()
    t = pd.date_range("2000-01", periods=60, freq="MS")
    y = 10 + np.sin(np.arange(60) * np.pi / 6) + 0.1 * np.random.default_rng(0).normal(size=60)
    pd.DataFrame({"date": t, "y": y}).to_csv(home / "sales.csv", index=False)
    monkeypatch.chdir(home)
    assert main(["train", "forecast", "--data", "sales.csv", "--time-column", "date", "--target", "y", "--horizon", "3",
                 "--task.test_size=6", "--task.baselines=false", "--task.calibrate=false", "--train.max_epochs=1",
                 "--model.encoder.hidden_size=4", "--run-dir", "run", "--quiet"]) == 0  # fmt: skip
    config = json.loads((home / "run" / "config.json").read_text())
    assert config["task"]["data"] == str(home / "sales.csv")
    assert config["data_files"]["data"]["sha256"] and config["data_files"]["data"]["bytes"] > 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)  # somewhere else
    assert main(["forecast", str(home / "run")]) == 0
    assert capsys.readouterr().out.startswith("date,mean,lower,upper")
    assert main(["train", "--run-dir", str(home / "run"), "--resume", "--quiet", "--train.max_epochs=2"]) == 0
    capsys.readouterr()

    secret = tmp_path / "secret.csv"
    secret.write_text("date,y\nTOP-SECRET,1\n")
    for file in ("config.json", "forecast.json"):
        edit_json(home / "run" / file, lambda c: (c.get("task", c.get("config", {})).update(data=str(secret)),
                                                   c.get("data_files", {}).get("data", {}).update(path=str(secret))))  # fmt: skip
    err = fails(capsys, ["forecast", str(home / "run")], "not the file the run trained on")
    assert "TOP-SECRET" not in err
    err = fails(capsys, ["train", "--run-dir", str(home / "run"), "--resume", "--quiet", "--train.max_epochs=3"],
                "not the file the run trained on")  # fmt: skip
    assert "TOP-SECRET" not in err
