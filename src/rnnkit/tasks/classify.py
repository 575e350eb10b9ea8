"""Text classification (sentiment analysis): a many-to-one recurrent model over a labelled CSV.

``rnnkit train classify --data FILE.csv --text-column C --label-column L [--group-column G]``
trains; ``rnnkit predict RUN_DIR [FILE]`` labels new text. Sections, in order: settings, reading
the CSV, the split, tokenizers, batches, the task (prepare and report), prediction.

The split is seeded by ``split_seed`` (not the training seed), so runs with different model seeds
share one test set. With ``group_column`` every group (a movie, an author) lies wholly on one side,
so the test set measures how well the model generalises to groups it never saw. The vocabulary and
label mapping are fitted on the training part only and saved as ``classifier.json``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from .._io import load_tensors, read_json, write_json
from ..config import from_dict
from ..models import ManyToOne, ManyToOneConfig
from ..training import SupervisedObjective, TensorBatches
from ..data.splits import Split as Split
from ..data.splits import split_examples as split_examples
from ..data.tables import read_csv_columns as read_csv_columns
from ..data.textfiles import read_text_file
from ..data.tokenizers import TOKENIZERS, Shifted, WordTokenizer
from ..data.tokenizers import padded_tokenizer_from_json as tokenizer_from_dict
from ..metrics import classification as metrics
from ._registry import Prepared, Task, register_task

CLASSIFIER_FILE = "classifier.json"  # tokenizer, labels and text settings, for `rnnkit predict`
RESULTS_FILE = "test_results.json"  # the test-set figures the report prints
EVAL_BATCH = 256


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


@torch.no_grad()
def predict_probabilities(model: ManyToOne, ids: Tensor, lengths: Tensor, batch_size: int = EVAL_BATCH) -> Tensor:
    """Class probabilities ``(N, C)`` for padded ``ids`` ``(N, T)``, in eval mode, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, ids.shape[0], batch_size):
        x, n = ids[start : start + batch_size], lengths[start : start + batch_size]
        logits = model(x[:, : int(n.max())].to(device), lengths=n.to(device))  # (B, C)
        out.append(torch.softmax(logits.float(), dim=-1).cpu())
    return torch.cat(out) if out else torch.zeros(0, model.config.outputs)


# -----------------------------------------------------------------------------
# the task


def _label_order(labels: Iterable[str]) -> list[str]:
    distinct = set(labels)
    try:  # numeric labels in numeric order (2 before 10)
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


