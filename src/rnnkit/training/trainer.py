"""The training loop: BPTT with its remedies, checkpoints, exact resume, logs, and DDP.

The trainer knows nothing of the task: an objective turns ``(model, batch, state)`` into a loss
(:mod:`rnnkit.training.objectives`) and a batcher yields the batches in a resumable order
(:mod:`rnnkit.training.data`). Sections of :meth:`Trainer.fit`, in order: set-up, resume, the
step loop (forward, NaN guard, backward, clipping, update), evaluation and early stopping,
checkpoints, and the closing files.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._io import save_tensors, write_json
from ..config import to_dict
from .checkpoint import CheckpointManager, capture_rng_state, load_checkpoint, restore_rng_state
from .config import TrainConfig
from .diagnostics import GradientMonitor
from .distributed import Distributed, all_reduce_sum, init_distributed, wrap_model
from .objectives import StepOutput
from .optim import LearningRateSchedule, build_optimizer
from .progress import Progress
from .run import (
    MetricsLog,
    check_finite,
    check_fits,
    check_optimizer_state,
    last_evaluation,
    write_plots,
    write_summary,
)


class TrainingError(RuntimeError):
    """Training cannot go on (for example, the loss stayed non-finite)."""


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM arrived; a checkpoint was saved first (``checkpoint`` is its path).

    ``signal_number`` is the signal's number: the command line exits with ``128 + signal_number``
    (130 for SIGINT, 143 for SIGTERM), as a shell reports a process that signal ended."""

    def __init__(self, message: str, checkpoint: Path | None, signal_number: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint
        self.signal_number = int(signal_number)


@dataclass
class TrainResult:
    steps: int
    epochs: int
    seconds: float
    train_loss: float | None
    best: dict[str, float] = field(default_factory=dict)
    last_eval: dict[str, float] = field(default_factory=dict)
    stopped_by: str = "max_epochs"
    run_dir: Path | None = None


@dataclass
class _Progress:
    """Everything about where training is, saved in each checkpoint as JSON."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    best: float | None = None
    evaluations_without_improvement: int = 0
    bad_steps: int = 0
    seconds: float = 0.0
    window_loss: float = 0.0  # running sums for the next metrics line
    window_items: int = 0
    window_metrics: dict[str, float] = field(default_factory=dict)
    last_train_loss: float | None = None
    stopped_by: str = ""


def stop_reason(state: dict[str, Any], config: TrainConfig) -> str:
    """Why training under ``config`` would not take another step from a checkpoint's trainer
    ``state`` (``"max_steps"``, ``"max_minutes"``, ``"early_stopping"``, ``"max_epochs"``), or
    ``""`` if it would. The limits are read from ``config``, which a resumed run may have raised."""
    if config.max_steps is not None and state["step"] >= config.max_steps:
        return "max_steps"
    if config.max_minutes is not None and state["seconds"] >= 60 * config.max_minutes:
        return "max_minutes"
    waited = state.get("evaluations_without_improvement", 0)
    if state.get("stopped_by") == "early_stopping" or (config.patience is not None and waited >= config.patience):
        return "early_stopping"
    return "max_epochs" if state["epoch"] >= config.max_epochs else ""


def already_complete(run_dir: Path | None, step: int, reason: str) -> str:
    """The line a resumed run that has nothing left to train says."""
    return (f"run {run_dir} is already complete: {step} steps, stopped by {reason}; nothing was trained or"
            " changed (raise train.max_steps, train.max_epochs or train.max_minutes to train on)")  # fmt: skip


def resolve_device(name: str) -> torch.device:
    """``train.device`` as a device this torch can use: ``"auto"`` (CUDA where available), or a
    torch device string; one that does not exist here is a ``ValueError`` naming what does."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    available = "cpu" + (f", cuda (cuda:0 to cuda:{torch.cuda.device_count() - 1})" if torch.cuda.is_available() else "")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"train.device must be 'auto' or a torch device ({available}), got {name!r}") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"train.device {name!r} is not available: this torch has {available}"
                         f"{'' if torch.cuda.is_available() else ' (a CPU-only build, or no GPU)'}")  # fmt: skip
    if device.type not in ("cpu", "cuda"):
        backend = getattr(torch, device.type, None)
        if backend is None or not getattr(backend, "is_available", lambda: False)():
            raise ValueError(f"train.device {name!r} is not available: this torch has {available}")
    return device


