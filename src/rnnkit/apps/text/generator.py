"""A trained text run as a generator: its tokenizer and model, ``generate(prime, length, ...)``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..._io import read_json, run_file
from ...data.tokenizers import tokenizer_from_json
from ...models.sampling import generate

TOKENIZER_FILE = "tokenizer.json"


def load_tokenizer(run_dir: str | Path):
    path = run_file(run_dir, TOKENIZER_FILE)
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {run_dir} a text run directory?")
    return tokenizer_from_json(read_json(path))


def _check(prime: str, length: int) -> None:
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    if not prime:
        raise ValueError("prime must be at least one character of text, got ''")


class TextGenerator:
    """The tokenizer and language model of a ``rnnkit train text`` run: ``TextGenerator.load(run_dir)``."""

    def __init__(self, model: nn.Module, tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer  # a model with ``step`` (a generative sequence model)

    @classmethod
    def load(cls, run_dir: str | Path) -> TextGenerator:
        from ...training import load

        tokenizer = load_tokenizer(run_dir)
        model = load(run_dir)
        if not hasattr(model, "step"):
            raise ValueError(f"{run_dir} does not hold a generative sequence model")
        vocab = getattr(getattr(model.config, "input", None), "vocab_size", None)
        if vocab != tokenizer.vocab_size or getattr(model.config, "outputs", vocab) != tokenizer.vocab_size:
            raise ValueError(f"{Path(run_dir) / TOKENIZER_FILE} has {tokenizer.vocab_size} tokens, the model"
                             f" {vocab}: the tokenizer is not the model's")  # fmt: skip
        return cls(model, tokenizer)

    def generate(
        self,
        prime: str = "\n",
        length: int = 500,
        *,
        temperature: float = 0.8,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> str:
        """Sample ``length`` tokens after ``prime``; returns the new text.

        ``on_text`` receives each new piece of text as soon as it is decoded (for streaming output).
        """
        _check(prime, length)
        tokenizer = self.tokenizer
        unseen = tokenizer.unknown(prime) if hasattr(tokenizer, "unknown") else []
        if unseen:
            shown = ", ".join(repr(c) for c in unseen[:10]) + (", ..." if len(unseen) > 10 else "")
            warnings.warn(f"the prime has {len(unseen)} character(s) the model never saw in training ({shown}):"
                          " each is read as the unknown symbol U+FFFD", stacklevel=2)  # fmt: skip
        ids: list[int] = []
        shown = ""

        def emit(token: torch.Tensor) -> None:
            nonlocal shown
            ids.append(int(token[0]))
            text = tokenizer.decode(ids)
            if on_text is not None and len(text) > len(shown) and not text.endswith("\ufffd"):
                on_text(text[len(shown):])  # BPE pieces may need the next token to complete a character
                shown = text

        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        prime_ids = torch.tensor([tokenizer.encode(prime)])
        generate(self.model, prime_ids, length, temperature=temperature, top_k=top_k, top_p=top_p,
                 generator=generator, on_token=emit)  # fmt: skip
        text = tokenizer.decode(ids)
        if on_text is not None and len(text) > len(shown):
            on_text(text[len(shown):])
        return text


def generate_text(run_dir: str | Path, *, prime: str = "\n", length: int = 500, **sampling) -> str:
    """Sample ``length`` tokens from the text model in ``run_dir`` after ``prime``; returns the new text.

    ``sampling``: :meth:`TextGenerator.generate`'s ``temperature``, ``top_k``, ``top_p``, ``seed``
    and ``on_text`` (receives each new piece of text as soon as it is decoded, for streaming output).
    """
    _check(prime, length)  # before the run directory is read: a bad argument is the first error
    return TextGenerator.load(run_dir).generate(prime, length, **sampling)
