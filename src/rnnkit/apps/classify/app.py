"""Text classification (sentiment analysis): a many-to-one recurrent model over a labelled CSV.

``rnnkit train classify --data FILE.csv --text-column C --label-column L [--group-column G]``
trains, and scores the test split into ``test_results.json``; ``rnnkit predict RUN_DIR [FILE]``
labels new text (:class:`~rnnkit.apps.classify.Classifier`). The tokenizer, labels and text
settings are saved as ``classifier.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ...data.splits import split_examples
from ...metrics import classification as metrics
from ...training import SupervisedObjective
from ..base import App, Prepared, Run
from ..commands import Command, closed_stdout_is_fine
from .classifier import CLASSIFIER_FILE, EVAL_BATCH, Classifier, predict_probabilities
from .data import ClassifyConfig, PaddedBatches, encode_texts, label_order, read_examples_csv, train_tokenizer

RESULTS_FILE = "test_results.json"  # the test-set figures the report prints


class ClassifyApp(App):
    name = "classify"
    help = "a text classifier (sentiment analysis) on a labelled CSV: embedding, bidirectional LSTM, pooling"
    example = "rnnkit train classify --data reviews.csv --text-column text --label-column label --group-column movie"
    config_class = ClassifyConfig
    model_name = "many_to_one"
    default_model = {"encoder": {"cell": "lstm", "hidden_size": 128, "bidirectional": True},
                     "input": {"embedding_dim": 128}, "pooling": "max", "head_dropout": 0.5}  # fmt: skip
    default_train = {"lr": 2e-3, "max_epochs": 20, "patience": 3, "clip_norm": 1.0, "log_every": 50}
    arguments = {"--data": "task.data", "--text-column": "task.text_column", "--label-column": "task.label_column",
                 "--group-column": "task.group_column", "--tokenizer": "task.tokenizer"}  # fmt: skip
    results_file = RESULTS_FILE  # the name run directories have always had

    def prepare(self, config: ClassifyConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        examples = read_examples_csv(config)
        labels = label_order(examples.labels)
        if len(labels) < 2:
            raise ValueError(
                f"column {config.label_column!r} of {examples.source} has a single class ({labels[0]!r}):"
                " classification needs at least two"
            )
        if len(labels) > max(20, len(examples.labels) // 2):
            warnings.warn(
                f"column {config.label_column!r} has {len(labels)} classes for {len(examples.labels)} rows:"
                " is it the label column?",
                stacklevel=2,
            )
        split = split_examples(len(examples.texts), examples.groups, test_fraction=config.test_fraction,
                               val_fraction=config.val_fraction, seed=config.split_seed)  # fmt: skip
        if len(split.train) < config.batch_size:
            raise ValueError(
                f"data too short for one batch: the training split of {examples.source} has {len(split.train)} rows,"
                f" fewer than batch_size={config.batch_size}"
            )
        label_index = {label: i for i, label in enumerate(labels)}
        targets = torch.tensor([label_index[label] for label in examples.labels], dtype=torch.long)  # (N,)
        tokenizer = train_tokenizer(config, [examples.texts[i].lower() if config.lowercase else examples.texts[i]
                                             for i in split.train])  # fmt: skip
        ids, lengths = encode_texts(tokenizer, examples.texts, lowercase=config.lowercase, max_length=config.max_length)

        def part(rows: list[int], **options) -> PaddedBatches:
            index = torch.tensor(rows, dtype=torch.long)
            return PaddedBatches(ids[index], targets[index], lengths[index], **options)

        train = part(split.train, batch_size=config.batch_size, seed=seed, token_dropout=config.token_dropout)
        val = part(split.val, batch_size=EVAL_BATCH, shuffle=False)
        settings = dict(model_settings)
        settings["input"] = {"embedding_dim": 128, **settings.get("input", {}), "vocab_size": tokenizer.vocab_size}
        settings["outputs"] = len(labels)
        model = self.build_model(settings)
        saved = {"tokenizer": tokenizer.to_json(), "labels": labels, "text_column": config.text_column,
                 "lowercase": config.lowercase, "max_length": config.max_length}  # fmt: skip
        context = {"source": examples.source, "rows": len(examples.texts), "labels": labels, "split": split,
                   "ids": ids, "lengths": lengths, "targets": targets, "vocab_size": tokenizer.vocab_size}  # fmt: skip
        artifacts = {CLASSIFIER_FILE: json.dumps(saved, ensure_ascii=False)}
        return Prepared(model, SupervisedObjective("cross_entropy"), train, val, "examples", artifacts, context)

    def evaluate(self, run: Run) -> dict[str, Any]:
        context = run.context
        labels, split, ids, lengths, targets = (context[k] for k in ("labels", "split", "ids", "lengths", "targets"))
        test = torch.tensor(split.test, dtype=torch.long)
        majority, majority_accuracy = metrics.majority_baseline(targets[split.train], targets[test], len(labels))
        probabilities = predict_probabilities(run.model(), ids[test], lengths[test])  # the kept weights
        truth, guess = targets[test], probabilities.argmax(-1)
        confusion = metrics.confusion_matrix(truth, guess, len(labels))
        scores = metrics.per_class(confusion)
        unknown = (ids[test] == 1).sum().item() / lengths[test].sum().item() if run.config.tokenizer == "word" else None
        return {
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
            "source": context["source"],
            "data_rows": context["rows"],
            "vocab_size": context["vocab_size"],
            "unknown_fraction": unknown,  # of the test tokens, for the word tokenizer
        }  # fmt: skip

    def evaluate_file(self, run: Run, path) -> dict[str, Any]:
        classifier = self.load(run.run_dir)
        examples = read_examples_csv(replace(run.config, data=str(path), group_column=None))
        unknown = sorted(set(examples.labels) - set(classifier.labels))
        if unknown:
            raise ValueError(f"{path}: label(s) {unknown[:5]} are not among the classifier's {classifier.labels}")
        index = {label: i for i, label in enumerate(classifier.labels)}
        truth = torch.tensor([index[label] for label in examples.labels])
        guess = classifier.probabilities(examples.texts).argmax(-1)
        confusion = metrics.confusion_matrix(truth, guess, len(classifier.labels))
        return {"source": str(path), "rows": len(truth), "accuracy": metrics.accuracy(truth, guess),
                "macro_f1": metrics.per_class(confusion).f1.mean().item(), "labels": classifier.labels,
                "confusion": confusion.tolist()}  # fmt: skip

    def report(self, run: Run, results: dict[str, Any]) -> str:
        c, rows, groups, labels = run.config, results["rows"], results["groups"], results["labels"]
        sizes = f"train {rows['train']:,}, validation {rows['val']:,}, test {rows['test']:,} rows"
        if groups:
            sizes += (f"; by {c.group_column!r}: {groups['train']:,} / {groups['val']:,} / {groups['test']:,}"
                      " groups, each wholly on one side")  # fmt: skip
        vocabulary = f"vocabulary {results['vocab_size']:,} ({c.tokenizer}"
        if results["unknown_fraction"] is not None:
            vocabulary += f", min_count {c.min_count}; {results['unknown_fraction']:.1%} of test tokens unknown"
        vocabulary += f"), token_dropout {c.token_dropout:g}"
        per_class = results["per_class"]
        scores = metrics.PerClass(*(torch.tensor([per_class[label][k] for label in labels], dtype=torch.float64)
                                    for k in ("precision", "recall", "f1")),
                                  torch.tensor([per_class[label]["support"] for label in labels]))  # fmt: skip
        return "\n".join([
            f"data: {results['source']}, {results['data_rows']:,} rows, {len(labels)} classes; {sizes}",
            vocabulary,
            f"test accuracy {results['accuracy']:.4f}   macro-F1 {results['macro_f1']:.4f}"
            f"   (majority class {results['majority_class']!r}: {results['majority_accuracy']:.4f})",
            "",
            metrics.format_per_class(scores, labels),
            "",
            metrics.format_confusion(torch.tensor(results["confusion"]), labels),
        ])  # fmt: skip

    def load(self, run_dir: str | Path) -> Classifier:
        return Classifier.load(run_dir)

    def commands(self) -> dict[str, Command]:
        return {"predict": PREDICT}


# -----------------------------------------------------------------------------
# `rnnkit predict`


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train classify'")
    parser.add_argument("file", metavar="FILE", nargs="?", default="-",
                        help="one example per line, or a .csv with the training text column;"
                             " '-' or omitted: lines from stdin, each answered as it arrives")


def _predict(args: argparse.Namespace) -> int:
    from ...data.textfiles import text_lines
    from .data import read_texts

    classifier = Classifier.load(args.run_dir)
    streaming = args.file == "-"
    texts = text_lines(sys.stdin) if streaming else read_texts(args.file, classifier.text_column)
    with closed_stdout_is_fine():
        for label, probability in classifier.predict(texts, batch_size=1 if streaming else 256):
            sys.stdout.write(f"{label}\t{probability:.4f}\n")
            if streaming:
                sys.stdout.flush()
        sys.stdout.flush()
    return 0


PREDICT = Command(
    help="label text with a trained classifier; prints label and probability per example (TSV)",
    example="rnnkit predict runs/classify-20261122-101500 reviews.txt",
    add_arguments=_predict_arguments,
    run=_predict,
)
