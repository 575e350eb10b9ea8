"""Deprecated: moved to :mod:`rnnkit.data.textfiles`."""

from rnnkit.data.textfiles import default_corpus as default_corpus
from rnnkit.data.textfiles import read_text_file as read_text_file
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.data.textfiles")
