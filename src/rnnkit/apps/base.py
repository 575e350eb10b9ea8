"""The application contract: what ``rnnkit train NAME`` and an application's own commands run.

An application is an instance of a subclass of :class:`App`, listed in :data:`rnnkit.apps.APPS`
(the command line's ``train`` choices and per-app commands come from there). It describes itself
with class attributes and implements up to seven methods; the runner
(:func:`rnnkit.apps.runner.train_app`) calls them in this order:

- ``prepare(config, model_settings, seed) -> Prepared`` (required): read and split the data,
  build the model and the batches. ``config`` is an instance of ``config_class`` (the ``task``
  section), ``model_settings`` the ``model`` section as composed from ``default_model``, a file
  and overrides (the app adds what the data decides: vocabulary size, outputs; build with
  :meth:`App.build_model`), ``seed`` the training seed. It must be deterministic -- a resumed
  run, and a :class:`Run` rebuilt from its directory, prepare again and expect the same data and
  model. It writes nothing: files for the run directory go in ``Prepared.artifacts`` (written
  once, before training), what later stages need in this process in ``Prepared.context``.
- the :class:`~rnnkit.training.Trainer` fits ``Prepared.model`` with ``Prepared.objective`` on
  ``Prepared.train`` (validating on ``Prepared.val``) into the run directory.
- ``finalize(run) -> None`` (optional): work after training that writes into the run directory
  what a loader needs (forecast: a calibration model's ``calibration.json``; detect: the warm-start
  errors in ``detector.json``). It must be resumable: if it was interrupted,
  ``rnnkit train --run-dir D --resume`` runs it again without retraining; if it is done for the
  weights the run has (``run.trained`` is False: no training ran since), it does nothing.
- ``evaluate(run) -> dict`` (optional): the figures on held-out data, as JSON-able values. It
  writes nothing; the runner saves the dict in the run directory as ``results_file`` (non-finite
  numbers as ``null``).
- ``figures(run, results) -> dict[str, Figure]`` (optional): matplotlib figures by file name;
  the runner saves each atomically under ``run_dir/plots``.
- ``report(run, results) -> str`` (optional): the lines printed after training, from the results.
- ``load(run_dir)``: a trained run back as the app's predictor (default: the model,
  :func:`rnnkit.training.load`).
- ``evaluate_file(run, path) -> dict`` (optional): the trained model's figures on every example
  of a new file (``rnnkit evaluate RUN_DIR --data FILE``).

``evaluate`` may keep what ``figures`` reuses in ``run.cache`` (in memory only). ``commands()``
returns the app's own subcommands (:class:`~rnnkit.apps.commands.Command`, by name; ``generate``,
``predict``, ``forecast``, ``detect``); ``add_commands(subparsers)`` adds them to an argparse
parser. Class attributes: ``name``, ``help`` (one line), ``example`` (a command line),
``config_class`` (a frozen dataclass of the app's settings), ``model_name`` (a registered model,
:data:`rnnkit.models.MODELS`), ``default_model`` and ``default_train`` (the app's defaults of the
``model`` and ``train`` sections), ``arguments`` (train flags to settings: ``{"--data":
"task.data"}``), ``results_file`` and ``files`` (the task settings that name input files: the
runner stores them absolute, with each file's size and sha256, in ``config.json``; ``--resume``
and the app's commands read only the file recorded there, see :func:`rnnkit._io.check_file_record`).

A minimal application, a mean predictor for random sequences::

    @dataclass(frozen=True)
    class MeanConfig:
        length: int = 20

    class Mean(App):
        name, help, example = "mean", "predict a sequence's mean", "rnnkit train mean"
        config_class, model_name = MeanConfig, "many_to_one"

        def prepare(self, config, model_settings, seed):
            x = torch.randn(256, config.length, 1, generator=torch.Generator().manual_seed(seed))
            model = self.build_model({**model_settings, "input": {"features": 1}, "outputs": 1})
            batches = TensorBatches(x, x.mean((1, 2)), batch_size=32, seed=seed)
            return Prepared(model, SupervisedObjective("mse"), batches)

        def evaluate(self, run):
            return {"loss": run.result.train_loss}

        def report(self, run, results):
            return f"mean of {run.config.length} steps: training MSE {results['loss']:.4f}"

Listed in ``APPS`` it is ``rnnkit train mean``; ``rnnkit.apps.runner.train_app(Mean())`` trains it
from Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .._io import check_file_record, read_json, run_file
from ..config import from_dict
from .commands import Command, add_command


@dataclass
class Prepared:
    """What :meth:`App.prepare` hands the trainer and the later stages."""

    model: nn.Module
    objective: Callable
    train: Any  # batches: rnnkit.training.TensorBatches, StreamBatches, or alike
    val: Any = None
    unit: str = "samples"  # what a progress tick counts
    artifacts: dict[str, str] = field(default_factory=dict)  # file name -> text, for the run directory
    context: dict[str, Any] = field(default_factory=dict)  # for finalize/evaluate/report in this process


@dataclass
class Run:
    """A training run, as the stages after training see it.

    ``result`` is the trainer's :class:`~rnnkit.training.TrainResult` (read back from the
    newest checkpoint for a run loaded by :meth:`from_dir`); ``prepared`` is ``None`` for a run
    rebuilt from its directory until :meth:`data` prepares it again.
    """

    app: App
    run_dir: Path
    config: Any  # the app's settings: an instance of app.config_class
    model_settings: dict[str, Any]  # the model section as prepare received it
    train_config: Any  # rnnkit.training.TrainConfig
    result: Any = None  # rnnkit.training.TrainResult
    prepared: Prepared | None = None
    trained: bool = False  # training ran in this process: what an earlier finalize wrote is out of date
    cache: dict[str, Any] = field(default_factory=dict)  # what evaluate computed for figures; never saved
    data_files: dict[str, Any] = field(default_factory=dict)  # config.json's records of the input files
    quiet: bool = False  # no progress output from the stages after training (calibration, baselines)

    @property
    def seed(self) -> int:
        return self.train_config.seed

    @classmethod
    def from_dir(cls, run_dir: str | Path, app: App) -> Run:
        """The run of ``app`` in ``run_dir``, from its ``config.json`` and newest checkpoint."""
        from ..training import TrainConfig

        run_dir = Path(run_dir)
        if not (run_dir / "config.json").is_file():
            raise FileNotFoundError(f"{run_dir} is not a run directory: it has no config.json")
        saved = read_json(run_file(run_dir, "config.json"))
        if app.name != saved.get("task_name"):
            raise ValueError(f"{run_dir} holds a {saved.get('task_name')!r} run, got app {app.name!r}")
        train_config = from_dict(TrainConfig, saved["train"], where="train")
        run = cls(app, run_dir, from_dict(app.config_class, saved["task"], where="task"), saved["model_settings"],
                  train_config, data_files=saved.get("data_files", {}))  # fmt: skip
        checkpoint = newest_checkpoint(run_dir, train_config)
        run.result = checkpoint.result if checkpoint is not None else None
        return run

    def data(self) -> Prepared:
        """The prepared data and model; prepared again (seeded as the runner does, the model
        holding the newest checkpoint's weights) for a run rebuilt from its directory."""
        if self.prepared is None:
            import torch

            for setting, record in self.data_files.items():  # the files it trained on, before any is read
                check_file_record(record, f"task.{setting}")
            torch.manual_seed(self.seed)
            self.prepared = self.app.prepare(self.config, self.model_settings, self.seed)
            checkpoint = newest_checkpoint(self.run_dir, self.train_config)
            if checkpoint is not None:
                self.prepared.model.load_state_dict(checkpoint.model_state)
        return self.prepared

    @property
    def context(self) -> dict[str, Any]:
        return self.data().context

    def model(self) -> nn.Module:
        """The model with the weights the run directory keeps (``model.safetensors``: the best
        evaluated checkpoint's, else the last step's), :func:`rnnkit.training.load`, on the CPU;
        the model as training left it while the run has no ``model.safetensors`` yet."""
        if not (self.run_dir / "model.safetensors").is_file():
            return self.last_model()
        from ..training import load

        return load(self.run_dir)

    def last_model(self) -> nn.Module:
        """The model as training left it (the last step's weights), moved to the CPU: where the
        stages after training put their inputs, wherever the trainer ran."""
        return self.data().model.cpu()


@dataclass
class Checkpointed:
    """The newest checkpoint of a run: its weights, and the training result it records."""

    model_state: dict[str, Any]
    result: Any  # rnnkit.training.TrainResult
    finished: bool  # training reached a limit or stopped early: it would not take another step


def newest_checkpoint(run_dir: Path, train_config: Any) -> Checkpointed | None:
    """The newest checkpoint of ``run_dir`` that loads, as a :class:`Checkpointed`; None without one.

    The result's ``last_eval`` is the last validation record of ``metrics.jsonl``.
    """
    from ..training import CheckpointManager, TrainResult
    from ..training.run import last_evaluation
    from ..training.trainer import stop_reason

    if not (Path(run_dir) / "checkpoints").is_dir():
        return None
    checkpoint = CheckpointManager(run_dir, mode=train_config.monitor_mode).load_latest()
    if checkpoint is None:
        return None
    state = checkpoint.trainer_state
    last_eval = last_evaluation(Path(run_dir))
    best = {train_config.monitor: state["best"]} if state.get("best") is not None else {}
    stopped_by = stop_reason(state, train_config)
    result = TrainResult(steps=state["step"], epochs=state["epoch"], seconds=state["seconds"],
                         train_loss=state.get("last_train_loss"), best=best, last_eval=last_eval,
                         stopped_by=stopped_by or "interrupted", run_dir=Path(run_dir))  # fmt: skip
    return Checkpointed(checkpoint.model_state, result, bool(stopped_by))


class App:
    """An application: see the module docstring for the contract."""

    name: str = ""
    help: str = ""  # one line, shown by `rnnkit train --help`
    example: str = ""  # a command line, shown by `rnnkit train NAME --help`
    config_class: type = type(None)  # a frozen dataclass: the task section
    model_name: str = ""  # a registered model (rnnkit.models.MODELS)
    default_model: dict[str, Any] = {}  # noqa: RUF012 - read only
    default_train: dict[str, Any] = {}  # noqa: RUF012 - read only
    arguments: dict[str, str] = {}  # noqa: RUF012 - command-line flag -> setting, e.g. --data -> task.data
    results_file: str = "results.json"
    #: task settings that name input files: stored absolute, with their size and sha256, in config.json
    files: tuple[str, ...] = ("data",)

    def prepare(self, config: Any, model_settings: dict[str, Any], seed: int) -> Prepared:
        raise NotImplementedError(f"{type(self).__name__} must implement prepare(config, model_settings, seed)")

    def finalize(self, run: Run) -> None:
        return None

    def evaluate(self, run: Run) -> dict[str, Any]:
        return {}

    def figures(self, run: Run, results: dict[str, Any]) -> dict[str, Any]:
        return {}

    def report(self, run: Run, results: dict[str, Any]) -> str:
        return ""

    def load(self, run_dir: str | Path) -> Any:
        from ..training import load

        return load(run_dir)

    def evaluate_file(self, run: Run, path: str | Path) -> dict[str, Any]:
        """The trained model's figures on every example of the file ``path`` (``rnnkit evaluate
        RUN_DIR --data FILE``), in the format training read; writes nothing."""
        raise ValueError(f"the {self.name} app does not score a file of its own: 'rnnkit evaluate RUN_DIR'"
                         " without --data scores the run's held-out data")  # fmt: skip

    def commands(self) -> dict[str, Command]:
        return {}

    def add_commands(self, subparsers) -> None:
        """The app's own commands as subparsers of ``subparsers`` (argparse's ``add_subparsers()``)."""
        for name, command in self.commands().items():
            add_command(subparsers, name, command)

    def build_model(self, settings: dict[str, Any]) -> nn.Module:
        """The app's registered model (``model_name``) from ``settings``: the model section with
        what the app fixes (input, outputs) filled in; unknown keys and bad values are errors
        that name the ``model.`` setting."""
        from ..models import create_model

        return create_model(self.model_name, settings)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, infinity) as None, for strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


# --- what an application's predictor loads ---------------------------------------------------


def read_run_file(run_dir: str | Path, name: str, app: str) -> tuple[Path, Any]:
    """``(path, data)`` of the JSON file ``name`` an app writes into its run directory, with the
    errors every predictor's ``load`` gives: no such directory, or a directory of another app
    (the file is missing). The path stays inside the run directory (:func:`rnnkit._io.run_file`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    path = run_file(run_dir, name)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {run_dir} a run directory of 'rnnkit train {app}'?")
    return path, read_json(path)


def trained_model(run_dir: str | Path, kind: type | tuple[type, ...], what: str) -> nn.Module:
    """The run's trained model (:func:`rnnkit.training.load`), which must be a ``kind``; ``what``
    names the shape in the error (``"a many-to-one classifier"``)."""
    from ..training import load

    model = load(run_dir)
    if not isinstance(model, kind):
        raise ValueError(f"{run_dir} holds a {type(model).__name__}, not {what}")
    return model
