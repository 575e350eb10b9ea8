"""Sequence tagging on CoNLL-style columns: ``rnnkit train tag``, and ``rnnkit tag``."""

from ...metrics.spans import span_scores as span_scores
from ...metrics.spans import spans as spans
from .app import VOCABULARY_FILE as VOCABULARY_FILE
from .app import TagApp as TagApp
from .app import TagConfig as TagConfig
from .app import read_conll as read_conll
from .tagger import Tagger as Tagger

__all__ = ["span_scores", "spans", "VOCABULARY_FILE", "TagApp", "TagConfig", "read_conll", "Tagger"]
