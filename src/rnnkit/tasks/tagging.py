"""Sequence tagging (many-to-many, aligned): one label per token, from CoNLL-style columns.

``rnnkit train tag --data FILE``: a token per line with its label in another column, a blank line
between sentences (CoNLL-2000/2003). Reports per-token accuracy and span F1 as conlleval scores
chunks (Tjong Kim Sang & Buchholz 2000): a span counts only when its type and both ends match.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch

from ..config import from_dict
from ..models import ManyToMany, ManyToManyConfig
from ..training import SupervisedObjective, TensorBatches
from ._registry import Prepared, Task, register_task
from .textfiles import read_text_file

PAD, UNKNOWN = "<pad>", "<unk>"
Sentence = list[tuple[str, str]]


@dataclass(frozen=True)
class TagConfig:
    data: str | None = None
    token_column: int = 0
    label_column: int = -1
    lowercase: bool = False
    min_count: int = 1
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    batch_size: int = 32
    split_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 0.5:
                raise ValueError(f"{name} must be in (0, 0.5), got {getattr(self, name)}")
        if self.min_count < 1 or self.batch_size < 1:
            raise ValueError(f"min_count and batch_size must be positive, got {self.min_count}, {self.batch_size}")


def read_conll(path: str, token_column: int = 0, label_column: int = -1) -> list[Sentence]:
    """Sentences of (token, label) pairs; ``-DOCSTART-`` lines are skipped."""
    if path is None:
        raise ValueError("tagging needs --data FILE: token and label columns, a blank line between sentences")
    sentences: list[Sentence] = []
    current: Sentence = []
    for number, line in enumerate(read_text_file(path).splitlines(), 1):
        fields = line.split()
        if not fields:
            if current:
                sentences.append(current)
                current = []
            continue
        if fields[0] == "-DOCSTART-":
            continue
        try:
            current.append((fields[token_column], fields[label_column]))
        except IndexError:
            raise ValueError(
                f"{path} line {number}: expected a token in column {token_column} and a label in column"
                f" {label_column}, got {len(fields)} column(s): {line.strip()!r}"
            ) from None
        if len(fields) < 2:
            raise ValueError(f"{path} line {number}: expected at least a token and a label, got {line.strip()!r}")
    if current:
        sentences.append(current)
    if not sentences:
        raise ValueError(f"{path} holds no sentences")
    return sentences


def _parts(label: str) -> tuple[str, str]:
    """``"B-PER"`` -> ("B", "PER"); ``"O"`` -> ("O", ""); an unprefixed ``"PER"`` reads as inside."""
    if label == "O":
        return "O", ""
    prefix, dash, kind = label.partition("-")
    return (prefix, kind) if dash and prefix in ("B", "I", "E", "S") else ("I", label)


def spans(labels: list[str]) -> set[tuple[str, int, int]]:
    """Chunks ``(type, start, end)`` from IOB1, IOB2 (BIO) or BIOES labels, by conlleval's rules
    (its ``endOfChunk`` and ``startOfChunk``): a type change ends a chunk and starts another."""
    found: set[tuple[str, int, int]] = set()
    start, previous, previous_kind = None, "O", ""
    for i, label in enumerate([*labels, "O"]):
        tag, kind = _parts(label)
        ends = (previous in ("B", "I") and tag in ("B", "S", "O")) or previous in ("E", "S") or (
            previous != "O" and previous_kind != kind
        )
        begins = tag in ("B", "S") or (previous in ("E", "S", "O") and tag in ("E", "I")) or (
            tag != "O" and previous_kind != kind
        )
        if ends and start is not None:
            found.add((previous_kind, start, i))
            start = None
        if begins:
            start = i
        previous, previous_kind = tag, kind
    return found


def span_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Micro precision, recall and F1 over chunks, plus F1 per type (``f1/PER``...)."""
    correct, guessed, actual = Counter(), Counter(), Counter()
    for g, p in zip(gold, predicted):
        gold_spans, predicted_spans = spans(g), spans(p)
        for kind, *_ in gold_spans:
            actual[kind] += 1
        for kind, *_ in predicted_spans:
            guessed[kind] += 1
        for kind, *_ in gold_spans & predicted_spans:
            correct[kind] += 1

    def prf(c: int, g: int, a: int) -> tuple[float, float, float]:
        precision = c / g if g else 0.0
        recall = c / a if a else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1

    precision, recall, f1 = prf(sum(correct.values()), sum(guessed.values()), sum(actual.values()))
    scores = {"precision": precision, "recall": recall, "f1": f1}
    for kind in sorted(actual | guessed):
        scores[f"f1/{kind}"] = prf(correct[kind], guessed[kind], actual[kind])[2]
    return scores


