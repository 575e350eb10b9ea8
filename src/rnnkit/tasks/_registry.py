"""Training tasks by name: what ``rnnkit train TASK`` can train.

A task turns its own settings (a frozen dataclass) and the model settings into everything the
trainer needs (:class:`Prepared`). ``rnnkit train`` stays one generic command over this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

TASKS: dict[str, Task] = {}


@dataclass
class Prepared:
    """What a task hands the trainer."""

    model: nn.Module
    objective: Callable
    train: Any
    val: Any = None
    unit: str = "samples"
    report: Callable[[Any], str] = lambda result: ""  # a few lines printed after training
    artifacts: dict[str, str] = field(default_factory=dict)  # files for the run directory (tokenizer.json)


@dataclass(frozen=True)
class Task:
    name: str
    help: str
    example: str
    config_class: type
    prepare: Callable[[Any, dict[str, Any], int], Prepared]  # (task config, model settings, seed)
    model_name: str
    default_model: dict[str, Any] = field(default_factory=dict)
    default_train: dict[str, Any] = field(default_factory=dict)
    arguments: dict[str, str] = field(default_factory=dict)  # command-line flag -> setting, e.g. --data -> task.data


def register_task(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"a task named {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"task must be one of {', '.join(repr(n) for n in TASKS)}, got {name!r}")
    return TASKS[name]
