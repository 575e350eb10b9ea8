"""Parallel text: sentence pairs from a tab-separated file, normalised, deduplicated and filtered.

A pairs file holds one pair a line, ``source TAB target`` (or wider rows, with the two columns
chosen by index), UTF-8 (the Tatoeba/Anki exports, a Moses-style TSV). Every field is put in
Unicode normal form C, so that ``é`` written as one code point or as ``e`` plus a combining accent
is one string, and stripped of surrounding white space.

>>> pairs = parse_pairs(["Go.\\tVa !", "Go.\\tVa !", "Hi.\\tSalut !"])
>>> pairs
[('Go.', 'Va !'), ('Go.', 'Va !'), ('Hi.', 'Salut !')]
>>> deduplicate(pairs)
[('Go.', 'Va !'), ('Hi.', 'Salut !')]
>>> filter_length([("a b c", "x"), ("a", "y")], max_words=2)
([('a', 'y')], 1)
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from .textfiles import read_text_file

Pair = tuple[str, str]


def normalize(text: str) -> str:
    """``text`` in Unicode normal form C, without surrounding white space."""
    return unicodedata.normalize("NFC", text).strip()


def parse_pairs(
    lines: Iterable[str], *, source_column: int = 0, target_column: int = 1, where: str = "input"
) -> list[Pair]:
    """The ``(source, target)`` of every line, in order, normalised (:func:`normalize`).

    Blank lines are skipped; a line without a tab, or with an empty source or target, is a
    ``ValueError`` naming the line (``where`` names the file)."""
    for name, value in (("source_column", source_column), ("target_column", target_column)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer column index, got {type(value).__name__} {value!r}")
    if source_column == target_column:
        raise ValueError(f"source_column and target_column must differ, got {source_column} for both")
    pairs: list[Pair] = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise ValueError(f"{where} line {number} has no tab: expected source TAB target, got {line[:60]!r}")
        try:
            source, target = normalize(fields[source_column]), normalize(fields[target_column])
        except IndexError:
            raise ValueError(
                f"{where} line {number} has {len(fields)} tab-separated columns, but source_column={source_column}"
                f" and target_column={target_column}"
            ) from None
        if not source or not target:
            side = "source" if not source else "target"
            raise ValueError(f"{where} line {number} has an empty {side}: expected source TAB target, got {line[:60]!r}")
        pairs.append((source, target))
    if not pairs:
        raise ValueError(f"{where} holds no sentence pairs")
    return pairs


def read_pairs(path: str | Path, *, source_column: int = 0, target_column: int = 1) -> list[Pair]:
    """The sentence pairs of the UTF-8 file ``path`` (:func:`parse_pairs`); a missing, empty,
    binary or undecodable file is a clear error (:func:`~rnnkit.data.textfiles.read_text_file`)."""
    text = read_text_file(path, what="pairs file").lstrip("\ufeff")
    return parse_pairs(text.splitlines(), source_column=source_column, target_column=target_column, where=str(path))


def deduplicate(pairs: Sequence[Pair]) -> list[Pair]:
    """Each distinct pair once, where it first came."""
    return list(dict.fromkeys(pairs))


def words(text: str) -> int:
    """The number of white-space separated words of ``text``."""
    return len(text.split())


def filter_length(pairs: Sequence[Pair], *, max_words: int) -> tuple[list[Pair], int]:
    """The pairs with at most ``max_words`` words on either side, and how many were dropped."""
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
        raise ValueError(f"max_words must be a positive integer, got {max_words!r}")
    kept = [p for p in pairs if words(p[0]) <= max_words and words(p[1]) <= max_words]
    return kept, len(pairs) - len(kept)


def warn_dropped(dropped: int, total: int, max_words: int, where: str) -> None:
    """The one warning line for the pairs a length filter dropped (nothing when none were)."""
    if dropped:
        warnings.warn(
            f"{where}: dropped {dropped:,} of {total:,} pairs with more than {max_words} words on a side"
            f" (set task.max_words to keep them)",
            RuntimeWarning,
            stacklevel=2,
        )
