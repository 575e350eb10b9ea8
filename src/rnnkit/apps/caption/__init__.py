"""Image captioning with soft attention: ``rnnkit train caption`` and ``rnnkit caption``."""

from .app import CaptionApp as CaptionApp
from .captioner import CAPTIONER_FILE as CAPTIONER_FILE
from .captioner import Captioner as Captioner
from .data import CaptionConfig as CaptionConfig
from .data import read_captions as read_captions

__all__ = ["CaptionApp", "CAPTIONER_FILE", "Captioner", "CaptionConfig", "read_captions"]
