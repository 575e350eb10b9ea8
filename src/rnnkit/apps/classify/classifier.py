"""A trained ``classify`` run, ready to label text: ``Classifier.load(run_dir).predict(texts)``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor

from ...data.tokenizers import padded_tokenizer_from_json
from ...models import ManyToOne
from ..base import read_run_file, trained_model
from .data import encode_texts

CLASSIFIER_FILE = "classifier.json"  # tokenizer, labels and text settings, for `rnnkit predict`
EVAL_BATCH = 256


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

        run_dir = Path(run_dir)
        path, saved = read_run_file(run_dir, CLASSIFIER_FILE, "classify")
        model = trained_model(run_dir, ManyToOne, "a many-to-one classifier")
        return cls(model, padded_tokenizer_from_json(saved["tokenizer"]), saved["labels"],
                   text_column=saved["text_column"], lowercase=saved["lowercase"],
                   max_length=saved["max_length"])  # fmt: skip

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
