"""Online handwriting recognition of isolated samples (many-to-one) from pen strokes.

``rnnkit train handwriting --data pendigits-orig.tra --test-data pendigits-orig.tes`` trains a
bidirectional LSTM on the strokes' offsets (:mod:`rnnkit.data.strokes`), writer-independent, and
scores the test writers against k-nearest neighbours on the same resampled coordinates (k chosen
on the validation writers). ``rnnkit recognize RUN_DIR FILE [--plot FILE.png]`` labels new
strokes. The labels and the pre-processing are saved as ``recognizer.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from ...data.strokes import read_strokes
from ...metrics import classification as metrics
from ...metrics.neighbours import knn_predict
from ...training import SupervisedObjective
from ..base import App, Prepared, Run
from ..commands import Command, check_output_path, closed_stdout_is_fine
from .data import HandwritingConfig, StrokeBatches, encode, features, read_labelled, split_by_writer
from .plots import strokes_figure
from .recognizer import RECOGNIZER_FILE, Recognizer, class_probabilities

KNN_CHOICES = (1, 3, 5, 7)


def _label_order(labels) -> list[str]:
    distinct = set(labels)
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


class HandwritingApp(App):
    name = "handwriting"
    help = "online handwriting recognition of isolated samples (digits) from pen strokes: UNIPEN, JSON or CSV"
    example = "rnnkit train handwriting --data pendigits-orig.tra --test-data pendigits-orig.tes"
    config_class = HandwritingConfig
    model_name = "many_to_one"
    default_model = {"encoder": {"cell": "lstm", "hidden_size": 96, "num_layers": 2, "bidirectional": True,
                                 "dropout": 0.2}, "pooling": "max", "head_dropout": 0.3}  # fmt: skip
    default_train = {"lr": 3e-3, "schedule": "cosine", "max_epochs": 30, "clip_norm": 1.0, "log_every": 50,
                     "monitor": "val_accuracy", "monitor_mode": "max"}  # fmt: skip
    arguments = {"--data": "task.data", "--test-data": "task.test_data"}
    files = ("data", "test_data")

    def prepare(self, config: HandwritingConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        splits = split_by_writer(config)
        labels = _label_order(s.label for s in splits.train)
        if len(labels) < 2:
            raise ValueError(f"{config.data}: recognition needs at least two labels in training, got {labels}")
        index = {label: i for i, label in enumerate(labels)}
        unseen = sorted({s.label for s in splits.val + splits.test} - set(labels))
        if unseen:
            raise ValueError(f"label(s) {unseen[:5]} of the validation or test writers never occur in training")
        parts = {}
        for name, samples in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
            coords, pen_up = encode(samples, config.points)
            parts[name] = (coords, pen_up, torch.tensor([index[s.label] for s in samples]))
        if parts["train"][0].shape[0] < config.batch_size:
            raise ValueError(f"data too short for one batch: {parts['train'][0].shape[0]} training samples,"
                             f" fewer than batch_size={config.batch_size}")  # fmt: skip
        kind = config.features
        train = StrokeBatches(*parts["train"], feature_kind=kind, rotation=config.rotation, scale=config.scale,
                              shear=config.shear, batch_size=config.batch_size, seed=seed)  # fmt: skip
        val = StrokeBatches(*parts["val"], feature_kind=kind, batch_size=512, shuffle=False)
        settings = {**model_settings, "input": {"features": config.feature_size}, "outputs": len(labels)}
        model = self.build_model(settings)
        saved = {"labels": labels, "points": config.points, "features": kind}
        context = {"labels": labels, "parts": parts, "writers": splits.writers}
        return Prepared(model, SupervisedObjective("cross_entropy"), train, val, "samples",
                        {RECOGNIZER_FILE: json.dumps(saved, ensure_ascii=False)}, context)  # fmt: skip

    def evaluate(self, run: Run) -> dict[str, Any]:
        labels, parts, kind = run.context["labels"], run.context["parts"], run.config.features
        coords, pen_up, truth = parts["test"]
        probabilities = class_probabilities(run.model(), features(kind, coords, pen_up))
        guess = probabilities.argmax(-1)
        confusion = metrics.confusion_matrix(truth, guess, len(labels))
        # the baseline: k-NN on the same resampled coordinates, k chosen on the validation writers
        reference, reference_labels = parts["train"][0].flatten(1), parts["train"][2]
        k_scores = {k: metrics.accuracy(parts["val"][2], knn_predict(reference, reference_labels,
                    parts["val"][0].flatten(1), k=k, num_classes=len(labels)))
                    for k in KNN_CHOICES if k <= reference.shape[0]}  # fmt: skip
        best_k = max(k_scores, key=lambda k: (k_scores[k], -k))
        knn = knn_predict(reference, reference_labels, coords.flatten(1), k=best_k, num_classes=len(labels))
        run.cache["figure"] = (guess, truth)
        scores = metrics.per_class(confusion)
        return {
            "accuracy": metrics.accuracy(truth, guess),
            "knn_accuracy": metrics.accuracy(truth, knn),
            "knn_k": best_k,
            "knn_val_accuracy": {str(k): v for k, v in k_scores.items()},
            "labels": labels,
            "confusion": confusion.tolist(),
            "per_class_recall": {label: scores.recall[i].item() for i, label in enumerate(labels)},
            "samples": {name: int(part[2].shape[0]) for name, part in parts.items()},
            "writers": dict(zip(("train", "val", "test"), run.context["writers"])),
        }

    def figures(self, run: Run, results: dict[str, Any]) -> dict[str, Any]:
        from .data import split_by_writer

        guess, truth = run.cache.get("figure", (None, None))
        if guess is None:
            return {}
        test = split_by_writer(run.config).test
        wrong = [i for i in range(len(test)) if guess[i] != truth[i]][:16]
        right = [i for i in range(len(test)) if guess[i] == truth[i]][: 32 - len(wrong)]
        shown = sorted(right + wrong)
        labels = results["labels"]
        return {"test_samples.png": strokes_figure([test[i] for i in shown], [labels[int(guess[i])] for i in shown],
                                                   title="test writers: recognised (true where wrong)")}  # fmt: skip

    def report(self, run: Run, results: dict[str, Any]) -> str:
        n, w = results["samples"], results["writers"]
        labels = results["labels"]
        return "\n".join([
            f"handwriting: {n['train']:,} training samples ({w['train']} writers), {n['val']:,} validation"
            f" ({w['val']} writers), {n['test']:,} test ({w['test']} other writers); {len(labels)} labels",
            f"test accuracy {results['accuracy']:.4f}   (k-NN on the resampled points, k={results['knn_k']}"
            f" chosen on validation: {results['knn_accuracy']:.4f})",
            "",
            metrics.format_confusion(torch.tensor(results["confusion"]), labels),
        ])  # fmt: skip

    def evaluate_file(self, run: Run, path) -> dict[str, Any]:
        recognizer = self.load(run.run_dir)
        samples = read_labelled(str(path))
        unknown = sorted({s.label for s in samples} - set(recognizer.labels))
        if unknown:
            raise ValueError(f"{path}: label(s) {unknown[:5]} are not among the recogniser's {recognizer.labels}")
        index = {label: i for i, label in enumerate(recognizer.labels)}
        truth = torch.tensor([index[s.label] for s in samples])
        guess = recognizer.probabilities(samples).argmax(-1)
        return {"source": str(path), "samples": len(samples), "accuracy": metrics.accuracy(truth, guess),
                "labels": recognizer.labels,
                "confusion": metrics.confusion_matrix(truth, guess, len(recognizer.labels)).tolist()}  # fmt: skip

    def load(self, run_dir: str | Path) -> Recognizer:
        return Recognizer.load(run_dir)

    def commands(self) -> dict[str, Command]:
        return {"recognize": RECOGNIZE}


# -----------------------------------------------------------------------------
# `rnnkit recognize`


def _recognize_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train handwriting'")
    parser.add_argument("file", metavar="FILE", help="strokes to recognise: UNIPEN, JSON or CSV")
    parser.add_argument("--plot", metavar="FILE.png", default=None,
                        help="draw the strokes of the first 64 samples with their recognised labels")


def _recognize(args: argparse.Namespace) -> int:
    check_output_path(args.plot, "--plot")
    from ..._io import read_json, run_file

    saved = run_file(args.run_dir, RECOGNIZER_FILE)
    if saved.is_file() and read_json(saved).get("kind") == "strings":
        from .strings import StringRecognizer

        recognizer = StringRecognizer.load(args.run_dir)
    else:
        recognizer = Recognizer.load(args.run_dir)
    samples = read_strokes(args.file, what="input file")
    predictions = recognizer.predict(samples)
    with closed_stdout_is_fine():
        for sample, (label, probability) in zip(samples, predictions):
            truth = f"\t{sample.label}" if sample.label is not None else ""
            sys.stdout.write(f"{label}\t{probability:.4f}{truth}\n")
        sys.stdout.flush()
    if args.plot:
        from ..._io import save_figure

        shown = samples[:64]
        save_figure(strokes_figure(shown, [label for label, _ in predictions[: len(shown)]]), args.plot)
    return 0


RECOGNIZE = Command(
    help="recognise handwritten samples with a trained model; prints label and probability per sample"
    " (and the file's label, where it has one)",
    example="rnnkit recognize runs/handwriting-20261203-120000 digits.json --plot digits.png",
    add_arguments=_recognize_arguments,
    run=_recognize,
)
