"""Tokenizers for text tasks: characters (built in) and byte-pair encoding (the ``text`` extra).

Both save to and load from JSON in the run directory (``tokenizer.json``), never a pickle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

UNKNOWN = "\ufffd"  # stands for characters the training text did not have


class CharTokenizer:
    """One token per character; the vocabulary is every character of the training text.

    >>> tok = CharTokenizer.train("hello world")
    >>> tok.decode(tok.encode("hello"))
    'hello'
    >>> tok.decode(tok.encode("hi!"))  # unseen characters become U+FFFD
    'h\ufffd\ufffd'
    """

    kind = "char"

    def __init__(self, symbols: Sequence[str]) -> None:
        if UNKNOWN not in symbols:
            symbols = [UNKNOWN, *symbols]
        self.symbols = list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        unknown = self.index[UNKNOWN]
        return [self.index.get(c, unknown) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.symbols[i] for i in ids)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "symbols": self.symbols}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CharTokenizer:
        return cls(data["symbols"])


def _require_tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ImportError(
            "the BPE tokenizer needs the 'tokenizers' package: pip install 'rnnkit[text]'"
            " (or pip install tokenizers)"
        ) from None
    return tokenizers


class BPETokenizer:
    """Byte-level byte-pair encoding (Sennrich et al. 2016), trained on the training text.

    Needs the optional ``tokenizers`` package (``pip install 'rnnkit[text]'``).
    """

    kind = "bpe"

    def __init__(self, backend) -> None:
        self.backend = backend

    @classmethod
    def train(cls, text: str, vocab_size: int = 2000) -> BPETokenizer:
        tokenizers = _require_tokenizers()
        from tokenizers import decoders, models, pre_tokenizers, trainers

        backend = tokenizers.Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
        )
        backend.train_from_iterator(_chunks(text), trainer=trainer)
        return cls(backend)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.backend.decode(list(ids))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokenizer": json.loads(self.backend.to_str())}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BPETokenizer:
        tokenizers = _require_tokenizers()
        return cls(tokenizers.Tokenizer.from_str(json.dumps(data["tokenizer"])))


def _chunks(text: str, size: int = 1 << 16):
    for start in range(0, len(text), size):
        yield text[start : start + size]


TOKENIZERS: dict[str, Callable[..., Any]] = {"char": CharTokenizer, "bpe": BPETokenizer}


def tokenizer_from_json(data: dict[str, Any]):
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in TOKENIZERS:
        raise ValueError(f"tokenizer kind must be one of {', '.join(map(repr, TOKENIZERS))}, got {kind!r}")
    return TOKENIZERS[kind].from_json(data)
