"""Deprecated: moved to :mod:`rnnkit.apps.seq2seq`."""

from rnnkit.apps.seq2seq import END as END
from rnnkit.apps.seq2seq import exact_match as exact_match
from rnnkit.apps.seq2seq import exact_match_accuracy as exact_match_accuracy
from rnnkit.apps.seq2seq import FIRST_SYMBOL as FIRST_SYMBOL
from rnnkit.apps.seq2seq import KINDS as KINDS
from rnnkit.apps.seq2seq import PAD as PAD
from rnnkit.apps.seq2seq import Seq2SeqObjective as Seq2SeqObjective
from rnnkit.apps.seq2seq import sequence_pairs as sequence_pairs
from rnnkit.apps.seq2seq import SequencePairs as SequencePairs
from rnnkit.apps.seq2seq import SequenceTaskConfig as SequenceTaskConfig
from rnnkit.apps.seq2seq import START as START
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.apps.seq2seq")
