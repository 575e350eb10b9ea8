"""Handwriting data: the settings, the writer-independent split, the batches with augmentation.

The split is by writer: with ``test_data`` (pendigits' ``.tes``: 14 writers none of the 30 of
``.tra`` are) the test set is that file, else ``test_fraction`` of the writers; validation (model
selection, early stopping) is ``val_fraction`` of the training writers. Samples without a writer
are their own writer each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ...data.splits import split_examples
from ...data.strokes import StrokeSample, augment, offsets, prepare_samples, read_strokes
from ...training import AugmentedBatches

FEATURES = ("offsets", "offsets+position")


@dataclass(frozen=True)
class HandwritingConfig:
    """``features``: ``offsets`` is ``(dx, dy, pen_up)`` per point (Graves et al. 2009);
    ``offsets+position`` adds the normalised ``(x, y)`` each point is at. ``rotation`` (degrees),
    ``scale`` and ``shear`` bound the random affine map drawn for every training sample and epoch
    (0 turns each off)."""

    data: str | None = None  # UNIPEN, JSON or CSV strokes with labels
    test_data: str | None = None  # the test writers' file; None: hold out test_fraction of the writers
    points: int = 48  # per sample, by arc length
    features: Literal["offsets", "offsets+position"] = "offsets+position"
    rotation: float = 10.0
    scale: float = 0.1
    shear: float = 0.1
    val_fraction: float = 0.1  # of the training writers
    test_fraction: float = 0.3  # of the writers, without test_data
    split_seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise ValueError(f"features must be one of {', '.join(map(repr, FEATURES))}, got {self.features!r}")
        for name in ("points", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
        for name in ("rotation", "scale", "shear"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.scale >= 1:
            raise ValueError(f"scale must be below 1 (a factor in [1 - scale, 1 + scale]), got {self.scale}")
        for name in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")

    @property
    def feature_size(self) -> int:
        return 3 if self.features == "offsets" else 5


def features(config_features: str, coords: Tensor, pen_up: Tensor) -> Tensor:
    """The network's input ``(..., T, 3 or 5)`` from points ``(..., T, 2)`` and pen flags."""
    steps = offsets(coords, pen_up)  # (..., T, 3)
    return steps if config_features == "offsets" else torch.cat([steps, coords], dim=-1)


def read_labelled(path: str, what: str = "data file") -> list[StrokeSample]:
    samples = read_strokes(path, what=what)
    unlabelled = [s for s in samples if s.label is None]
    if unlabelled:
        raise ValueError(f"{unlabelled[0].where}: training needs a label on every sample ({len(unlabelled)} have none)")
    return samples


def writers(samples: Sequence[StrokeSample]) -> list[str]:
    return [s.writer if s.writer is not None else f"#{i}" for i, s in enumerate(samples)]


@dataclass
class Splits:
    train: list[StrokeSample]
    val: list[StrokeSample]
    test: list[StrokeSample]
    writers: tuple[int, int, int]


def split_by_writer(config: HandwritingConfig) -> Splits:
    if config.data is None:
        raise ValueError("handwriting needs a strokes file: --data FILE (UNIPEN, JSON or CSV; task.data)")
    samples = read_labelled(config.data)
    if config.test_data is not None:
        test = read_labelled(config.test_data, "test data file")
        names = writers(samples)
        train_val = split_examples(len(samples), names, test_fraction=config.val_fraction,
                                   val_fraction=0.5, seed=config.split_seed)  # fmt: skip
        # split_examples makes three parts: here its test part is validation, the other two train
        train_rows = sorted(train_val.train + train_val.val)
        val_rows = train_val.test
        counts = (len({names[i] for i in train_rows}), len({names[i] for i in val_rows}), len(set(writers(test))))
        return Splits([samples[i] for i in train_rows], [samples[i] for i in val_rows], test, counts)
    split = split_examples(len(samples), writers(samples), test_fraction=config.test_fraction,
                           val_fraction=config.val_fraction, seed=config.split_seed)  # fmt: skip
    parts = [[samples[i] for i in rows] for rows in (split.train, split.val, split.test)]
    return Splits(*parts, split.groups)


class StrokeBatches(AugmentedBatches):
    """``(features (B, T, F), labels (B,))`` batches over resampled points, each training batch
    under fresh random affine maps (seeded by the seed, epoch and batch: a resumed run sees the
    same ones)."""

    def __init__(self, coords: Tensor, pen_up: Tensor, labels: Tensor, *, feature_kind: str,
                 rotation: float = 0.0, scale: float = 0.0, shear: float = 0.0, **options) -> None:  # fmt: skip
        super().__init__(coords, pen_up, labels, **options)
        self.feature_kind, self.rotation, self.scale, self.shear = feature_kind, rotation, scale, shear

    def transform(self, batch: tuple[Tensor, Tensor, Tensor], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        coords, pen_up, labels = batch
        if self.rotation or self.scale or self.shear:
            coords = augment(coords, generator, rotation=self.rotation, scale=self.scale, shear=self.shear)
        return features(self.feature_kind, coords, pen_up), labels


def encode(samples: Sequence[StrokeSample], points: int) -> tuple[Tensor, Tensor]:
    return prepare_samples(samples, points)
