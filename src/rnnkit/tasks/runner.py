"""Deprecated: moved to :mod:`rnnkit.apps.runner`."""

from rnnkit.apps.runner import compose_settings as compose_settings
from rnnkit.apps.runner import Outcome as Outcome
from rnnkit.apps.runner import RESUMABLE_CHANGES as RESUMABLE_CHANGES
from rnnkit.apps.runner import settings_help as settings_help
from rnnkit.apps.runner import train_app as train_task
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.apps.runner")
