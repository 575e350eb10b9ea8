"""Music generation: four-voice chorales (or melodies) on a 16th-note grid; ``rnnkit train music``, ``compose``."""

from .app import MusicApp as MusicApp
from .app import MusicConfig as MusicConfig
from .composer import Composer as Composer

__all__ = ["MusicApp", "MusicConfig", "Composer"]
