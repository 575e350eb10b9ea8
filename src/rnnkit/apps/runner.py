"""``rnnkit train``: settings from defaults, a config file and dotted overrides; then every stage of an app.

Settings have three sections -- ``task`` (the app's dataclass), ``model`` (the model shape's
dataclass, minus what the app fixes, such as input and output sizes) and ``train``
(:class:`~rnnkit.training.TrainConfig`). Everything lands in the run directory's
``config.json``, from which ``--resume`` continues. :func:`train_app` then runs the stages of
the :class:`~rnnkit.apps.base.App` contract: prepare, fit, finalize, evaluate (saved as the app's
``results_file``), figures (saved under ``plots/``), report.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write_text, read_json, save_figure, write_json
from ..config import apply_overrides, describe, from_dict, merge_settings, read_config_file, to_dict
from ..models import MODELS, model_spec
from ..training import Trainer, TrainConfig, TrainResult
from .base import App, Run, finite, newest_checkpoint
from .commands import Command

RESUMABLE_CHANGES = ("train.max_epochs", "train.max_steps", "train.max_minutes")


@dataclass
class Outcome:
    result: TrainResult
    run_dir: Path
    report: str
    results: dict[str, Any] = field(default_factory=dict)  # what evaluate returned


def _app(app: App | str) -> App:
    from . import get_app

    return app if isinstance(app, App) else get_app(app)


def compose_settings(app: App | str, config_file: str | Path | None, overrides: list[str]) -> dict[str, Any]:
    app = _app(app)
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


def settings_help(app: App | str) -> str:
    """The settings ``rnnkit train NAME`` takes, each with its default for this app and its type:
    what ``rnnkit train NAME --help`` prints."""
    app = _app(app)
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


def train_app(
    app: App | str | None,
    *,
    config_file: str | Path | None = None,
    overrides: list[str] = (),
    values: dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> Outcome:
    """Train an app (one of :data:`rnnkit.apps.APPS` by name, or an :class:`App`) and run its
    later stages; with ``resume``, continue the interrupted run in ``run_dir``.

    ``overrides`` are ``section.name=value`` strings (values read as YAML scalars); ``values``
    maps dotted settings to values taken as they are (file names from ``--data``). A resumed run
    whose training is done (no limit raised) is not trained again: only the stages after
    training run, so an interrupted ``finalize`` completes.
    """
    overrides = list(overrides)
    values = dict(values or {})
    name = app.name if isinstance(app, App) else app
    if resume:
        if run_dir is None:
            raise ValueError("--resume needs --run-dir: the run directory to continue")
        if not (Path(run_dir) / "config.json").is_file():
            raise ValueError(f"nothing to resume in {run_dir}: it has no config.json from an earlier run")
        saved = read_json(Path(run_dir) / "config.json")
        if name is not None and name != saved.get("task_name"):
            raise ValueError(f"{run_dir} holds a {saved.get('task_name')!r} run, got task {name!r}")
        name = saved["task_name"]
        changed = [o for o in overrides if o.split("=", 1)[0] not in RESUMABLE_CHANGES] + list(values)
        if config_file is not None or changed:
            raise ValueError(
                f"a resumed run keeps its settings; only {', '.join(RESUMABLE_CHANGES)} may change, got {changed or config_file}"
            )
        settings = apply_overrides(
            {"task": saved["task"], "model": saved["model_settings"], "train": saved["train"]}, overrides
        )
    else:
        if name is None:
            raise ValueError("a task name is needed unless --resume continues a run")
        settings = compose_settings(app if isinstance(app, App) else name, config_file, overrides)
        for key, value in values.items():
            section, *path = key.split(".")
            node = settings[section]
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
    app = app if isinstance(app, App) else _app(name)
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
    run = Run(app, run_dir, config, settings["model"], train_config, prepared=prepared)

    # --- fit; a resumed run whose training is done (by its limits now) goes on to the stages after it ---
    finished = newest_checkpoint(run_dir, train_config) if resume else None
    if finished is not None and finished.finished and (run_dir / "model.safetensors").is_file():
        prepared.model.load_state_dict(finished.model_state)  # the model as training left it
        run.result = finished.result
    else:
        trainer = Trainer(
            prepared.model,
            prepared.objective,
            train_config,
            run_dir,
            model_spec=model_spec(prepared.model),
            # the model's own validated config: a resumed run rebuilds exactly this model
            extra_config={"task_name": name, "task": to_dict(config), "model_settings": to_dict(prepared.model.config)},
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


# -----------------------------------------------------------------------------
# the command: `rnnkit train NAME`


class _TrainHelp(argparse.Action):
    """``--help``: the usage, and after a TASK (``rnnkit train text --help``), that task's settings
    with their defaults."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        task = getattr(namespace, "task", None)
        if task:
            print(f"\nsettings of {task}, with their defaults (set any as --SECTION.NAME=VALUE):")
            print(settings_help(task))
        parser.exit()


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    from . import APPS

    tasks = "\n".join(f"  {app.name:<10} {app.help}" for app in APPS)
    parser.description += f"\n\ntasks:\n{tasks}"
    parser.add_argument("task", nargs="?", choices=[app.name for app in APPS], metavar="TASK",
                        help="what to train (omit with --resume)")
    parser.add_argument("--config", metavar="FILE", help="settings file (YAML or JSON) with task/model/train sections")
    parser.add_argument("--run-dir", metavar="DIR",
                        help="where the run is written (default: runs/TASK-TIMESTAMP)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in --run-dir")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    flags = {}
    for app in APPS:
        for flag, setting in app.arguments.items():
            flags.setdefault(flag, []).append(f"{app.name}: {setting}")
    for flag, uses in flags.items():
        parser.add_argument(flag, dest="task_" + flag.lstrip("-").replace("-", "_"), metavar="VALUE",
                            help="sets " + "; ".join(uses))
    parser.epilog += ("\n\nAny setting can be changed as --SECTION.NAME=VALUE, e.g. --train.lr=3e-3,"
                      " --model.encoder.hidden_size=256, --task.length=200."
                      " 'rnnkit train TASK --help' lists a task's settings and defaults.")


def _train(args: argparse.Namespace) -> int:
    from ..config import RawValue

    values = {}
    for key, value in vars(args).items():
        if key.startswith("task_") and value is not None:
            flag = "--" + key[len("task_"):].replace("_", "-")
            arguments = _app(args.task).arguments if args.task else {}
            if flag not in arguments:
                raise ValueError(f"{flag} is not an option of task {args.task!r}")
            values[arguments[flag]] = RawValue(value)  # typed by the setting: --horizon 12 is an int
    outcome = train_app(args.task, config_file=args.config, overrides=args.overrides, values=values,
                        run_dir=args.run_dir, resume=args.resume, quiet=args.quiet)  # fmt: skip
    result = outcome.result
    if outcome.report:
        print(outcome.report)
    print(f"{result.steps} steps in {result.seconds / 60:.1f} min, stopped by {result.stopped_by};"
          f" run directory: {outcome.run_dir} (summary.md, metrics.jsonl, plots/loss.png)")
    return 0


TRAIN = Command(
    help="train a model on a task; settings from a file and --section.name=value overrides",
    example="rnnkit train adding --task.length=100 --model.encoder.cell=gru --train.max_minutes=5",
    add_arguments=_train_arguments,
    run=_train,
    overrides=True,
    help_action=_TrainHelp,
)
