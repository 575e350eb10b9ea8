"""Sequence tagging (many-to-many, aligned): one label per token, from CoNLL-style columns.

``rnnkit train tag --data FILE``: a token per line with its label in another column, a blank line
between sentences (CoNLL-2000/2003). Reports per-token accuracy and span F1 as conlleval scores
chunks (Tjong Kim Sang & Buchholz 2000, :mod:`rnnkit.metrics.spans`): a span counts only when its
type and both ends match. The vocabularies are saved as ``vocabulary.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch

from ...data.splits import shuffled_split
from ...data.textfiles import read_text_file
from ...data.tokenizers import PAD
from ...data.tokenizers import UNK as UNKNOWN
from ...data.tokenizers import Vocabulary
from ...metrics.spans import span_scores
from ...training import SupervisedObjective, TensorBatches
from ..base import App, Prepared, Run
from ..commands import Command
from .tagger import TAG, VOCABULARY_FILE, Tagger

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


def _encode(sentences, vocab: Vocabulary, labels: Vocabulary, lowercase: bool):
    lengths = torch.tensor([len(s) for s in sentences])
    tokens = torch.zeros(len(sentences), int(lengths.max()), dtype=torch.long)  # 0 is <pad>
    tags = torch.zeros_like(tokens)
    for i, sentence in enumerate(sentences):
        words = [word.lower() if lowercase else word for word, _ in sentence]
        tokens[i, : len(sentence)] = torch.tensor(vocab.encode(words))
        tags[i, : len(sentence)] = torch.tensor(labels.encode([label for _, label in sentence]))
    return tokens, tags, lengths


class TagApp(App):
    name = "tag"
    help = "sequence tagging on CoNLL-style columns (token, label; a blank line between sentences)"
    example = "rnnkit train tag --data train.conll --model.encoder.bidirectional=true"
    config_class = TagConfig
    model_name = "many_to_many"
    default_model = {"encoder": {"cell": "lstm", "hidden_size": 128, "bidirectional": True}, "head_dropout": 0.3}
    default_train = {"lr": 2e-3, "max_epochs": 20, "clip_norm": 5.0, "patience": 4}
    arguments = {"--data": "task.data"}

    def prepare(self, config: TagConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        sentences = read_conll(config.data, config.token_column, config.label_column)
        split = shuffled_split(len(sentences), val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                               seed=config.split_seed, what="sentences")  # fmt: skip
        train, val, test = ([sentences[i] for i in rows] for rows in (split.train, split.val, split.test))
        counts = Counter(w.lower() if config.lowercase else w for s in train for w, _ in s)
        vocab = Vocabulary.from_counts(counts, specials=(PAD, UNKNOWN), unknown=UNKNOWN, min_count=config.min_count,
                                       ties="seen")  # fmt: skip
        label_names = sorted({label for s in train for _, label in s})
        if len(label_names) < 2:
            raise ValueError(f"tagging needs at least two labels in the training data, got {label_names}")
        labels = Vocabulary(label_names, unknown=label_names[0])  # a label training never saw counts as the first
        encoded = [_encode(part, vocab, labels, config.lowercase) for part in (train, val, test)]
        settings = dict(model_settings)
        settings["input"] = {"embedding_dim": 100, **settings.get("input", {}), "vocab_size": len(vocab)}
        settings["outputs"] = len(labels)
        model = self.build_model(settings)
        saved = {"tokens": vocab.to_json(), "labels": labels.to_json(), "lowercase": config.lowercase}
        context = {"test": encoded[2], "labels": labels, "vocab_size": len(vocab),
                   "sentences": {"all": len(sentences), "train": len(train), "val": len(val), "test": len(test)}}
        return Prepared(
            model, SupervisedObjective("cross_entropy"),
            TensorBatches(*encoded[0], batch_size=config.batch_size, seed=seed),
            TensorBatches(*encoded[1], batch_size=max(config.batch_size, 128), shuffle=False),
            "sentences", {VOCABULARY_FILE: json.dumps(saved, ensure_ascii=False)}, context,
        )  # fmt: skip

    def evaluate(self, run: Run) -> dict[str, Any]:
        (tokens, tags, lengths), labels = run.context["test"], run.context["labels"]
        model = run.model().eval()  # the weights the run directory keeps (the best evaluated checkpoint's)
        with torch.no_grad():
            logits, _ = model(tokens, lengths=lengths)
        predicted = logits.argmax(-1)
        gold_labels, predicted_labels, right, total = [], [], 0, 0
        for i, n in enumerate(lengths.tolist()):
            gold_labels.append(labels.decode(tags[i, :n].tolist()))
            predicted_labels.append(labels.decode(predicted[i, :n].tolist()))
            right += int((predicted[i, :n] == tags[i, :n]).sum())
            total += n
        return {"sentences": run.context["sentences"], "labels": len(labels), "vocab_size": run.context["vocab_size"],
                "token_accuracy": right / total, **span_scores(gold_labels, predicted_labels)}  # fmt: skip

    def report(self, run: Run, results: dict[str, Any]) -> str:
        n = results["sentences"]
        lines = [
            f"tagging: {n['all']:,} sentences ({n['train']} train, {n['val']} validation, {n['test']} test),"
            f" {results['labels']} labels, vocabulary {results['vocab_size']:,}",
            f"test token accuracy {results['token_accuracy']:.4f}; span precision {results['precision']:.4f},"
            f" recall {results['recall']:.4f}, F1 {results['f1']:.4f}",
        ]
        per_type = [f"{k[3:]} {v:.3f}" for k, v in results.items() if k.startswith("f1/")]
        if per_type:
            lines.append("span F1 by type: " + ", ".join(per_type))
        return "\n".join(lines)

    def evaluate_file(self, run: Run, path) -> dict[str, Any]:
        tagger = self.load(run.run_dir)
        sentences = read_conll(str(path), run.config.token_column, run.config.label_column)
        gold = [[label for _, label in s] for s in sentences]
        predicted = tagger.tag([[word for word, _ in s] for s in sentences])
        right = sum(g == p for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps))
        return {"source": str(path), "sentences": len(sentences), "token_accuracy": right / sum(map(len, gold)),
                **span_scores(gold, predicted)}  # fmt: skip

    def load(self, run_dir) -> Tagger:
        return Tagger.load(run_dir)

    def commands(self) -> dict[str, Command]:
        return {"tag": TAG}
