"""Text generation: a character (or BPE) language model; ``rnnkit train text``, ``generate``, ``demo``."""

from .app import TextApp as TextApp
from .app import TextConfig as TextConfig
from .app import load_text as load_text
from .generator import TOKENIZER_FILE as TOKENIZER_FILE
from .generator import TextGenerator as TextGenerator
from .generator import generate_text as generate_text
from .generator import load_tokenizer as load_tokenizer

__all__ = ["TextApp", "TextConfig", "load_text", "TOKENIZER_FILE", "TextGenerator", "generate_text", "load_tokenizer"]
