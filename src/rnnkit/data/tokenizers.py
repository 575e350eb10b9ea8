"""Vocabularies and tokenizers: one :class:`Vocabulary` under characters, words and tags; BPE.

A :class:`Vocabulary` maps symbols to ids and back; the character tokenizer, the word tokenizer
and the tagger's token and label maps are each one. Byte-pair encoding comes from the optional
``tokenizers`` package (the ``text`` extra). Everything saves to and loads from JSON in the run
directory (``tokenizer.json``, ``classifier.json``, ``vocabulary.json``), never a pickle.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from .. import _extras

UNKNOWN = "\ufffd"  # stands for characters the training text did not have
PAD, UNK = "<pad>", "<unk>"  # the word-level specials: id 0 pads, id 1 stands for an unseen token


class Vocabulary:
    """Symbols in id order: ``symbols[i]`` has id ``i``; ``unknown`` (if any) stands for unseen ones.

    >>> vocab = Vocabulary.from_counts(Counter("abracadabra"), specials=(PAD, UNK), unknown=UNK, min_count=2)
    >>> vocab.symbols
    ['<pad>', '<unk>', 'a', 'b', 'r']
    >>> vocab.encode("bad"), vocab.decode([3, 2, 4])
    ([3, 2, 1], ['b', 'a', 'r'])
    """

    def __init__(self, symbols: Iterable[str], *, unknown: str | None = None) -> None:
        self.symbols = list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        if len(self.index) != len(self.symbols):
            repeated = next(s for s in self.symbols if self.symbols.count(s) > 1)
            raise ValueError(f"a vocabulary's symbols must be distinct, got {repeated!r} twice")
        if unknown is not None and unknown not in self.index:
            raise ValueError(f"the unknown symbol {unknown!r} must be one of the vocabulary's symbols")
        self.unknown = unknown

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        *,
        specials: Sequence[str] = (),
        unknown: str | None = None,
        min_count: int = 1,
        ties: Literal["sorted", "seen"] = "sorted",
    ) -> Vocabulary:
        """``specials``, then the symbols counted at least ``min_count`` times, most frequent
        first; equal counts in alphabetical order (``"sorted"``) or in order of first count
        (``"seen"``, as :meth:`Counter.most_common`)."""
        kept = [s for s, n in counts.items() if n >= min_count and s not in specials]
        if ties == "sorted":
            kept.sort(key=lambda s: (-counts[s], s))
        else:
            kept.sort(key=lambda s: -counts[s])  # stable: first counted first
        return cls([*specials, *kept], unknown=unknown)

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.index

    def encode(self, symbols: Iterable[str]) -> list[int]:
        """The id of each symbol; an unseen one gets ``unknown``'s id (without one: a ValueError)."""
        if self.unknown is None:
            try:
                return [self.index[s] for s in symbols]
            except KeyError as error:
                raise ValueError(f"{error.args[0]!r} is not in the vocabulary (which has no unknown symbol)") from None
        unknown = self.index[self.unknown]
        return [self.index.get(s, unknown) for s in symbols]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.symbols[i] for i in ids]

    def to_json(self) -> list[str]:
        return list(self.symbols)


# -----------------------------------------------------------------------------
# characters and words


class _OnVocabulary:
    """What a tokenizer over a :class:`Vocabulary` has: its symbols and ids, its JSON."""

    kind = ""
    vocabulary: Vocabulary

    @property
    def symbols(self) -> list[str]:
        return self.vocabulary.symbols

    @property
    def index(self) -> dict[str, int]:
        return self.vocabulary.index

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "symbols": self.vocabulary.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]):
        return cls(data["symbols"])


class CharTokenizer(_OnVocabulary):
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
        self.vocabulary = Vocabulary(symbols, unknown=UNKNOWN)

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    def encode(self, text: str) -> list[int]:
        return self.vocabulary.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.vocabulary.decode(ids))

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of ``text`` the vocabulary lacks (each encodes as U+FFFD)."""
        return sorted({c for c in text if c not in self.vocabulary.index})


TOKEN_PATTERN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]|_")  # words (with contractions), single punctuation


class WordTokenizer(_OnVocabulary):
    """Word tokens from a regular expression; vocabulary from the training texts.

    Ids 0 and 1 are ``<pad>`` and ``<unk>``; words seen fewer than ``min_count`` times in
    training become ``<unk>``, so the model learns what an unseen word looks like.

    >>> tok = WordTokenizer.train(["a fine film.", "a dull, dull film."], min_count=2)
    >>> tok.symbols
    ['<pad>', '<unk>', '.', 'a', 'dull', 'film']
    >>> tok.encode("a fine film!")
    [3, 1, 5, 1]
    """

    kind = "word"
    specials = (PAD, UNK)

    def __init__(self, symbols: Sequence[str]) -> None:
        if tuple(symbols[:2]) != self.specials:
            raise ValueError(f"a word vocabulary must start with {self.specials}, got {list(symbols[:2])}")
        self.vocabulary = Vocabulary(symbols, unknown=UNK)

    @staticmethod
    def tokens(text: str) -> list[str]:
        return TOKEN_PATTERN.findall(text)

    @classmethod
    def train(cls, texts: Iterable[str], *, min_count: int = 2) -> WordTokenizer:
        counts = Counter(token for text in texts for token in cls.tokens(text))
        return cls(Vocabulary.from_counts(counts, specials=cls.specials, min_count=min_count).symbols)

    def encode(self, text: str) -> list[int]:
        return self.vocabulary.encode(self.tokens(text))


# -----------------------------------------------------------------------------
# byte-pair encoding


def _require_tokenizers():
    return _extras.require("tokenizers", "text", "the BPE tokenizer")


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


# -----------------------------------------------------------------------------
# by kind, and with room for padding


TOKENIZERS: dict[str, Callable[..., Any]] = {"char": CharTokenizer, "bpe": BPETokenizer}


def tokenizer_from_json(data: dict[str, Any]):
    """A character or BPE tokenizer from its ``to_json()`` (``tokenizer.json``)."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in TOKENIZERS:
        raise ValueError(f"tokenizer kind must be one of {', '.join(map(repr, TOKENIZERS))}, got {kind!r}")
    return TOKENIZERS[kind].from_json(data)


class Shifted:
    """A character or BPE tokenizer with every id moved up by two: 0 is ``<pad>``, 1 ``<unk>`` (a dropped token)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.kind = inner.kind

    @property
    def vocab_size(self) -> int:
        return self.inner.vocab_size + 2

    def encode(self, text: str) -> list[int]:
        return [i + 2 for i in self.inner.encode(text)]

    def to_json(self) -> dict[str, Any]:
        return self.inner.to_json()


def padded_tokenizer_from_json(data: dict[str, Any]):
    """A tokenizer whose id 0 is ``<pad>`` and 1 ``<unk>``: the word tokenizer as saved, or a
    character or BPE one (saved as :func:`tokenizer_from_json` reads it) shifted by two."""
    if isinstance(data, dict) and data.get("kind") == "word":
        return WordTokenizer.from_json(data)
    return Shifted(tokenizer_from_json(data))
