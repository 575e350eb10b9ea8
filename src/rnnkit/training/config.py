"""Training settings, shared by the Python API and ``rnnkit train``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TrainConfig:
    """How to train; every field can be set from a config file or ``--train.NAME=VALUE``.

    Stopping: ``max_epochs``, ``max_steps`` (optimizer steps) and ``max_minutes`` (wall clock),
    whichever comes first, or early stopping after ``patience`` evaluations without improvement
    of ``monitor``. Truncated BPTT (Williams & Peng 1990): on stateful streams every update reads
    ``tbptt_k2`` steps and moves on by ``tbptt_k1`` (set on the stream's batcher).
    """

    max_epochs: int = 10
    max_steps: int | None = None
    max_minutes: float | None = None
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: Literal["constant", "cosine", "step", "plateau"] = "constant"
    warmup_steps: int = 0
    step_size: int = 1000
    gamma: float = 0.5
    plateau_patience: int = 2
    min_lr: float = 0.0
    clip_norm: float | None = 1.0
    clip_value: float | None = None
    max_bad_steps: int = 5
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    seed: int = 0
    deterministic: bool = True
    eval_every: int | None = None
    patience: int | None = None
    monitor: str = "val_loss"
    monitor_mode: Literal["min", "max"] = "min"
    checkpoint_every: int | None = None
    keep_last: int = 3
    log_every: int = 20
    gradient_diagnostics_every: int = 0
    device: str = "auto"
    threads: int | None = None  # intra-op CPU threads for this run; None keeps torch's default

    def __post_init__(self) -> None:
        from .._validation import check_nonnegative_int, check_positive_int

        check_positive_int("max_epochs", self.max_epochs)
        for name in ("max_steps", "eval_every", "checkpoint_every", "patience", "threads"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        for name in ("keep_last", "log_every", "step_size", "max_bad_steps", "plateau_patience"):
            check_positive_int(name, getattr(self, name))
        for name in ("warmup_steps", "gradient_diagnostics_every"):
            check_nonnegative_int(name, getattr(self, name))
        if self.lr <= 0:
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        for name in ("clip_norm", "clip_value", "max_minutes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be a positive number or null, got {value}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
