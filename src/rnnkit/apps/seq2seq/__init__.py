"""Sequence-to-sequence tasks (reverse, sort, copy) for an attentional encoder-decoder: ``rnnkit train seq2seq``."""

from .app import Seq2SeqApp as Seq2SeqApp
from .app import SequenceTaskConfig as SequenceTaskConfig
from .sequences import END as END
from .sequences import FIRST_SYMBOL as FIRST_SYMBOL
from .sequences import KINDS as KINDS
from .sequences import PAD as PAD
from .sequences import START as START
from .sequences import Seq2SeqObjective as Seq2SeqObjective
from .sequences import SequencePairs as SequencePairs
from .sequences import exact_match as exact_match
from .sequences import exact_match_accuracy as exact_match_accuracy
from .sequences import sequence_pairs as sequence_pairs

__all__ = ["Seq2SeqApp", "SequenceTaskConfig", "END", "FIRST_SYMBOL", "KINDS", "PAD", "START", "Seq2SeqObjective",
           "SequencePairs", "exact_match", "exact_match_accuracy", "sequence_pairs"]  # fmt: skip