def _split(sentences: list[Sentence], config: TagConfig) -> tuple[list, list, list]:
    order = list(range(len(sentences)))
    random.Random(config.split_seed).shuffle(order)
    n_test = max(1, round(len(order) * config.test_fraction))
    n_val = max(1, round(len(order) * config.val_fraction))
    if len(order) - n_test - n_val < 1:
        raise ValueError(f"data too short for one batch: {len(order)} sentences cannot be split three ways")
    pick = lambda ids: [sentences[i] for i in ids]  # noqa: E731
    return pick(order[n_test + n_val :]), pick(order[n_test : n_test + n_val]), pick(order[:n_test])


def _encode(sentences, vocab, labels, lowercase):
    lengths = torch.tensor([len(s) for s in sentences])
    tokens = torch.zeros(len(sentences), int(lengths.max()), dtype=torch.long)  # 0 is <pad>
    tags = torch.zeros_like(tokens)
    unknown = vocab[UNKNOWN]
    for i, sentence in enumerate(sentences):
        for t, (word, label) in enumerate(sentence):
            tokens[i, t] = vocab.get(word.lower() if lowercase else word, unknown)
            tags[i, t] = labels.get(label, 0)
    return tokens, tags, lengths


def _prepare(task: TagConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
    sentences = read_conll(task.data, task.token_column, task.label_column)
    train, val, test = _split(sentences, task)
    counts = Counter(w.lower() if task.lowercase else w for s in train for w, _ in s)
    words = [w for w, c in counts.most_common() if c >= task.min_count]
    vocab = {w: i for i, w in enumerate([PAD, UNKNOWN, *words])}
    label_names = sorted({label for s in train for _, label in s})
    if len(label_names) < 2:
        raise ValueError(f"tagging needs at least two labels in the training data, got {label_names}")
    labels = {name: i for i, name in enumerate(label_names)}
    encoded = [_encode(part, vocab, labels, task.lowercase) for part in (train, val, test)]

    settings = dict(model_settings)
    settings["input"] = {"embedding_dim": 100, **settings.get("input", {}), "vocab_size": len(vocab)}
    settings["outputs"] = len(labels)
    model = ManyToMany(from_dict(ManyToManyConfig, settings, where="model"))

    def report(result) -> str:
        tokens, tags, lengths = encoded[2]
        model.eval()
        with torch.no_grad():
            logits, _ = model(tokens, lengths=lengths)
        predicted = logits.argmax(-1)
        gold_labels, predicted_labels, right, total = [], [], 0, 0
        for i, n in enumerate(lengths.tolist()):
            gold_labels.append([label_names[j] for j in tags[i, :n].tolist()])
            predicted_labels.append([label_names[j] for j in predicted[i, :n].tolist()])
            right += int((predicted[i, :n] == tags[i, :n]).sum())
            total += n
        scores = span_scores(gold_labels, predicted_labels)
        lines = [
            f"tagging: {len(sentences):,} sentences ({len(train)} train, {len(val)} validation, {len(test)} test),"
            f" {len(label_names)} labels, vocabulary {len(vocab):,}",
            f"test token accuracy {right / total:.4f}; span precision {scores['precision']:.4f},"
            f" recall {scores['recall']:.4f}, F1 {scores['f1']:.4f}",
        ]
        per_type = [f"{k[3:]} {v:.3f}" for k, v in scores.items() if k.startswith("f1/")]
        if per_type:
            lines.append("span F1 by type: " + ", ".join(per_type))
        return "\n".join(lines)

    artifacts = {"vocabulary.json": json.dumps({"tokens": list(vocab), "labels": label_names,
                                                "lowercase": task.lowercase}, ensure_ascii=False)}  # fmt: skip
    return Prepared(
        model, SupervisedObjective("cross_entropy"),
        TensorBatches(*encoded[0], batch_size=task.batch_size, seed=seed),
        TensorBatches(*encoded[1], batch_size=max(task.batch_size, 128), shuffle=False),
        "sentences", report, artifacts,
    )  # fmt: skip


register_task(Task(
    name="tag",
    help="sequence tagging on CoNLL-style columns (token, label; a blank line between sentences)",
    example="rnnkit train tag --data train.conll --model.encoder.bidirectional=true",
    config_class=TagConfig,
    prepare=_prepare,
    model_name="many_to_many",
    default_model={"encoder": {"cell": "lstm", "hidden_size": 128, "bidirectional": True}, "head_dropout": 0.3},
    default_train={"lr": 2e-3, "max_epochs": 20, "clip_norm": 5.0, "patience": 4},
    arguments={"--data": "task.data"},
))  # fmt: skip
