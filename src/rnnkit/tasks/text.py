"""Deprecated: moved to :mod:`rnnkit.apps.text`."""

from rnnkit.apps.text import generate_text as generate_text
from rnnkit.apps.text import load_text as load_text
from rnnkit.apps.text import load_tokenizer as load_tokenizer
from rnnkit.apps.text import TextConfig as TextConfig
from rnnkit.apps.text import TOKENIZER_FILE as TOKENIZER_FILE
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.apps.text")
