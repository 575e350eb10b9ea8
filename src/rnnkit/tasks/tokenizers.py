"""Deprecated: moved to :mod:`rnnkit.data.tokenizers`."""

from rnnkit.data.tokenizers import TOKENIZERS as TOKENIZERS
from rnnkit.data.tokenizers import UNKNOWN as UNKNOWN
from rnnkit.data.tokenizers import BPETokenizer as BPETokenizer
from rnnkit.data.tokenizers import CharTokenizer as CharTokenizer
from rnnkit.data.tokenizers import tokenizer_from_json as tokenizer_from_json
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.data.tokenizers")
