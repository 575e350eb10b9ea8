"""Deprecated: moved to :mod:`rnnkit.apps.runner` (an app itself) and :mod:`rnnkit.apps.train` (by name)."""

from rnnkit.apps import get_app as _get_app
from rnnkit.apps import runner as _runner
from rnnkit.apps.runner import Outcome as Outcome
from rnnkit.apps.runner import RESUMABLE_CHANGES as RESUMABLE_CHANGES
from rnnkit.apps.train import train as train_task
from rnnkit.tasks._deprecated import moved


def compose_settings(task_name, config_file, overrides):
    """The old name-taking form of :func:`rnnkit.apps.runner.compose_settings`."""
    return _runner.compose_settings(_get_app(task_name), config_file, overrides)


def settings_help(task_name):
    """The old name-taking form of :func:`rnnkit.apps.runner.settings_help`."""
    return _runner.settings_help(_get_app(task_name))


moved(__name__, "rnnkit.apps.runner")
