"""A trained ``handwriting`` run, ready to label pen strokes: ``Recognizer.load(run_dir).predict(samples)``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from ...data.strokes import StrokeSample, prepare_samples
from ...models import ManyToOne
from ..base import read_run_file, trained_model
from .data import FEATURES, features

RECOGNIZER_FILE = "recognizer.json"  # labels and pre-processing, for `rnnkit recognize`
EVAL_BATCH = 512


@torch.no_grad()
def class_probabilities(model: ManyToOne, inputs: Tensor, batch_size: int = EVAL_BATCH) -> Tensor:
    """``(N, C)`` probabilities for features ``(N, T, F)``, in eval mode, on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    out = [torch.softmax(model(inputs[i : i + batch_size].to(device)).float(), -1).cpu()
           for i in range(0, inputs.shape[0], batch_size)]  # fmt: skip
    return torch.cat(out) if out else torch.zeros(0, model.config.outputs)


class Recognizer:
    """Isolated-sample recognition: strokes in, a label and its probability out."""

    def __init__(self, model: ManyToOne, labels: Sequence[str], *, points: int, feature_kind: str) -> None:
        if model.config.outputs != len(labels):
            raise ValueError(f"the model has {model.config.outputs} outputs but there are {len(labels)} labels")
        if feature_kind not in FEATURES:
            raise ValueError(f"feature_kind must be one of {FEATURES}, got {feature_kind!r}")
        self.model, self.labels = model.eval(), list(labels)
        self.points, self.feature_kind = points, feature_kind

    @classmethod
    def load(cls, run_dir: str | Path) -> Recognizer:

        run_dir = Path(run_dir)
        path, saved = read_run_file(run_dir, RECOGNIZER_FILE, "handwriting")
        model = trained_model(run_dir, ManyToOne, "a many-to-one recogniser")
        return cls(model, saved["labels"], points=int(saved["points"]), feature_kind=saved["features"])

    def probabilities(self, samples: Sequence[StrokeSample]) -> Tensor:
        """``(N, C)`` probabilities, columns in the order of ``labels``."""
        if isinstance(samples, StrokeSample):
            raise TypeError("samples must be a sequence of StrokeSample, got one sample: wrap it in a list")
        if not samples:
            return torch.zeros(0, len(self.labels))
        coords, pen_up = prepare_samples(samples, self.points)
        return class_probabilities(self.model, features(self.feature_kind, coords, pen_up))

    def predict(self, samples: Sequence[StrokeSample]) -> list[tuple[str, float]]:
        best, index = self.probabilities(samples).max(-1)
        return [(self.labels[i], p) for p, i in zip(best.tolist(), index.tolist())]
