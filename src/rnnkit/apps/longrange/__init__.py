"""The long-range memory tasks: ``rnnkit train adding`` and ``rnnkit train copy``."""

from .app import AddingApp as AddingApp
from .app import AddingConfig as AddingConfig
from .app import CopyApp as CopyApp
from .app import CopyConfig as CopyConfig
from .app import LastSymbols as LastSymbols

__all__ = ["AddingApp", "AddingConfig", "CopyApp", "CopyConfig", "LastSymbols"]