def _prepare(task: ClassifyConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
    examples = read_examples_csv(task)
    labels = _label_order(examples.labels)
    if len(labels) < 2:
        raise ValueError(
            f"column {task.label_column!r} of {examples.source} has a single class ({labels[0]!r}):"
            " classification needs at least two"
        )
    if len(labels) > max(20, len(examples.labels) // 2):
        warnings.warn(
            f"column {task.label_column!r} has {len(labels)} classes for {len(examples.labels)} rows:"
            " is it the label column?",
            stacklevel=2,
        )
    split = split_examples(len(examples.texts), examples.groups, test_fraction=task.test_fraction,
                           val_fraction=task.val_fraction, seed=task.split_seed)  # fmt: skip
    if len(split.train) < task.batch_size:
        raise ValueError(
            f"data too short for one batch: the training split of {examples.source} has {len(split.train)} rows,"
            f" fewer than batch_size={task.batch_size}"
        )
    label_index = {label: i for i, label in enumerate(labels)}
    targets = torch.tensor([label_index[label] for label in examples.labels], dtype=torch.long)  # (N,)
    tokenizer = train_tokenizer(task, [examples.texts[i].lower() if task.lowercase else examples.texts[i]
                                       for i in split.train])  # fmt: skip
    ids, lengths = encode_texts(tokenizer, examples.texts, lowercase=task.lowercase, max_length=task.max_length)

    def part(rows: list[int], **options) -> PaddedBatches:
        index = torch.tensor(rows, dtype=torch.long)
        return PaddedBatches(ids[index], targets[index], lengths[index], **options)

    train = part(split.train, batch_size=task.batch_size, seed=seed, token_dropout=task.token_dropout)
    val = part(split.val, batch_size=EVAL_BATCH, shuffle=False)

    settings = dict(model_settings)
    settings["input"] = {"embedding_dim": 128, **settings.get("input", {}), "vocab_size": tokenizer.vocab_size}
    settings["outputs"] = len(labels)
    model = ManyToOne(from_dict(ManyToOneConfig, settings, where="model"))

    test_rows = torch.tensor(split.test, dtype=torch.long)
    majority, majority_accuracy = metrics.majority_baseline(targets[split.train], targets[test_rows], len(labels))
    unknown = (ids[test_rows] == 1).sum().item() / lengths[test_rows].sum().item() if task.tokenizer == "word" else None

    def report(result) -> str:
        weights = Path(result.run_dir) / "model.safetensors" if result.run_dir is not None else None
        if weights is not None and weights.is_file():  # the weights model selection chose
            model.load_state_dict(load_tensors(weights))
        probabilities = predict_probabilities(model, ids[test_rows], lengths[test_rows])
        truth, guess = targets[test_rows], probabilities.argmax(-1)
        confusion = metrics.confusion_matrix(truth, guess, len(labels))
        scores = metrics.per_class(confusion)
        results = {
            "accuracy": metrics.accuracy(truth, guess),
            "macro_f1": scores.f1.mean().item(),
            "majority_class": labels[majority],
            "majority_accuracy": majority_accuracy,
            "labels": labels,
            "confusion": confusion.tolist(),
            "per_class": {label: {"precision": scores.precision[i].item(), "recall": scores.recall[i].item(),
                                  "f1": scores.f1[i].item(), "support": int(scores.support[i])}
                          for i, label in enumerate(labels)},
            "rows": {"train": len(split.train), "val": len(split.val), "test": len(split.test)},
            "groups": dict(zip(("train", "val", "test"), split.groups)) if split.groups else None,
        }  # fmt: skip
        if result.run_dir is not None:
            write_json(Path(result.run_dir) / RESULTS_FILE, results)
        sizes = f"train {len(split.train):,}, validation {len(split.val):,}, test {len(split.test):,} rows"
        if split.groups:
            sizes += (f"; by {task.group_column!r}: {split.groups[0]:,} / {split.groups[1]:,} / {split.groups[2]:,}"
                      " groups, each wholly on one side")  # fmt: skip
        vocabulary = f"vocabulary {tokenizer.vocab_size:,} ({task.tokenizer}"
        if unknown is not None:
            vocabulary += f", min_count {task.min_count}; {unknown:.1%} of test tokens unknown"
        vocabulary += f"), token_dropout {task.token_dropout:g}"
        return "\n".join([
            f"data: {examples.source}, {len(examples.texts):,} rows, {len(labels)} classes; {sizes}",
            vocabulary,
            f"test accuracy {results['accuracy']:.4f}   macro-F1 {results['macro_f1']:.4f}"
            f"   (majority class {labels[majority]!r}: {majority_accuracy:.4f})",
            "",
            metrics.format_per_class(scores, labels),
            "",
            metrics.format_confusion(confusion, labels),
        ])  # fmt: skip

    saved = {
        "tokenizer": tokenizer.to_json(),
        "labels": labels,
        "text_column": task.text_column,
        "lowercase": task.lowercase,
        "max_length": task.max_length,
    }
    artifacts = {CLASSIFIER_FILE: json.dumps(saved, ensure_ascii=False)}
    return Prepared(model, SupervisedObjective("cross_entropy"), train, val, "examples", report, artifacts)


register_task(Task(
    name="classify",
    help="a text classifier (sentiment analysis) on a labelled CSV: embedding, bidirectional LSTM, pooling",
    example="rnnkit train classify --data reviews.csv --text-column text --label-column label --group-column movie",
    config_class=ClassifyConfig,
    prepare=_prepare,
    model_name="many_to_one",
    default_model={"encoder": {"cell": "lstm", "hidden_size": 128, "bidirectional": True},
                   "input": {"embedding_dim": 128}, "pooling": "max", "head_dropout": 0.5},
    default_train={"lr": 2e-3, "max_epochs": 20, "patience": 3, "clip_norm": 1.0, "log_every": 50},
    arguments={"--data": "task.data", "--text-column": "task.text_column", "--label-column": "task.label_column",
               "--group-column": "task.group_column", "--tokenizer": "task.tokenizer"},
))  # fmt: skip


# -----------------------------------------------------------------------------
# prediction


class Classifier:
    """A trained ``classify`` run, ready to label text: ``Classifier.load(run_dir).predict(texts)``."""

    def __init__(self, model: ManyToOne, tokenizer, labels: Sequence[str], *, text_column: str = "text",
                 lowercase: bool = True, max_length: int = 256) -> None:  # fmt: skip
        if model.config.outputs != len(labels):
            raise ValueError(f"the model has {model.config.outputs} outputs but there are {len(labels)} labels")
        self.model, self.tokenizer, self.labels = model.eval(), tokenizer, list(labels)
        self.text_column, self.lowercase, self.max_length = text_column, lowercase, max_length

    @classmethod
    def load(cls, run_dir: str | Path) -> Classifier:
        from ..training import load

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"run directory {run_dir} does not exist")
        path = run_dir / CLASSIFIER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: is {run_dir} a run directory of 'rnnkit train classify'?")
        saved = read_json(path)
        model = load(run_dir)
        if not isinstance(model, ManyToOne):
            raise ValueError(f"{run_dir} holds a {type(model).__name__}, not a many-to-one classifier")
        return cls(model, tokenizer_from_dict(saved["tokenizer"]), saved["labels"], text_column=saved["text_column"],
                   lowercase=saved["lowercase"], max_length=saved["max_length"])  # fmt: skip

    def probabilities(self, texts: Sequence[str]) -> Tensor:
        """``(N, C)`` class probabilities, columns in the order of ``labels``."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, got one string: wrap it in a list")
        if not texts:
            return torch.zeros(0, len(self.labels))
        ids, lengths = encode_texts(self.tokenizer, texts, lowercase=self.lowercase, max_length=self.max_length)
        return predict_probabilities(self.model, ids, lengths)

    def predict(self, texts: Iterable[str], batch_size: int = EVAL_BATCH) -> Iterator[tuple[str, float]]:
        """``(label, probability)`` for each text, in order, ``batch_size`` texts at a time.

        With ``batch_size=1`` each answer comes as soon as its text has arrived (streaming stdin).
        """
        batch: list[str] = []
        for text in texts:
            batch.append(text.rstrip("\r\n"))
            if len(batch) == batch_size:
                yield from self._label(batch)
                batch = []
        if batch:
            yield from self._label(batch)

    def _label(self, texts: list[str]) -> Iterator[tuple[str, float]]:
        best, index = self.probabilities(texts).max(-1)
        for p, i in zip(best.tolist(), index.tolist()):
            yield self.labels[i], p