def _determinism() -> tuple[bool, bool, bool]:
    """torch's process-wide determinism settings, as :func:`_set_determinism` takes them."""
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.utils.deterministic.fill_uninitialized_memory)  # fmt: skip


def _set_determinism(settings: tuple[bool, bool, bool]) -> None:
    enabled, warn_only, fill = settings
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.utils.deterministic.fill_uninitialized_memory = fill


def _detach(state: Any) -> Any:
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    return type(state)(_detach(s) for s in state)


def _state_tensors(state: Any) -> tuple[dict[str, Tensor], str | None]:
    if state is None:
        return {}, None
    if isinstance(state, Tensor):
        return {"carried.0": state}, "tensor"
    return {f"carried.{i}": s for i, s in enumerate(state)}, "tuple"


def _bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check and check())


class Trainer:
    """Train ``model`` on batches with ``objective``; see the module docstring for the flow.

    ``run_dir`` receives the config, checkpoints, ``metrics.jsonl``, plots, a summary and the
    final ``model.safetensors`` (the best weights when there was an evaluation, else the last);
    ``model_spec`` (from :func:`rnnkit.models.model_spec`) lets :func:`rnnkit.load` rebuild the
    model. ``callbacks`` are called as ``callback(trainer, step)`` after every step.
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Callable[..., StepOutput],
        config: TrainConfig | None = None,
        run_dir: str | Path | None = None,
        *,
        model_spec: dict[str, Any] | None = None,
        extra_config: dict[str, Any] | None = None,
        quiet: bool = False,
        unit: str = "items",
        resume_hint: str | None = None,
        callbacks: Iterable[Callable[[Trainer, int], None]] = (),
    ) -> None:
        self.model = model
        self.objective = objective
        self.config = config or TrainConfig()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.model_spec = model_spec
        self.extra_config = extra_config or {}
        self.quiet = quiet
        self.unit = unit
        self.resume_hint = resume_hint
        self.callbacks = list(callbacks)
        self.device = resolve_device(self.config.device)
        self.distributed = Distributed()
        self._interrupted: str | None = None

    # --- public ------------------------------------------------------------------------
    def fit(self, train, val=None, *, resume: bool = False) -> TrainResult:
        config = self.config
        # --- set-up: processes, seeds, device, optimizer, schedule ---
        self.distributed = init_distributed(self.device)
        if self.distributed.enabled:  # each process reads its share of every global batch
            train = train.shard(self.distributed.rank, self.distributed.world_size)
            val = val.shard(self.distributed.rank, self.distributed.world_size) if val is not None else None
        torch.manual_seed(config.seed)
        self.model.to(self.device)
        self.network = wrap_model(self.model, self.distributed, self.device)
        self.optimizer = build_optimizer(self.model.parameters(), config)
        planned = config.max_steps or config.max_epochs * len(train)
        self.schedule = LearningRateSchedule(self.optimizer, config, planned)
        self.autocast, self.scaler = self._precision()
        main = self.distributed.is_main and self.run_dir is not None
        self.checkpoints = (
            CheckpointManager(self.run_dir, keep_last=config.keep_last, mode=config.monitor_mode)
            if self.run_dir is not None
            else None
        )
        self.log = MetricsLog(self.run_dir / "metrics.jsonl") if main else None
        every = config.gradient_diagnostics_every
        self.monitor = GradientMonitor(self.model, every=every) if every else None
        self._saved_step: int | None = None
        self._saved_state: str | None = None
        self._evaluated_step: int | None = None
        self._batches_per_epoch = len(train)
        self._messages: list[str] = []
        state, self._carried = _Progress(), None

        # --- resume, or start a fresh run directory ---
        if resume:
            state, self._carried = self._resume()
            reason = stop_reason(vars(state), config)
            if reason:  # nothing left to train: say so, and change nothing
                return self._already_complete(state, reason)
            self._messages.append(f"resumed from step {state.step} (epoch {state.epoch + 1}, batch {state.batch})"
                                  f" of {self._restored_from}")  # fmt: skip
        elif self.checkpoints is not None and self.checkpoints.latest() is not None:
            raise ValueError(
                f"run directory {self.run_dir} already holds checkpoints: resume it, or choose a new directory"
            )
        if main:
            self._write_config()
        progress = Progress(
            planned, quiet=self.quiet or not self.distributed.is_main, log_every=config.log_every,
            unit=self.unit, initial=state.step, elapsed=state.seconds,
            time_limit=60 * config.max_minutes if config.max_minutes is not None else None,
        )  # fmt: skip
        for message in self._messages:
            progress.message(message)
        previous_determinism = _determinism()
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            # deterministic mode also fills every new tensor with NaN (a debugging aid for kernels
            # that read memory they never wrote); it changes no result and cost ~5% of a step
            torch.utils.deterministic.fill_uninitialized_memory = False
        started = time.perf_counter() - state.seconds
        last_eval: dict[str, float] = {}
        previous_handlers = self._install_signal_handlers()
        previous_threads = torch.get_num_threads()
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        try:
            # --- the step loop ---
            for epoch in range(state.epoch, config.max_epochs):
                state.epoch = epoch
                if train.stateful and state.batch == 0:
                    self._carried = None  # each epoch reads the streams from their start
                self.network.train()
                for batch in train.epoch(epoch, start=state.batch):
                    self._carried = self._train_step(batch, self._carried, state, progress)
                    state.step += 1
                    state.batch += 1
                    state.seconds = time.perf_counter() - started
                    self.schedule.replan(state.step, state.seconds)
                    self._log_window(state, force=False)
                    for callback in self.callbacks:
                        callback(self, state.step)
                    if val is not None and config.eval_every and state.step % config.eval_every == 0:
                        last_eval = self._evaluate_and_track(val, state, progress)
                    elif config.checkpoint_every and state.step % config.checkpoint_every == 0:
                        self._checkpoint(state, metric=None)
                    if self._should_stop(state):
                        break
                    if self.callbacks or not self.network.training:  # evaluation (or a callback) left eval mode
                        self.network.train()
                if state.stopped_by:
                    break
                state.epoch, state.batch = epoch + 1, 0
                if val is not None and not config.eval_every:
                    last_eval = self._evaluate_and_track(val, state, progress)
                elif not config.checkpoint_every:
                    self._checkpoint(state, metric=None)
                if self._should_stop(state):
                    break
            else:
                state.stopped_by = state.stopped_by or "max_epochs"
            # --- closing files: the final weights are evaluated, wherever training stopped ---
            self._log_window(state, force=True)
            if val is not None and self._evaluated_step != state.step:
                last_eval = self._evaluate_and_track(val, state, progress)
            self._checkpoint(state, metric=None)
            self._finish(state, last_eval)
        finally:
            progress.close()
            self._restore_signal_handlers(previous_handlers)
            torch.set_num_threads(previous_threads)
            _set_determinism(previous_determinism)
        return self._result(state, last_eval)

    def _result(self, state: _Progress, last_eval: dict[str, float]) -> TrainResult:
        return TrainResult(
            steps=state.step,
            epochs=state.epoch,
            seconds=state.seconds,
            train_loss=state.last_train_loss,
            best={self.config.monitor: state.best} if state.best is not None else {},
            last_eval=last_eval,
            stopped_by=state.stopped_by,
            run_dir=self.run_dir,
        )

    def _already_complete(self, state: _Progress, reason: str) -> TrainResult:
        """A resumed run that would not take another step: nothing is trained, nothing written
        (only the closing files, if an earlier run stopped before writing them)."""
        state.stopped_by = reason
        quiet = self.quiet or not self.distributed.is_main
        for message in [*self._messages, already_complete(self.run_dir, state.step, reason)]:
            if not quiet:
                print(message, file=sys.stderr, flush=True)
        last_eval = last_evaluation(self.run_dir) if self.run_dir is not None else {}
        if self.run_dir is not None and not (self.run_dir / "model.safetensors").is_file():
            self._finish(state, last_eval)
        return self._result(state, last_eval)

    @torch.no_grad()
    def evaluate(self, data) -> dict[str, float]:
        """Mean loss and metrics over every batch of ``data`` (summed over processes)."""
        self.network.eval()
        totals: dict[str, float] = {}
        count = 0
        state = None
        for batch in data.epoch(0):
            with self.autocast():
                out = self.objective(self.network, self._to_device(batch), state)
            if data.stateful:
                state = _detach(out.state)
            count += out.count
            totals["loss"] = totals.get("loss", 0.0) + out.loss.item() * out.count
            for name, value in out.metrics.items():
                totals[name] = totals.get(name, 0.0) + value * out.count
        names = sorted(totals)
        summed = all_reduce_sum([totals[n] for n in names] + [count], self.distributed, self.device)
        count = summed[-1]
        return {f"val_{n}": v / max(count, 1) for n, v in zip(names, summed[:-1])}

    # --- one step ------------------------------------------------------------------------
    def _train_step(self, batch, carried: Any, state: _Progress, progress: Progress) -> Any:
        config = self.config
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            out = self.objective(self.network, self._to_device(batch), carried)
        loss = out.loss
        value = loss.item()  # the step's one read of the loss (a device sync): the NaN guard and the logs share it
        finite = all_reduce_sum([float(math.isfinite(value))], self.distributed, self.device)[0]
        if finite < self.distributed.world_size:
            return self._skip_bad_step(state, progress, carried, f"loss is {value}")
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.monitor is not None and state.step % self.monitor.every == 0:
            self._log_diagnostics(batch, carried, state)
        if config.clip_value is not None:
            nn.utils.clip_grad_value_(self.model.parameters(), config.clip_value)
        norm = nn.utils.clip_grad_norm_(
            self.model.parameters(), config.clip_norm if config.clip_norm is not None else math.inf
        )
        if not torch.isfinite(norm) and self.scaler is None:
            return self._skip_bad_step(state, progress, carried, f"gradient norm is {norm.item()}")
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.schedule.step()
        state.bad_steps = 0
        state.window_loss += value * out.count
        state.window_items += out.count
        for name, metric in out.metrics.items():
            state.window_metrics[name] = state.window_metrics.get(name, 0.0) + metric * out.count
        state.last_train_loss = value
        items = out.count if out.examples is None else out.examples  # in the unit progress names
        progress.update(state.step + 1, loss=value, items=items * self.distributed.world_size,
                        lr=self.schedule.lr, epoch=state.epoch)  # fmt: skip
        return _detach(out.state)

    def _log_diagnostics(self, batch, carried: Any, state: _Progress) -> None:
        """Gradient flow of this step's batch, between backward and clipping (so the parameter
        norms are the unclipped ones). The extra pass runs on a forked RNG: training draws the
        same dropout masks with or without diagnostics."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            with self.autocast():
                record = self.monitor.collect_from(
                    lambda: self.objective(self.model, self._to_device(batch), carried).loss
                )
        if self.log is not None:
            self.log.write({"step": state.step + 1, "epoch": state.epoch, "split": "diagnostics", **record})

    def _skip_bad_step(self, state: _Progress, progress: Progress, carried: Any, reason: str) -> Any:
        state.bad_steps += 1
        self.optimizer.zero_grad(set_to_none=True)
        if state.bad_steps >= self.config.max_bad_steps:
            raise TrainingError(
                f"stopped at step {state.step + 1}: {reason} for {state.bad_steps} steps in a row"
                f" (max_bad_steps={self.config.max_bad_steps}); lower lr, set clip_norm, or check the data"
            )
        warnings.warn(f"skipped step {state.step + 1}: {reason} ({state.bad_steps} in a row)", stacklevel=2)
        progress.message(f"warning: skipped step {state.step + 1}: {reason}")
        return carried

    # --- evaluation, early stopping, checkpoints ------------------------------------------
    def _evaluate_and_track(self, val, state: _Progress, progress: Progress) -> dict[str, float]:
        config = self.config
        metrics = self.evaluate(val)
        self._evaluated_step = state.step
        if config.monitor not in metrics:
            raise ValueError(f"monitor must be one of {', '.join(sorted(metrics))}, got {config.monitor!r}")
        value = metrics[config.monitor]
        improved = state.best is None or (value < state.best if config.monitor_mode == "min" else value > state.best)
        if improved:
            state.best, state.evaluations_without_improvement = value, 0
        else:
            state.evaluations_without_improvement += 1
        self.schedule.observe(value, config.monitor_mode)
        if self.log is not None:
            self.log.write({"step": state.step, "epoch": state.epoch, "split": "val", **metrics})
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        progress.message(f"step {state.step}: {shown}" + ("  (best)" if improved else ""))
        self._checkpoint(state, metric=value)
        if config.patience is not None and state.evaluations_without_improvement >= config.patience:
            state.stopped_by = "early_stopping"
        return metrics

    def _should_stop(self, state: _Progress) -> bool:
        config = self.config
        if config.max_steps is not None and state.step >= config.max_steps:
            state.stopped_by = state.stopped_by or "max_steps"
        if config.max_minutes is not None and state.seconds >= 60 * config.max_minutes:
            state.stopped_by = state.stopped_by or "max_minutes"
        if self._interrupted is not None:
            path = self._checkpoint(state, metric=None)
            hint = f"; resume with: {self.resume_hint}" if self.resume_hint else ""
            where = f"checkpoint saved in {path}" if path else "no run directory, nothing saved"
            raise TrainingInterrupted(f"interrupted by {self._interrupted} at step {state.step}: {where}{hint}", path,
                                      signal.Signals[self._interrupted])  # fmt: skip
        return bool(state.stopped_by)

    def _checkpoint(self, state: _Progress, *, metric: float | None) -> Path | None:
        if self.checkpoints is None or not self.distributed.is_main:
            return None
        snapshot = json.dumps(vars(state), sort_keys=True)
        if self._saved_step == state.step and metric is None and self._saved_state == snapshot:
            return self._saved_path  # this step is saved already, as it stands
        extra, kind = _state_tensors(self._carried)
        trainer_state = {**vars(state), "carried": kind}
        self._saved_step, self._saved_state = state.step, snapshot
        self._saved_path = self.checkpoints.save(
            state.step,
            metric,
            model_state=self.model.state_dict(),
            optimizer_state=self.optimizer.state_dict(),
            scheduler_state=self.schedule.state_dict(),
            scaler_state=self.scaler.state_dict() if self.scaler is not None else None,
            trainer_state=trainer_state,
            extra_tensors=extra or None,
            rng_state=capture_rng_state(),
        )
        return self._saved_path

    def _resume(self) -> tuple[_Progress, Any]:
        if self.checkpoints is None:
            raise ValueError("resume needs a run_dir to read checkpoints from")
        if self.distributed.is_main:
            removed = self.checkpoints.remove_leftovers()
            if removed:
                self._messages.append(f"removed {len(removed)} partial checkpoint(s) left by an interrupted save"
                                      f" in {self.checkpoints.directory}")  # fmt: skip
        checkpoint = self.checkpoints.load_latest()
        if checkpoint is None:
            raise ValueError(f"nothing to resume: run directory {self.run_dir} has no usable checkpoint")
        # a checkpoint whose tensors do not fit is refused in one line, not as torch's size-mismatch traceback
        check_fits(self.model, {k: tuple(v.shape) for k, v in checkpoint.model_state.items()}, checkpoint.path)
        check_finite(checkpoint.model_state, checkpoint.path)
        check_optimizer_state(checkpoint.optimizer_state, list(self.model.parameters()), checkpoint.path)
        self.model.load_state_dict(checkpoint.model_state)
        self.optimizer.load_state_dict(checkpoint.optimizer_state)
        self.schedule.load_state_dict(checkpoint.scheduler_state)
        if self.scaler is not None and checkpoint.scaler_state is not None:
            self.scaler.load_state_dict(checkpoint.scaler_state)
        saved = dict(checkpoint.trainer_state)
        kind = saved.pop("carried", None)
        state = _Progress(**saved)
        state.stopped_by = ""
        carried = None
        if kind is not None:
            tensors = checkpoint.extra_tensors or {}
            parts = [tensors[f"carried.{i}"].to(self.device) for i in range(len(tensors))]
            carried = parts[0] if kind == "tensor" else tuple(parts)
        restore_rng_state(checkpoint.rng_state)
        if self.log is not None:
            self.log.truncate_after(state.step)
        self._restored_from = checkpoint.path
        return state, carried

    # --- logs and closing files ---------------------------------------------------------
    def _log_window(self, state: _Progress, *, force: bool) -> None:
        if not state.window_items or (not force and state.step % self.config.log_every):
            return
        sums = [state.window_loss, *state.window_metrics.values(), state.window_items]
        sums = all_reduce_sum(sums, self.distributed, self.device)
        items = sums[-1]
        record = {"step": state.step, "epoch": state.epoch, "split": "train", "loss": sums[0] / items}
        record.update({n: v / items for n, v in zip(state.window_metrics, sums[1:-1])})
        record.update(lr=self.schedule.lr, seconds=round(state.seconds, 3))
        if self.log is not None:
            self.log.write(record)
        state.window_loss, state.window_items, state.window_metrics = 0.0, 0, {}

    def _write_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        data = {"model": self.model_spec, "train": to_dict(self.config), **self.extra_config}
        write_json(self.run_dir / "config.json", data)

    def _finish(self, state: _Progress, last_eval: dict[str, float]) -> None:
        if self.run_dir is None or not self.distributed.is_main:
            return
        weights = self.model.state_dict()
        best = self.checkpoints.best() if self.checkpoints is not None else None
        if best is not None:
            weights = load_checkpoint(best).model_state
        save_tensors(self.run_dir / "model.safetensors", weights)
        write_plots(self.run_dir)
        parameters = sum(p.numel() for p in self.model.parameters())
        write_summary(self.run_dir, state=vars(state), last_eval=last_eval, parameters=parameters,
                      monitor=self.config.monitor, best_from_checkpoint=best is not None,
                      batches_per_epoch=self._batches_per_epoch)  # fmt: skip

    # --- precision, devices, signals -------------------------------------------------------
    def _precision(self):
        precision = self.config.precision
        if precision == "fp32":
            return contextlib.nullcontext, None
        if precision == "bf16" and not _bf16_supported(self.device):
            warnings.warn(f"bf16 is not supported on {self.device}; training in fp32", stacklevel=3)
            return contextlib.nullcontext, None
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError(f"precision='fp16' needs a CUDA device, got {self.device}; use 'bf16' or 'fp32'")
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        return (lambda: torch.autocast(self.device.type, dtype=dtype)), scaler

    def _to_device(self, batch):
        if isinstance(batch, Tensor):
            return batch.to(self.device)
        if isinstance(batch, tuple):
            moved = [self._to_device(b) for b in batch]
            return type(batch)(*moved) if hasattr(batch, "_fields") else tuple(moved)  # keep NamedTuples
        return batch

    def _install_signal_handlers(self) -> dict[int, Any]:
        self._interrupted = None

        def handler(signum, frame):
            self._interrupted = signal.Signals(signum).name

        previous = {}
        with contextlib.suppress(ValueError):  # not in the main thread: leave signals alone
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, handler)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

