"""``rnnkit train``: settings, one-line errors, an interrupted run and its resumption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rnnkit.cli import main

TINY = ["--task.length=8", "--task.train_size=64", "--task.val_size=32", "--task.batch_size=16",
        "--model.encoder.hidden_size=8", "--train.max_epochs=2"]  # fmt: skip


def test_train_writes_a_run_and_reports(tmp_path, capsys):
    code = main(["train", "adding", *TINY, "--model.encoder.cell", "gru", "--run-dir", str(tmp_path / "run"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "adding problem T=8: validation MSE" in out and "run directory" in out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["task_name"] == "adding" and config["model"]["config"]["encoder"]["cell"] == "gru"
    assert config["task"]["length"] == 8 and config["train"]["max_epochs"] == 2
    for name in ("model.safetensors", "metrics.jsonl", "summary.md", "plots/loss.png"):
        assert (tmp_path / "run" / name).exists(), name


def test_overrides_are_typed_by_their_setting(tmp_path):
    from rnnkit.config import apply_overrides, from_dict
    from rnnkit.apps.text import TextConfig
    from rnnkit.training import TrainConfig

    train = from_dict(TrainConfig, apply_overrides({}, ["lr=3e-3", "max_steps=null", "clip_norm=2", "deterministic=false"]))
    assert (train.lr, train.max_steps, train.clip_norm, train.deterministic) == (3e-3, None, 2.0, False)
    text = from_dict(TextConfig, apply_overrides({}, ["sample_prime=ROMEO:", "data=2024.txt", "tokenizer=bpe"]))
    assert (text.sample_prime, text.data, text.tokenizer) == ("ROMEO:", "2024.txt", "bpe")


def test_hyphens_in_a_setting_name_are_underscores_and_values_keep_theirs():
    """``--task.source-column=en-GB`` sets ``task.source_column``; the value keeps its hyphen."""
    from rnnkit.cli import _split_overrides

    overrides, rest = _split_overrides(["--task.source-column=en-GB", "--train.max-steps", "3", "--quiet"])
    assert overrides == ["task.source_column=en-GB", "train.max_steps=3"] and rest == ["--quiet"]


def test_layer_options_from_the_command_line_are_typed(tmp_path):
    """``--model.encoder.options.layer_norm=true`` reaches the layer as a bool, not the text 'true'."""
    from rnnkit.config import apply_overrides, from_dict
    from rnnkit.models._parts import EncoderConfig

    encoder = from_dict(EncoderConfig, apply_overrides({}, ["options.layer_norm=true", "options.zoneout=0.1"]))
    assert encoder.options == {"layer_norm": True, "zoneout": 0.1}


def test_help_after_a_task_lists_its_settings_and_defaults(capsys):
    assert main(["train", "text", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: rnnkit train" in out and "settings of text" in out
    for line in ("--task.tokenizer=char", "--model.encoder.hidden_size=512", "--train.lr=0.002",
                 "--train.precision=fp32", '--task.sample_prime="\\n"'):  # fmt: skip
        assert line in out, line
    assert "fp32|bf16|fp16" in out


def test_help_without_a_task_lists_the_tasks(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "tasks:" in out and "settings of" not in out


def test_copy_task_and_a_yaml_settings_file(tmp_path, capsys):
    settings = tmp_path / "settings.yaml"
    settings.write_text("task:\n  lag: 5\n  train_size: 64\n  val_size: 32\nmodel:\n  encoder:\n    hidden_size: 8\n"
                        "train:\n  max_epochs: 1\n")  # fmt: skip
    code = main(["train", "copy", "--config", str(settings), "--run-dir", str(tmp_path / "run"), "--quiet"])
    assert code == 0 and "copy memory lag=5" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--train.lrr=1"], "unknown setting train.lrr"),
        (["--train.lr=fast"], "train.lr must be a number, got str 'fast'"),
        (["--model.encoder.cell=lstmm"], "cell must be one of"),
        (["--model.encoder.options.zonout=0.1"], "unknown option 'zonout' for a 'lstm' layer (did you mean 'zoneout'?)"),
        (["--model.encoder.options.layer_norm=maybe"], "layer_norm must be True or False, got str 'maybe'"),
        (["--task.length=1"], "length must be an integer >= 2"),
        (["--optimizer.lr=1"], "an override must look like task.NAME=VALUE"),
        (["--resume"], "nothing to resume in"),
        (["--config", "missing.yaml"], "config file missing.yaml does not exist"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_settings_give_one_line_and_exit_2(tmp_path, capsys, args, message):
    code = main(["train", "adding", *TINY, "--run-dir", str(tmp_path / "run"), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_resume_needs_a_run_directory(capsys):
    assert main(["train", "--resume"]) == 2
    assert "--resume needs --run-dir" in capsys.readouterr().err


def test_overrides_rejected_where_a_command_takes_none(capsys):
    assert main(["demo", "--train.lr=1"]) == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_interrupted_run_resumes_from_the_command_line(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "rnnkit.cli", "train", "adding", "--task.length=10", "--task.train_size=20000",
               "--task.batch_size=16", "--model.encoder.hidden_size=8", "--train.max_epochs=1",
               "--train.log_every=5", "--run-dir", str(run)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().count("\n") >= 2):
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted by SIGINT" in err and "resume with: rnnkit train --run-dir" in err
    assert "Traceback" not in err
    stopped = int(err.split(" at step ")[1].split(":")[0])  # however far it got before the signal
    target = stopped + 20
    resumed = subprocess.run(command[:4] + ["--run-dir", str(run), "--resume", "--quiet", f"--train.max_steps={target}"],
                             capture_output=True, text=True, env=env, timeout=180)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"{target} steps" in resumed.stdout
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == target  # no step logged twice after the resume


def test_resuming_a_finished_run_from_the_command_line_says_already_complete(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "adding", *TINY, "--run-dir", str(run), "--quiet"]) == 0
    weights = (run / "model.safetensors").read_bytes()
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    capsys.readouterr()
    assert main(["train", "--run-dir", str(run), "--resume"]) == 0
    captured = capsys.readouterr()
    assert "is already complete: 8 steps, stopped by max_epochs; nothing was trained" in captured.err
    assert "8 steps in" in captured.out
    assert (run / "model.safetensors").read_bytes() == weights
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == checkpoints


def test_yaml_numbers_are_read_as_yaml_1_2_reads_them(tmp_path):
    """``lr: 3e-3`` is a float (PyYAML's YAML 1.1 makes it the string '3e-3'); ints stay ints,
    quoted text stays text."""
    from rnnkit.config import read_config_file

    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: 3e-3\n  min_lr: 1E-5\n  max_steps: 12\ntask:\n  name: '3e-3'\n  ratio: .5\n")
    data = read_config_file(path)
    assert data["train"] == {"lr": 0.003, "min_lr": 1e-5, "max_steps": 12}
    assert isinstance(data["train"]["max_steps"], int)
    assert data["task"] == {"name": "3e-3", "ratio": 0.5}


def test_a_yaml_learning_rate_in_exponent_form_trains(tmp_path, capsys):
    settings = tmp_path / "settings.yaml"
    settings.write_text("train:\n  lr: 3e-3\n  max_epochs: 1\n")
    assert main(["train", "adding", *TINY[:-1], "--config", str(settings), "--run-dir", str(tmp_path / "run"),
                 "--quiet"]) == 0  # fmt: skip
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["lr"] == 0.003


def test_a_single_sigterm_checkpoints_and_exits_143(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "rnnkit.cli", "train", "adding", "--task.length=10", "--task.train_size=20000",
               "--task.batch_size=16", "--model.encoder.hidden_size=8", "--train.max_epochs=1",
               "--train.log_every=5", "--run-dir", str(run)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").exists():
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "checkpoint saved" in err and "Traceback" not in err
    assert list((run / "checkpoints").glob("step-*"))


def test_the_forecast_baselines_show_progress_while_they_refit(monkeypatch):
    pytest.importorskip("statsmodels")
    import numpy as np
    import pandas as pd

    import importlib

    from rnnkit.apps.forecast.config import ForecastConfig
    from rnnkit.apps.forecast.data import fit_scaler, resolve
    from rnnkit.apps.forecast.model import forecast_model

    t = np.arange(72)
    frame = pd.DataFrame({"y": 10 + np.sin(2 * np.pi * t / 12) + 0.01 * t})
    config = ForecastConfig(horizon=3, lookback=12, test_size=12, season=12)
    setup = resolve(frame, config, "series")
    scaler = fit_scaler(setup, setup.train_end)
    module = importlib.import_module("rnnkit.apps.forecast.backtest")  # the package exports the function
    monkeypatch.setattr(module, "PROGRESS_EVERY", 0.0)  # a line after every origin
    lines = []
    module.backtest(forecast_model(config, 1, {"encoder": {"hidden_size": 4}}), setup, scaler, progress=lines.append)
    assert lines[0] == "backtest: fitting ETS at each of 10 origins"
    assert any(line.startswith("backtest: ETS 5/10 origins") and "eta" in line for line in lines)
    assert any(line.startswith("backtest: ARIMA done in") for line in lines)
    assert not any("naive" in line for line in lines)
