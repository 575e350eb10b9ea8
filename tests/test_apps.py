"""The application contract: APPS and their commands, the runner's stages on an app written here,
finalize resumed without retraining (forecast, detect), a run rebuilt from its directory, and the
old ``rnnkit.tasks`` paths (importable for one release, with a DeprecationWarning)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass

import pytest
import torch

from rnnkit import cli
from rnnkit.apps import APPS, App, Prepared, Run, get_app
from rnnkit.apps.runner import train_app
from rnnkit.training import SupervisedObjective, TensorBatches


def test_apps_are_listed_once_and_the_command_line_takes_their_commands():
    names = [app.name for app in APPS]
    assert len(set(names)) == len(names) and get_app("text") is APPS[0]
    for app in APPS:
        assert app.help and app.example.startswith(f"rnnkit train {app.name}") and app.config_class() is not None
        for name, command in app.commands().items():
            assert cli.COMMANDS[name] is command
    assert {"demo", "generate", "predict", "forecast", "detect"} <= set(cli.COMMANDS)
    with pytest.raises(ValueError, match="task must be one of 'text', 'classify'"):
        get_app("nope")


def test_importing_the_apps_and_the_command_line_imports_no_optional_dependency():
    code = ("import sys, rnnkit.apps, rnnkit.cli; heavy = {'pandas', 'statsmodels', 'tokenizers', 'matplotlib'};"
            " print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


# --- an app written here, through every stage ----------------------------------------------------


@dataclass(frozen=True)
class MeanConfig:
    length: int = 6


class Mean(App):
    name = "mean"
    help = "predict a sequence's mean"
    example = "rnnkit train mean"
    config_class = MeanConfig
    model_name = "many_to_one"
    default_model = {"encoder": {"cell": "gru", "hidden_size": 4}}
    default_train = {"max_epochs": 2, "lr": 1e-2}

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.finalized = fail, 0

    def prepare(self, config, model_settings, seed):
        x = torch.randn(64, config.length, 1, generator=torch.Generator().manual_seed(seed))  # (N, T, 1)
        y = x.mean((1, 2))  # (N,)
        model = self.build_model({**model_settings, "input": {"features": 1}, "outputs": 1})
        return Prepared(model, SupervisedObjective("mse"), TensorBatches(x, y, batch_size=16, seed=seed),
                        TensorBatches(x[:16], y[:16], batch_size=16, shuffle=False), "sequences",
                        {"mean.json": json.dumps({"length": config.length})}, {"rows": len(x)})  # fmt: skip

    def finalize(self, run):
        path = run.run_dir / "finalized.txt"
        if path.exists() and not run.trained:
            return
        self.finalized += 1
        if self.fail:
            raise RuntimeError("interrupted while finalizing")
        path.write_text("done")

    def evaluate(self, run):
        return {"val_loss": run.result.last_eval["val_loss"], "rows": run.context["rows"], "undefined": float("nan")}

    def figures(self, run, results):
        from matplotlib.figure import Figure

        figure = Figure(figsize=(2, 2))
        figure.subplots().plot([0, 1], [results["val_loss"]] * 2)
        return {"mean.png": figure}

    def report(self, run, results):
        return f"mean of {run.config.length} steps: validation MSE {results['val_loss']:.4f}"


def test_the_runner_runs_every_stage_and_saves_what_they_return(tmp_path):
    run_dir = tmp_path / "run"
    outcome = train_app(Mean(), run_dir=run_dir, quiet=True)
    assert outcome.report.startswith("mean of 6 steps: validation MSE") and outcome.result.steps == 8
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved == {"val_loss": outcome.results["val_loss"], "rows": 64, "undefined": None}  # strict JSON
    assert json.loads((run_dir / "mean.json").read_text()) == {"length": 6}
    assert (run_dir / "plots" / "mean.png").is_file() and (run_dir / "finalized.txt").is_file()
    assert json.loads((run_dir / "config.json").read_text())["task_name"] == "mean"
    assert isinstance(Mean().load(run_dir), torch.nn.Module)

    run = Run.from_dir(run_dir, Mean())  # rebuilt from the directory: prepared again, same figures
    assert run.prepared is None and run.result.steps == 8 and run.result.stopped_by == "max_epochs"
    again = Mean().evaluate(run)
    assert again["val_loss"] == outcome.results["val_loss"] and again["rows"] == 64
    torch.testing.assert_close(run.model().state_dict(), Mean().load(run_dir).state_dict())
    with pytest.raises(ValueError, match="holds a 'mean' run"):
        Run.from_dir(run_dir, get_app("adding"))


def test_an_interrupted_finalize_is_finished_by_resume_without_training(tmp_path):
    run_dir = tmp_path / "run"
    failing = Mean(fail=True)
    with pytest.raises(RuntimeError, match="interrupted while finalizing"):
        train_app(failing, run_dir=run_dir, quiet=True)
    metrics = (run_dir / "metrics.jsonl").read_text()
    app = Mean()
    outcome = train_app(app, run_dir=run_dir, resume=True, quiet=True)
    assert app.finalized == 1 and (run_dir / "finalized.txt").is_file()
    assert (run_dir / "metrics.jsonl").read_text() == metrics and outcome.result.steps == 8  # not trained again
    train_app(app, run_dir=run_dir, resume=True, quiet=True)
    assert app.finalized == 1  # done: finalize does nothing
    more = train_app(app, run_dir=run_dir, resume=True, quiet=True, overrides=["train.max_epochs=3"])
    assert more.result.steps == 12 and app.finalized == 2  # a raised limit trains on, and finalizes again


def test_forecast_calibration_is_finished_by_resume(tmp_path, capsys):
    pytest.importorskip("pandas")
    from test_forecast_intervals import write_series

    from rnnkit.apps.forecast import CALIBRATION_FILE, ForecastRun

    data = write_series(tmp_path / "series.csv")
    run_dir = tmp_path / "run"
    assert cli.main(["train", "forecast", "--data", str(data), "--time-column", "date", "--target", "y", "--horizon", "4",
                     "--task.lookback=12", "--task.test_size=8", "--task.baselines=false", "--train.max_epochs=2",
                     "--model.encoder.hidden_size=4", "--run-dir", str(run_dir), "--quiet"]) == 0  # fmt: skip
    first = capsys.readouterr().out
    calibration, metrics = (run_dir / CALIBRATION_FILE).read_text(), (run_dir / "metrics.jsonl").read_text()
    (run_dir / CALIBRATION_FILE).unlink()  # as if the run had stopped while calibrating
    assert cli.main(["train", "--run-dir", str(run_dir), "--resume", "--quiet"]) == 0
    assert (run_dir / CALIBRATION_FILE).read_text() == calibration
    assert (run_dir / "metrics.jsonl").read_text() == metrics
    assert capsys.readouterr().out.splitlines()[:-1] == first.splitlines()[:-1]  # the same report
    assert isinstance(get_app("forecast").load(run_dir), ForecastRun)
    assert cli.main(["train", "--run-dir", str(run_dir), "--resume", "--quiet", "--train.max_epochs=3"]) == 0
    assert (run_dir / CALIBRATION_FILE).read_text() != calibration  # calibrated again, by a model trained as long


def test_detect_warm_start_is_finished_by_resume(tmp_path):
    pytest.importorskip("pandas")
    from test_detect_command import TINY, _series, _write

    from rnnkit.apps.anomaly import DETECTOR_FILE, RNNDetector

    data = _write(tmp_path / "train.csv", _series())
    run_dir = tmp_path / "run"
    assert cli.main(["train", "detect", "--data", str(data), "--run-dir", str(run_dir), "--train.max_epochs=2", *TINY]) == 0
    saved = json.loads((run_dir / DETECTOR_FILE).read_text())
    metrics = (run_dir / "metrics.jsonl").read_text()
    (run_dir / DETECTOR_FILE).write_text(json.dumps({k: v for k, v in saved.items()
                                                     if k not in ("errors", "warm_start")}))  # fmt: skip
    assert cli.main(["train", "--run-dir", str(run_dir), "--resume", "--quiet"]) == 0
    assert json.loads((run_dir / DETECTOR_FILE).read_text()) == saved
    assert (run_dir / "metrics.jsonl").read_text() == metrics
    assert isinstance(get_app("detect").load(run_dir), RNNDetector)


# --- the old paths ----------------------------------------------------------------------------------

OLD_PATHS = {
    "rnnkit.tasks": ("adding_problem", "rnnkit.data.synthetic"),
    "rnnkit.tasks.classify": ("Classifier", "rnnkit.apps.classify"),
    "rnnkit.tasks.forecast": ("Forecaster", "rnnkit.apps.forecast"),
    "rnnkit.tasks.anomaly": ("RNNDetector", "rnnkit.apps.anomaly"),
    "rnnkit.tasks.detect": ("detect_csv", "rnnkit.apps.anomaly"),
    "rnnkit.tasks.thresholds": ("DynamicThreshold", "rnnkit.apps.anomaly.thresholds"),
    "rnnkit.tasks.nab": ("score_series", "rnnkit.metrics.nab"),
    "rnnkit.tasks.series": ("Scaler", "rnnkit.data.series"),
    "rnnkit.tasks.tokenizers": ("CharTokenizer", "rnnkit.data.tokenizers"),
    "rnnkit.tasks.textfiles": ("read_text_file", "rnnkit.data.textfiles"),
    "rnnkit.tasks.metrics": ("confusion_matrix", "rnnkit.metrics.classification"),
    "rnnkit.tasks.synthetic": ("copy_memory", "rnnkit.data.synthetic"),
    "rnnkit.tasks.sequences": ("sequence_pairs", "rnnkit.apps.seq2seq"),
    "rnnkit.tasks.tagging": ("read_conll", "rnnkit.apps.tagging"),
    "rnnkit.tasks.text": ("generate_text", "rnnkit.apps.text"),
    "rnnkit.tasks.longrange": ("AddingConfig", "rnnkit.apps.longrange"),
    "rnnkit.tasks.compare": ("format_table", "rnnkit.experiments.compare"),
    "rnnkit.tasks.gradients": ("run_gradients", "rnnkit.experiments.gradients"),
    "rnnkit.tasks.runner": ("Outcome", "rnnkit.apps.runner"),
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_paths_import_and_warn(old, monkeypatch):
    for name in [m for m in sys.modules if m == "rnnkit.tasks" or m.startswith("rnnkit.tasks.")]:
        monkeypatch.delitem(sys.modules, name)  # imported afresh, so the warning is given again
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert any(m.startswith(f"{old} is deprecated") for m in messages), messages
    name, new = OLD_PATHS[old]
    assert getattr(module, name) is getattr(importlib.import_module(new), name)


def test_old_names_that_changed_still_work():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from rnnkit.tasks import TASKS, register_task
        from rnnkit.tasks.compare import DemoConfig, run_demo
        from rnnkit.tasks.forecast import build_model, load_series
        from rnnkit.tasks.runner import train_task
    from rnnkit.apps.forecast import configured_series, forecast_model
    from rnnkit.experiments.compare import CompareConfig, run_compare

    assert TASKS["adding"] is get_app("adding") and list(TASKS) == [app.name for app in APPS]
    from rnnkit.apps.train import train

    assert (DemoConfig, run_demo, build_model, load_series, train_task) == (
        CompareConfig, run_compare, forecast_model, configured_series, train)  # fmt: skip
    with pytest.raises(TypeError, match="add it to rnnkit.apps.APPS"):
        register_task(object())
