"""Classification data: settings, the labelled CSV, tokenizers, padded batches.

The split is seeded by ``split_seed`` (not the training seed), so runs with different model seeds
share one test set. With ``group_column`` every group (a movie, an author) lies wholly on one side,
so the test set measures how well the model generalises to groups it never saw. The vocabulary and
label mapping are fitted on the training part only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from ...data.tables import read_csv_columns
from ...data.textfiles import read_text_file
from ...data.tokenizers import TOKENIZERS, Shifted, WordTokenizer
from ...training import TensorBatches

# -----------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class ClassifyConfig:
    data: str | None = None  # a UTF-8 CSV file with a header row
    text_column: str = "text"
    label_column: str = "label"
    group_column: str | None = None  # keep each group's rows on one side of every split
    test_fraction: float = 0.2  # of the groups when group_column is set, else of the rows
    val_fraction: float = 0.1  # of what is left for training: model selection and early stopping
    split_seed: int = 0
    tokenizer: Literal["word", "char", "bpe"] = "word"
    lowercase: bool = True
    min_count: int = 2  # word tokenizer: rarer training words become <unk>
    bpe_vocab_size: int = 4000
    max_length: int = 256  # tokens kept from the start of each text
    batch_size: int = 32
    token_dropout: float = 0.3  # training tokens replaced by <unk> with this probability (word dropout)

    def __post_init__(self) -> None:
        for name in ("test_fraction", "val_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        for name in ("min_count", "bpe_vocab_size", "max_length", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= self.token_dropout < 1:
            raise ValueError(f"token_dropout must be in [0, 1), got {self.token_dropout}")
        for name in ("text_column", "label_column"):
            if not getattr(self, name):
                raise ValueError(f"{name} must name a column of the CSV, got {getattr(self, name)!r}")


# -----------------------------------------------------------------------------
# reading the CSV


@dataclass
class Examples:
    texts: list[str]
    labels: list[str]
    groups: list[str] | None
    source: str


def read_examples_csv(config: ClassifyConfig) -> Examples:
    if config.data is None:
        raise ValueError("task classify needs a CSV file: --data FILE.csv (task.data)")
    columns = read_csv_columns(config.data, {"text_column": config.text_column, "label_column": config.label_column,
                                             "group_column": config.group_column})  # fmt: skip
    labels = [label.strip() for label in columns["label_column"]]
    if "" in labels:
        raise ValueError(
            f"data file {config.data}: {labels.count('')} row(s) have an empty {config.label_column!r} label"
            f" (the first is data row {labels.index('') + 1})"
        )
    return Examples(columns["text_column"], labels, columns.get("group_column"), str(config.data))


def read_texts(path: str | Path, text_column: str = "text") -> list[str]:
    """Examples to label: a ``.csv`` file's ``text_column``, else one example per line of a text file."""
    if str(path).lower().endswith(".csv"):
        return read_csv_columns(path, {"text_column": text_column}, what="input file")["text_column"]
    return read_text_file(path, what="input file").splitlines()


def label_order(labels: Iterable[str]) -> list[str]:
    """The distinct labels, numeric ones in numeric order (2 before 10), else alphabetical."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


# -----------------------------------------------------------------------------
# tokenizers: id 0 is <pad> for every kind


def train_tokenizer(config: ClassifyConfig, texts: list[str]):
    if config.tokenizer == "word":
        return WordTokenizer.train(texts, min_count=config.min_count)
    options = {"vocab_size": config.bpe_vocab_size} if config.tokenizer == "bpe" else {}
    return Shifted(TOKENIZERS[config.tokenizer].train("\n".join(texts), **options))


# -----------------------------------------------------------------------------
# batches


def encode_texts(tokenizer, texts: Sequence[str], *, lowercase: bool, max_length: int) -> tuple[Tensor, Tensor]:
    """Padded ids ``(N, T)`` (0 past each end) and lengths ``(N,)``; an empty text is one ``<unk>``."""
    encoded = [tokenizer.encode(text.lower() if lowercase else text)[:max_length] or [1] for text in texts]
    lengths = torch.tensor([len(ids) for ids in encoded], dtype=torch.long)
    ids = torch.zeros(len(encoded), int(lengths.max()) if encoded else 1, dtype=torch.long)  # (N, T)
    for row, sequence in enumerate(encoded):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
    return ids, lengths


class PaddedBatches:
    """``(ids (B, T_b), targets (B,), lengths (B,))`` batches, each cut to its own longest sequence.

    A resumable :class:`~rnnkit.training.TensorBatches` underneath; cutting the padding that no
    sequence in the batch needs saves the work of the widest text in the whole data set. With
    ``token_dropout`` each token becomes ``<unk>`` (id 1) with that probability, drawn from a
    generator seeded by epoch and batch, so a resumed run sees the same batches (word dropout,
    Iyyer et al. 2015: a regulariser for small data).
    """

    stateful = False

    def __init__(self, ids: Tensor, targets: Tensor, lengths: Tensor, *, token_dropout: float = 0.0, **options) -> None:
        self.rows = TensorBatches(ids, targets, lengths, **options)
        self.token_dropout = token_dropout

    def shard(self, rank: int, world_size: int) -> PaddedBatches:
        shard = object.__new__(PaddedBatches)
        shard.rows, shard.token_dropout = self.rows.shard(rank, world_size), self.token_dropout
        return shard

    def __len__(self) -> int:
        return len(self.rows)

    def epoch(self, index: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        for b, (ids, targets, lengths) in enumerate(self.rows.epoch(index, start), start):
            ids = ids[:, : int(lengths.max())]  # (B, T_b)
            if self.token_dropout:
                generator = torch.Generator().manual_seed((self.rows.seed * 1_000_003 + index) * 100_003 + b)
                drop = torch.rand(ids.shape, generator=generator) < self.token_dropout  # (B, T_b)
                ids = ids.masked_fill(drop & (ids != 0), 1)
            yield ids, targets, lengths
