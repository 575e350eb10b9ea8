"""Machine translation from sentence pairs: ``rnnkit train translate`` and ``rnnkit translate RUN_DIR``."""

from .app import TranslateApp as TranslateApp
from .app import TranslateConfig as TranslateConfig
from .memory import TranslationMemory as TranslationMemory
from .translator import Translator as Translator

__all__ = ["TranslateApp", "TranslateConfig", "TranslationMemory", "Translator"]
