"""Deprecated: the old layout, for one release.

The applications moved to :mod:`rnnkit.apps` (listed in :data:`rnnkit.apps.APPS`; an
:class:`~rnnkit.apps.App` is what a ``Task`` was), data readers, tokenizers and generated tasks to
:mod:`rnnkit.data`, metrics to :mod:`rnnkit.metrics`, and ``compare`` and ``gradients`` to
:mod:`rnnkit.experiments`. Every module here re-exports its old names and warns on import.
"""

from types import MappingProxyType

from rnnkit.apps import APPS as _APPS
from rnnkit.apps import App as Task
from rnnkit.data.synthetic import ADDING_BASELINE_MSE as ADDING_BASELINE_MSE
from rnnkit.data.synthetic import adding_problem as adding_problem
from rnnkit.data.synthetic import copy_memory as copy_memory
from rnnkit.data.synthetic import copy_memory_baseline as copy_memory_baseline
from rnnkit.tasks._deprecated import moved

TASKS = MappingProxyType({app.name: app for app in _APPS})  # name -> App, read only


def register_task(task) -> None:
    """Gone: applications are listed, not registered."""
    raise TypeError("register_task is gone: write an rnnkit.apps.App subclass and add it to rnnkit.apps.APPS"
                    " (rnnkit.apps.runner.train_app also trains an App instance that is not listed)")


__all__ = ["TASKS", "Task", "register_task", "ADDING_BASELINE_MSE", "adding_problem", "copy_memory",
           "copy_memory_baseline"]
moved(__name__, "rnnkit.apps, rnnkit.data, rnnkit.metrics and rnnkit.experiments")
