"""Optimizers by name and the learning-rate schedule, both rebuilt from :class:`TrainConfig`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from .config import TrainConfig

OPTIMIZERS: dict[str, Callable[[Iterable[nn.Parameter], TrainConfig], torch.optim.Optimizer]] = {
    "adam": lambda params, c: torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay),
    "adamw": lambda params, c: torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay),
    "sgd": lambda params, c: torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay),
    "rmsprop": lambda params, c: torch.optim.RMSprop(params, lr=c.lr, weight_decay=c.weight_decay),
}


def build_optimizer(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    return OPTIMIZERS[config.optimizer](params, config)


class LearningRateSchedule:
    """Linear warmup, then ``constant``, ``cosine`` (to ``min_lr`` at ``total_steps``), ``step``
    (times ``gamma`` every ``step_size`` steps) or ``plateau`` (times ``gamma`` after
    ``plateau_patience`` evaluations without improvement).

    Call :meth:`step` after each optimizer step and :meth:`observe` after each evaluation. The
    state is a few numbers (:meth:`state_dict`), so a resumed run continues on the same curve.

    When the time budget (``max_minutes``) ends training, the steps it will allow are not known in
    advance: :meth:`replan` estimates them after each step from the run's own throughput so far
    (steps done over seconds spent, evaluations and checkpoints included, across resumes), and
    the cosine is laid over the smaller of that estimate and the step or epoch limit
    (``total_steps``). The estimate is saved with the state, so a resumed run goes on from the
    curve the interrupted one was on.
    """

    #: steps a run takes before its throughput is trusted to plan over the time budget
    MIN_STEPS_TO_PLAN = 5

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int) -> None:
        self.optimizer = optimizer
        self.config = config
        self.limit_steps = max(total_steps, 1)  # what max_steps or max_epochs allow
        self.total_steps = self.limit_steps  # the steps the cosine is laid over
        self.base_lr = config.lr
        self.steps = 0
        self.plateau_scale = 1.0
        self.best: float | None = None
        self.bad_evaluations = 0
        self._apply()

    @property
    def lr(self) -> float:
        c = self.config
        if c.warmup_steps and self.steps < c.warmup_steps:
            warmup = (self.steps + 1) / c.warmup_steps
        else:
            warmup = 1.0
        if c.schedule == "cosine":
            span = max(self.total_steps - c.warmup_steps, 1)
            progress = min(max(self.steps - c.warmup_steps, 0) / span, 1.0)
            lr = c.min_lr + 0.5 * (self.base_lr - c.min_lr) * (1 + math.cos(math.pi * progress))
        elif c.schedule == "step":
            lr = self.base_lr * c.gamma ** (self.steps // c.step_size)
        elif c.schedule == "plateau":
            lr = max(self.base_lr * self.plateau_scale, c.min_lr)
        else:
            lr = self.base_lr
        return lr * warmup

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def step(self) -> None:
        self.steps += 1
        self._apply()

    @property
    def plans_by_time(self) -> bool:
        """The curve depends on how many steps fit in ``max_minutes`` (a cosine under a time budget)."""
        return self.config.max_minutes is not None and self.config.schedule == "cosine"

    def replan(self, step: int, seconds: float) -> None:
        """After ``step`` steps in ``seconds`` (the run's, resumes included): lay the cosine over
        the steps that fit in the time budget at this throughput, or the step or epoch limit if
        that comes first. Nothing for other schedules, or without ``max_minutes``."""
        if not self.plans_by_time or step < self.MIN_STEPS_TO_PLAN or seconds <= 0:
            return
        budget = 60 * self.config.max_minutes
        fit = int(step * budget / seconds)  # the steps that fit at the run's average pace
        total = max(min(self.limit_steps, fit), step, 1)
        if total != self.total_steps:
            self.total_steps = total
            self._apply()

    def observe(self, metric: float, mode: str = "min") -> None:
        """Plateau bookkeeping after an evaluation (ignored by the other schedules)."""
        improved = self.best is None or (metric < self.best if mode == "min" else metric > self.best)
        if improved:
            self.best, self.bad_evaluations = metric, 0
            return
        self.bad_evaluations += 1
        if self.config.schedule == "plateau" and self.bad_evaluations >= self.config.plateau_patience:
            self.plateau_scale *= self.config.gamma
            self.bad_evaluations = 0
            self._apply()

    def state_dict(self) -> dict[str, float | int | None]:
        return {
            "steps": self.steps,
            "plateau_scale": self.plateau_scale,
            "best": self.best,
            "bad_evaluations": self.bad_evaluations,
            "total_steps": self.total_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        self.plateau_scale = float(state["plateau_scale"])
        self.best = state["best"]
        self.bad_evaluations = int(state["bad_evaluations"])
        if self.plans_by_time and state.get("total_steps") is not None:
            # the plan the interrupted run was on (its next replan may move it, as it would have);
            # a limit raised on resume still counts, since it only caps the estimate
            self.total_steps = max(min(int(state["total_steps"]), self.limit_steps), 1)
        self._apply()
