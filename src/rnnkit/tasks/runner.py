"""``rnnkit train``: settings from defaults, a config file and dotted overrides; then the trainer.

Settings have three sections -- ``task`` (the task's dataclass), ``model`` (the model shape's
dataclass, minus what the task fixes, such as input and output sizes) and ``train``
(:class:`~rnnkit.training.TrainConfig`). Everything lands in the run directory's
``config.json``, from which ``--resume`` continues.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write_text, read_json
from ..config import apply_overrides, describe, from_dict, merge_settings, read_config_file, to_dict
from ..models import model_spec
from ..models._registry import MODELS
from ..training import Trainer, TrainConfig, TrainResult
from ._registry import get_task

RESUMABLE_CHANGES = ("train.max_epochs", "train.max_steps", "train.max_minutes")


@dataclass
class Outcome:
    result: TrainResult
    run_dir: Path
    report: str


def compose_settings(task_name: str, config_file: str | Path | None, overrides: list[str]) -> dict[str, Any]:
    task = get_task(task_name)
    settings = {
        "task": to_dict(task.config_class()),
        "model": dict(task.default_model),
        "train": {**to_dict(TrainConfig()), **task.default_train},
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


def settings_help(task_name: str) -> str:
    """The settings ``rnnkit train TASK`` takes, each with its default for this task and its type:
    what ``rnnkit train TASK --help`` prints."""
    task = get_task(task_name)
    sections = (
        ("task", task.config_class, {}),
        ("model", MODELS[task.model_name].config_class, task.default_model),
        ("train", TrainConfig, task.default_train),
    )
    rows = [row for section, cls, values in sections for row in describe(cls, values, f"{section}.")]
    width = max(len(name) + len(value) for name, value, _ in rows) + 8
    lines = [f"  --{name}={value}".ljust(width) + f" {kind}" for name, value, kind in rows]
    options = [name for name, _, _ in rows if name.endswith(".options")]
    if options:  # a free-form mapping: say what goes in it
        lines.append(f"\n{options[0]} takes the layer's keyword options, one at a time: e.g."
                     f" --{options[0]}.layer_norm=true --{options[0]}.zoneout=0.1 (see help(rnnkit.LSTM))")
    return "\n".join(lines)


def train_task(
    task_name: str | None,
    *,
    config_file: str | Path | None = None,
    overrides: list[str] = (),
    values: dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> Outcome:
    """Train a registered task; with ``resume``, continue the interrupted run in ``run_dir``.

    ``overrides`` are ``section.name=value`` strings (values read as YAML scalars); ``values``
    maps dotted settings to values taken as they are (file names from ``--data``).
    """
    overrides = list(overrides)
    values = dict(values or {})
    if resume:
        if run_dir is None:
            raise ValueError("--resume needs --run-dir: the run directory to continue")
        if not (Path(run_dir) / "config.json").is_file():
            raise ValueError(f"nothing to resume in {run_dir}: it has no config.json from an earlier run")
        saved = read_json(Path(run_dir) / "config.json")
        if task_name is not None and task_name != saved.get("task_name"):
            raise ValueError(f"{run_dir} holds a {saved.get('task_name')!r} run, got task {task_name!r}")
        task_name = saved["task_name"]
        changed = [o for o in overrides if o.split("=", 1)[0] not in RESUMABLE_CHANGES] + list(values)
        if config_file is not None or changed:
            raise ValueError(
                f"a resumed run keeps its settings; only {', '.join(RESUMABLE_CHANGES)} may change, got {changed or config_file}"
            )
        settings = apply_overrides(
            {"task": saved["task"], "model": saved["model_settings"], "train": saved["train"]}, overrides
        )
    else:
        if task_name is None:
            raise ValueError("a task name is needed unless --resume continues a run")
        settings = compose_settings(task_name, config_file, overrides)
        for key, value in values.items():
            section, *path = key.split(".")
            node = settings[section]
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
    task = get_task(task_name)
    task_config = from_dict(task.config_class, settings["task"], where="task")
    train_config = from_dict(TrainConfig, settings["train"], where="train")
    if run_dir is None:
        run_dir = Path("runs") / f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(run_dir)

    torch.manual_seed(train_config.seed)  # the model's initial weights
    prepared = task.prepare(task_config, settings["model"], train_config.seed)
    for name, content in prepared.artifacts.items():
        if not (resume and (run_dir / name).exists()):
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / name, content)
    trainer = Trainer(
        prepared.model,
        prepared.objective,
        train_config,
        run_dir,
        model_spec=model_spec(prepared.model),
        # the model's own validated config: a resumed run rebuilds exactly this model
        extra_config={"task_name": task_name, "task": to_dict(task_config), "model_settings": to_dict(prepared.model.config)},
        quiet=quiet,
        unit=prepared.unit,
        resume_hint=f"rnnkit train --run-dir {run_dir} --resume",
    )
    result = trainer.fit(prepared.train, prepared.val, resume=resume)
    return Outcome(result, run_dir, prepared.report(result))
