"""A trained ``caption`` run, ready to caption images: ``Captioner.load(run_dir).caption(paths)``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from ...data.images import ImageReader
from ...data.tokenizers import Vocabulary
from ...models import ImageCaptioner
from ..base import read_run_file, trained_model
from .data import UNK, decode_tokens, detokenize

CAPTIONER_FILE = "captioner.json"  # vocabulary and image size, for `rnnkit caption`


@torch.no_grad()
def generate_words(model: ImageCaptioner, vocab: Vocabulary, images: Tensor, *, beam_size: int = 1,
                   batch_size: int = 128) -> list[list[str]]:  # fmt: skip
    """The words of each image's caption (uint8 images ``(N, 3, S, S)``), greedy or by beam search."""
    out: list[list[str]] = []
    for i in range(0, images.shape[0], batch_size):
        decoded = model.generate(images[i : i + batch_size].float() / 255.0, beam_size=beam_size)
        out += [decode_tokens(vocab, row.tolist()) for row in decoded.tokens]
    return out


class Captioner:
    def __init__(self, model: ImageCaptioner, vocab: Vocabulary, image_size: int) -> None:
        if model.vocab_size != len(vocab):
            raise ValueError(f"the model writes {model.vocab_size} tokens but the vocabulary has {len(vocab)}")
        self.model, self.vocab, self.image_size = model.eval(), vocab, image_size

    @classmethod
    def load(cls, run_dir: str | Path) -> Captioner:

        run_dir = Path(run_dir)
        path, saved = read_run_file(run_dir, CAPTIONER_FILE, "caption")
        model = trained_model(run_dir, ImageCaptioner, "an image captioner")
        return cls(model, Vocabulary(saved["vocabulary"], unknown=UNK), int(saved["image_size"]))

    def read(self, paths: Sequence[str | Path]) -> Tensor:
        """The images at ``paths`` as the model reads them, ``(N, 3, S, S)`` uint8; one warning
        names the modes converted to RGB."""
        reader = ImageReader(self.image_size)
        images = reader.read_all(list(paths))
        reader.say_conversions()
        return images

    def caption_images(self, images: Tensor, *, beam_size: int = 3) -> list[list[str]]:
        return generate_words(self.model, self.vocab, images, beam_size=beam_size)

    def caption(self, paths: Sequence[str | Path], *, beam_size: int = 3) -> list[str]:
        """One caption per image file."""
        if isinstance(paths, (str, Path)):
            raise TypeError("paths must be a sequence of image paths, got one path: wrap it in a list")
        return [detokenize(w) for w in self.caption_images(self.read(paths), beam_size=beam_size)]
