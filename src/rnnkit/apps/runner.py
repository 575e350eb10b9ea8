"""Training an app: settings from defaults, a config file and dotted overrides; then every stage of an app.

Settings have three sections -- ``task`` (the app's dataclass), ``model`` (the model shape's
dataclass, minus what the app fixes, such as input and output sizes) and ``train``
(:class:`~rnnkit.training.TrainConfig`). Everything lands in the run directory's
``config.json``, from which ``--resume`` continues. :func:`train_app` then runs the stages of
the :class:`~rnnkit.apps.base.App` contract: prepare, fit, finalize, evaluate (saved as the app's
``results_file``), figures (saved under ``plots/``), report.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write_text, check_file_record, file_record, read_json, run_file, save_figure, write_json
from ..config import apply_overrides, describe, from_dict, merge_settings, read_config_file, to_dict
from ..models import MODELS, model_spec
from ..training import CheckpointManager, Trainer, TrainConfig, TrainResult
from ..training.trainer import already_complete
from .base import App, Run, finite, newest_checkpoint

RESUMABLE_CHANGES = ("train.max_epochs", "train.max_steps", "train.max_minutes")


@dataclass
class Outcome:
    result: TrainResult
    run_dir: Path
    report: str
    results: dict[str, Any] = field(default_factory=dict)  # what evaluate returned


def _check_app(app: object) -> App:
    if not isinstance(app, App):
        raise TypeError(f"app must be an rnnkit.apps.App (one of rnnkit.apps.APPS), got {type(app).__name__}")
    return app


def compose_settings(app: App, config_file: str | Path | None, overrides: list[str]) -> dict[str, Any]:
    app = _check_app(app)
    settings = {
        "task": to_dict(app.config_class()),
        "model": dict(app.default_model),
        "train": {**to_dict(TrainConfig()), **app.default_train},
    }
    if config_file is not None:
        for section, values in read_config_file(config_file).items():
            if section not in settings:
                raise ValueError(f"unknown section {section!r} in {config_file}: expected task, model or train")
            settings[section] = merge_settings(settings[section], values, section)
    for text in overrides:
        section = text.split(".", 1)[0]
        if section not in settings or "." not in text.split("=", 1)[0]:
            raise ValueError(f"an override must look like task.NAME=VALUE, model.NAME=VALUE or train.NAME=VALUE, got {text!r}")
    return apply_overrides(settings, overrides)


def settings_help(app: App) -> str:
    """The settings ``rnnkit train NAME`` takes, each with its default for this app and its type:
    what ``rnnkit train NAME --help`` prints."""
    app = _check_app(app)
    sections = (
        ("task", app.config_class, {}),
        ("model", MODELS[app.model_name].config_class, app.default_model),
        ("train", TrainConfig, app.default_train),
    )
    rows = [row for section, cls, values in sections for row in describe(cls, values, f"{section}.")]
    width = max(len(name) + len(value) for name, value, _ in rows) + 8
    lines = [f"  --{name}={value}".ljust(width) + f" {kind}" for name, value, kind in rows]
    options = [name for name, _, _ in rows if name.endswith(".options")]
    if options:  # a free-form mapping: say what goes in it
        lines.append(f"\n{options[0]} takes the layer's keyword options, one at a time: e.g."
                     f" --{options[0]}.layer_norm=true --{options[0]}.zoneout=0.1 (see help(rnnkit.LSTM))")
    return "\n".join(lines)


def _record_data_files(app: App, task: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task settings with every input file (``app.files``) made absolute, so that a run
    resumed, or used, from another directory reads the same file; and a record of each (path,
    size, sha256) for config.json, against which ``--resume`` and the app's commands check it."""
    task, records = dict(task), {}
    for setting in app.files:
        value = task.get(setting)
        if value is None:
            continue
        path = Path(str(value)).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"task.{setting}: data file {path} does not exist")
        task[setting] = str(path.resolve())
        records[setting] = file_record(path)
    return task, records


