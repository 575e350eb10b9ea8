"""Deprecated: moved to :mod:`rnnkit.apps.tagging`."""

from rnnkit.apps.tagging import read_conll as read_conll
from rnnkit.apps.tagging import span_scores as span_scores
from rnnkit.apps.tagging import spans as spans
from rnnkit.apps.tagging import TagConfig as TagConfig
from rnnkit.data.tokenizers import PAD as PAD
from rnnkit.data.tokenizers import UNK as UNKNOWN
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.apps.tagging")
