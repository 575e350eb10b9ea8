"""Applications: what ``rnnkit train NAME`` trains, with each one's own commands.

Each application is a folder here with an :class:`App` subclass (the contract is in
:mod:`rnnkit.apps.base`); :data:`APPS` lists them, in the order ``rnnkit train --help`` shows
them, and the command line takes its ``train`` choices and per-app commands from it. Adding an
application is one folder and one line in ``APPS``. :mod:`rnnkit.apps.runner` runs an app's
stages; :mod:`rnnkit.apps.commands` is how an app's commands are written.

Importing this package imports no optional dependency (pandas, statsmodels, tokenizers,
matplotlib): the apps import them where they are used.
"""

from .anomaly import DetectApp
from .base import App as App
from .base import Prepared as Prepared
from .base import Run as Run
from .caption import CaptionApp
from .classify import ClassifyApp
from .forecast import ForecastApp
from .genes import GenesApp
from .handwriting import DigitStringApp, HandwritingApp
from .longrange import AddingApp, CopyApp
from .music import MusicApp
from .seq2seq import Seq2SeqApp
from .speech import SpeechApp
from .tagging import TagApp
from .text import TextApp
from .translate import TranslateApp

APPS: tuple[App, ...] = (
    TextApp(),
    ClassifyApp(),
    TagApp(),
    Seq2SeqApp(),
    AddingApp(),
    CopyApp(),
    ForecastApp(),
    DetectApp(),
    GenesApp(),
    TranslateApp(),
    SpeechApp(),
    HandwritingApp(),
    CaptionApp(),
    DigitStringApp(),
    MusicApp(),
)


def get_app(name: str) -> App:
    """The app of :data:`APPS` called ``name``."""
    for app in APPS:
        if app.name == name:
            return app
    raise ValueError(f"task must be one of {', '.join(repr(app.name) for app in APPS)}, got {name!r}")


__all__ = ["APPS", "App", "Prepared", "Run", "get_app"]