def train_app(
    app: App,
    *,
    config_file: str | Path | None = None,
    overrides: list[str] = (),
    values: dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> Outcome:
    """Train an app (an :class:`App`: one of :data:`rnnkit.apps.APPS`, or your own) and run its
    later stages; with ``resume``, continue the interrupted run in ``run_dir``
    (:func:`rnnkit.apps.train.train` takes an app's name, or finds it in the run directory).

    ``overrides`` are ``section.name=value`` strings (values read as YAML scalars); ``values``
    maps dotted settings to values taken as they are (file names from ``--data``). A resumed run
    whose training is done (no limit raised) is not trained again: only the stages after
    training run, so an interrupted ``finalize`` completes.
    """
    app = _check_app(app)
    overrides = list(overrides)
    values = dict(values or {})
    name = app.name
    if resume:
        if run_dir is None:
            raise ValueError("--resume needs --run-dir: the run directory to continue")
        if not (Path(run_dir) / "config.json").is_file():
            raise ValueError(f"nothing to resume in {run_dir}: it has no config.json from an earlier run")
        saved = read_json(run_file(run_dir, "config.json"))
        if name != saved.get("task_name"):
            raise ValueError(f"{run_dir} holds a {saved.get('task_name')!r} run, got task {name!r}")
        changed = [o for o in overrides if o.split("=", 1)[0] not in RESUMABLE_CHANGES] + list(values)
        if config_file is not None or changed:
            raise ValueError(
                f"a resumed run keeps its settings; only {', '.join(RESUMABLE_CHANGES)} may change, got {changed or config_file}"
            )
        settings = apply_overrides(
            {"task": saved["task"], "model": saved["model_settings"], "train": saved["train"]}, overrides
        )
        data_files = saved.get("data_files", {})
        for setting, record in data_files.items():  # the files it trained on, unchanged, before any is read
            check_file_record(record, f"task.{setting}")
    else:
        settings = compose_settings(app, config_file, overrides)
        for key, value in values.items():
            section, *path = key.split(".")
            node = settings[section]
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
        settings["task"], data_files = _record_data_files(app, settings["task"])
    config = from_dict(app.config_class, settings["task"], where="task")
    train_config = from_dict(TrainConfig, settings["train"], where="train")
    if run_dir is None:
        run_dir = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(run_dir)

    # --- prepare: data, model, batches; the run directory's own files ---
    torch.manual_seed(train_config.seed)  # the model's initial weights
    prepared = app.prepare(config, settings["model"], train_config.seed)
    for file, content in prepared.artifacts.items():
        if not (resume and (run_dir / file).exists()):
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / file, content)
    run = Run(app, run_dir, config, settings["model"], train_config, prepared=prepared, quiet=quiet)

    # --- fit; a resumed run whose training is done (by its limits now) goes on to the stages after it ---
    if resume:  # what a killed save left behind goes first, in one line, not a warning on every read
        removed = CheckpointManager(run_dir, mode=train_config.monitor_mode).remove_leftovers()
        if removed and not quiet:
            print(f"removed {len(removed)} partial checkpoint(s) left by an interrupted save in {run_dir / 'checkpoints'}",
                  file=sys.stderr)  # fmt: skip
    finished = newest_checkpoint(run_dir, train_config) if resume else None
    if finished is not None and finished.finished and (run_dir / "model.safetensors").is_file():
        prepared.model.load_state_dict(finished.model_state)  # the model as training left it
        run.result = finished.result
        if not quiet:
            print(already_complete(run_dir, finished.result.steps, finished.result.stopped_by), file=sys.stderr)
    else:
        trainer = Trainer(
            prepared.model,
            prepared.objective,
            train_config,
            run_dir,
            model_spec=model_spec(prepared.model),
            # the model's own validated config: a resumed run rebuilds exactly this model
            extra_config={"task_name": name, "task": to_dict(config), "model_settings": to_dict(prepared.model.config),
                          "data_files": data_files},
            quiet=quiet,
            unit=prepared.unit,
            resume_hint=f"rnnkit train --run-dir {run_dir} --resume",
        )
        run.result = trainer.fit(prepared.train, prepared.val, resume=resume)
        run.trained = True

    # --- the stages after training ---
    app.finalize(run)
    results = app.evaluate(run)
    if results:
        write_json(run_dir / app.results_file, finite(results))
    for file, figure in app.figures(run, results).items():
        save_figure(figure, run_dir / "plots" / file, bbox_inches="tight")
    return Outcome(run.result, run_dir, app.report(run, results), results)
