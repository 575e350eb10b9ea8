"""Online handwriting recognition from pen strokes: ``rnnkit train handwriting`` and ``rnnkit recognize``."""

from .app import HandwritingApp as HandwritingApp
from .data import HandwritingConfig as HandwritingConfig
from .data import StrokeBatches as StrokeBatches
from .plots import strokes_figure as strokes_figure
from .recognizer import RECOGNIZER_FILE as RECOGNIZER_FILE
from .recognizer import Recognizer as Recognizer
from .strings import DigitStringApp as DigitStringApp
from .strings import StringRecognizer as StringRecognizer

__all__ = ["HandwritingApp", "HandwritingConfig", "StrokeBatches", "strokes_figure", "RECOGNIZER_FILE", "Recognizer", "DigitStringApp",
           "StringRecognizer"]
