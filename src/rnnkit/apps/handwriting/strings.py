"""Handwritten digit strings, recognised with CTC: ``rnnkit train handwriting-strings``.

Strings of ``min_digits`` to ``max_digits`` isolated samples laid out left to right, each
digit's strokes shifted by its predecessors' widths plus a gap (``gap`` times the digit height),
the whole string normalised by its height and resampled by arc length (``points`` per digit). The
training strings are built from the training writers' digits, the test strings from the test
writers' only (the split of :mod:`rnnkit.apps.handwriting.data`). A bidirectional LSTM reads
``(dx, dy, pen_up, y)`` and CTC (:class:`~rnnkit.models.CTC`, Graves et al. 2009) aligns its
frames with the digits; scored by the digit error rate (edits over reference digits) and the
fraction of strings read exactly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...data.strokes import StrokeSample, check_sample, offsets, resample
from ...metrics.sequences import error_rate
from ...training import CTCBatches, CTCObjective
from ..base import App, Prepared, Run
from ...data.strokes import augment
from .data import split_by_writer
from .recognizer import RECOGNIZER_FILE


@dataclass(frozen=True)
class DigitStringConfig:
    data: str | None = None  # isolated labelled samples: UNIPEN, JSON or CSV
    test_data: str | None = None  # the test writers' file; None: test_fraction of the writers
    min_digits: int = 3
    max_digits: int = 8
    gap: float = 0.15  # between digits, in digit heights
    points: int = 32  # per digit
    train_strings: int = 4000
    test_strings: int = 500
    val_fraction: float = 0.1
    test_fraction: float = 0.3
    split_seed: int = 0
    rotation: float = 5.0
    scale: float = 0.05
    shear: float = 0.1
    batch_size: int = 32

    def __post_init__(self) -> None:
        for name in ("min_digits", "max_digits", "points", "train_strings", "test_strings", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits must be <= max_digits, got {self.min_digits} and {self.max_digits}")
        if self.gap < 0:
            raise ValueError(f"gap must be >= 0, got {self.gap}")


def compose(digits: Sequence[StrokeSample], gap: float) -> StrokeSample:
    """One string: each digit's strokes shifted right past its predecessors plus ``gap`` heights,
    bottoms aligned (pendigits' samples fill their box: each is scaled to one height first)."""
    strokes, cursor = [], 0.0
    for digit in digits:
        points = np.concatenate(digit.strokes)
        low, high = points.min(0), points.max(0)
        height = max(float(high[1] - low[1]), 1e-9)
        for stroke in digit.strokes:
            s = (stroke - low) / height  # the digit one unit high, its left edge and bottom at 0
            strokes.append(s + np.array([cursor, 0.0]))
        cursor += float(high[0] - low[0]) / height + gap
    return StrokeSample(strokes, "".join(d.label for d in digits), None, "composed string")


def string_points(sample: StrokeSample, points_per_digit: int) -> tuple[np.ndarray, np.ndarray]:
    """Resampled points of a string, centred vertically and horizontally at its start, one unit high."""
    points = np.concatenate(sample.strokes)
    low, high = points.min(0), points.max(0)
    height = max(float(high[1] - low[1]), 1e-9)
    strokes = [(s - np.array([low[0], (low[1] + high[1]) / 2])) / height for s in sample.strokes]
    return resample(strokes, points_per_digit * len(sample.label))


def string_features(coords: Tensor, pen_up: Tensor) -> Tensor:
    """``(..., T, 4)``: ``dx, dy, pen_up`` and the height ``y`` (x grows along the string, y does not)."""
    return torch.cat([offsets(coords, pen_up), coords[..., 1:2]], dim=-1)


def build_strings(samples: Sequence[StrokeSample], count: int, config: DigitStringConfig, seed: int) -> list[StrokeSample]:
    rng = random.Random(seed)
    return [compose([samples[rng.randrange(len(samples))] for _ in range(rng.randint(config.min_digits,
                     config.max_digits))], config.gap) for _ in range(count)]  # fmt: skip


def encode_strings(strings: Sequence[StrokeSample], labels: list[str], points: int):
    index = {label: i + 1 for i, label in enumerate(labels)}  # 0 is the blank
    encoded = [string_points(s, points) for s in strings]
    lengths = torch.tensor([len(c) for c, _ in encoded])
    width = int(lengths.max())
    coords = torch.zeros(len(strings), width, 2)
    pen = torch.zeros(len(strings), width, dtype=torch.bool)
    for i, (c, p) in enumerate(encoded):
        coords[i, : len(c)], pen[i, : len(p)] = torch.tensor(c, dtype=torch.float32), torch.tensor(p)
    target_lengths = torch.tensor([len(s.label) for s in strings])
    targets = torch.zeros(len(strings), int(target_lengths.max()), dtype=torch.long)
    for i, s in enumerate(strings):
        targets[i, : len(s.label)] = torch.tensor([index[ch] for ch in s.label])
    return coords, pen, lengths, targets, target_lengths


class _Augmented:
    """CTCBatches' augmentation hook: inputs are points and pen flags packed as ``(x, y, pen)``;
    a random affine map on the points, then the features."""

    def __init__(self, rotation: float, scale: float, shear: float) -> None:
        self.rotation, self.scale, self.shear = rotation, scale, shear

    def __call__(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> Tensor:
        coords, pen = x[..., :2], x[..., 2] > 0.5
        if self.rotation or self.scale or self.shear:
            coords = augment(coords, generator, rotation=self.rotation, scale=self.scale, shear=self.shear)
        valid = (torch.arange(x.shape[1])[None] < lengths[:, None])[..., None]  # (B, T, 1)
        return string_features(coords, pen) * valid


class DigitStringApp(App):
    name = "handwriting-strings"
    help = "handwritten digit strings (3-8 digits laid out from isolated samples) recognised with CTC"
    example = ("rnnkit train handwriting-strings --data pendigits-orig.tra --test-data pendigits-orig.tes")
    config_class = DigitStringConfig
    model_name = "ctc"
    default_model = {"encoder": {"cell": "lstm", "hidden_size": 96, "num_layers": 2, "bidirectional": True,
                                 "dropout": 0.2}}  # fmt: skip
    default_train = {"lr": 3e-3, "schedule": "cosine", "max_epochs": 8, "clip_norm": 1.0, "log_every": 25}
    arguments = {"--data": "task.data", "--test-data": "task.test_data"}
    files = ("data", "test_data")

    def prepare(self, config: DigitStringConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        from .data import HandwritingConfig

        splits = split_by_writer(HandwritingConfig(data=config.data, test_data=config.test_data,
                                                   val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                                                   split_seed=config.split_seed))  # fmt: skip
        labels = sorted({s.label for s in splits.train})
        if any(len(label) != 1 for label in labels):
            raise ValueError(f"digit strings are built from single-character labels, got {labels[:5]}")
        unseen = sorted({s.label for s in splits.val + splits.test} - set(labels))
        if unseen:
            raise ValueError(f"label(s) {unseen[:5]} of the validation or test writers never occur in training")
        parts = {}
        for name, samples, count, offset in (("train", splits.train, config.train_strings, 0),
                                             ("val", splits.val, max(50, config.test_strings // 4), 1),
                                             ("test", splits.test, config.test_strings, 2)):  # fmt: skip
            strings = build_strings(samples, count, config, config.split_seed * 10 + offset)
            parts[name] = (strings, encode_strings(strings, labels, config.points))

        def batches(name: str, augmented: bool, **options) -> CTCBatches:
            coords, pen, lengths, targets, target_lengths = parts[name][1]
            packed = torch.cat([coords, pen[..., None].float()], dim=-1)  # (N, T, 3): points and pen flags
            hook = _Augmented(config.rotation, config.scale, config.shear) if augmented else _Augmented(0, 0, 0)
            return CTCBatches(packed, lengths, targets, target_lengths, augment=hook, **options)

        model = self.build_model({**model_settings, "input": {"features": 4}, "outputs": len(labels) + 1, "blank": 0})
        saved = {"kind": "strings", "labels": labels, "points": config.points, "features": "offsets+y"}
        return Prepared(model, CTCObjective(), batches("train", True, batch_size=config.batch_size, seed=seed),
                        batches("val", False, batch_size=128, shuffle=False), "strings",
                        {RECOGNIZER_FILE: json.dumps(saved)}, {"parts": parts, "labels": labels,
                                                              "writers": splits.writers})  # fmt: skip

    def evaluate(self, run: Run) -> dict[str, Any]:
        strings, (coords, pen, lengths, _, _) = run.context["parts"]["test"]
        labels = run.context["labels"]
        model = run.model().eval()
        decoded = []
        with torch.no_grad():
            for i in range(0, len(strings), 128):
                x = string_features(coords[i : i + 128], pen[i : i + 128])
                n = lengths[i : i + 128]
                valid = (torch.arange(x.shape[1])[None] < n[:, None])[..., None]
                decoded += model.decode((x * valid)[:, : int(n.max())], n)
        hypotheses = ["".join(labels[t - 1] for t in row) for row in decoded]
        references = [s.label for s in strings]
        return {
            "digit_error_rate": error_rate([list(r) for r in references], [list(h) for h in hypotheses]),
            "string_accuracy": sum(h == r for h, r in zip(hypotheses, references)) / len(references),
            "strings": {"train": len(run.context["parts"]["train"][0]), "test": len(strings)},
            "digits": {"test": sum(map(len, references))},
            "writers": dict(zip(("train", "val", "test"), run.context["writers"])),
            "examples": [{"reference": r, "recognised": h} for r, h in list(zip(references, hypotheses))[:20]],
        }

    def report(self, run: Run, results: dict[str, Any]) -> str:
        c, w = run.config, results["writers"]
        return (f"digit strings of {c.min_digits}-{c.max_digits} digits: {results['strings']['train']:,} training strings"
                f" ({w['train']} writers), {results['strings']['test']:,} test strings from {w['test']} other writers"
                f" ({results['digits']['test']:,} digits)\n"
                f"digit error rate {results['digit_error_rate']:.4f}; strings read exactly"
                f" {results['string_accuracy']:.4f} (greedy CTC decoding)")  # fmt: skip


class StringRecognizer:
    """A trained ``handwriting-strings`` run: each sample's strokes read as a string of labels."""

    def __init__(self, model, labels: Sequence[str], points: int) -> None:
        self.model, self.labels, self.points = model.eval(), list(labels), points

    @classmethod
    def load(cls, run_dir) -> StringRecognizer:
        from ..._io import read_json, run_file
        from ...models import CTC
        from ...training import load

        saved = read_json(run_file(run_dir, RECOGNIZER_FILE))
        model = load(run_dir)
        if not isinstance(model, CTC):
            raise ValueError(f"{run_dir} holds a {type(model).__name__}, not a CTC recogniser")
        return cls(model, saved["labels"], int(saved["points"]))

    @torch.no_grad()
    def predict(self, samples: Sequence[StrokeSample]) -> list[tuple[str, float]]:
        """``(string, 1.0)`` per sample (greedy CTC decoding gives no calibrated probability);
        the points per digit assume the sample's width-to-height ratio of pendigits' digits."""
        out = []
        for sample in samples:
            check_sample(sample)
            points = np.concatenate(sample.strokes)
            extent = points.max(0) - points.min(0)
            digits = max(1, round(float(extent[0]) / max(float(extent[1]), 1e-9) / 0.8))  # about 0.8 wide each
            coords, pen = resample([(s - points.min(0)) / max(float(extent[1]), 1e-9) - np.array([0, 0.5])
                                    for s in sample.strokes], max(self.points * digits, len(sample.strokes)))  # fmt: skip
            x = string_features(torch.tensor(coords, dtype=torch.float32)[None], torch.tensor(pen)[None])
            (row,) = self.model.decode(x, torch.tensor([x.shape[1]]))
            out.append(("".join(self.labels[t - 1] for t in row), 1.0))
        return out
