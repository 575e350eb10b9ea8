"""Images read with Pillow (the ``caption`` extra) as RGB tensors, with clear errors.

Transparent pictures (RGBA, LA, palette with transparency) are composited on white; greyscale and
other modes are converted to RGB. Conversions are counted per mode, so that a caller can say
once what it converted (:class:`ImageReader`), never image by image.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .._extras import require
from .._validation import check_positive_int


class ImageReader:
    """Reads images as ``(3, size, size)`` uint8 tensors; ``converted`` counts the source modes
    that were not RGB."""

    def __init__(self, size: int) -> None:
        self.size = check_positive_int("size", size)
        self.converted: Counter[str] = Counter()

    def read(self, path: str | Path) -> Tensor:
        image_module = require("PIL.Image", "caption", "reading images", package="Pillow")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"image {path} does not exist" if not path.exists() else f"image {path} is not a file")
        try:
            with image_module.open(path) as image:
                image.load()
                mode = image.mode
                if mode == "P" and "transparency" in image.info:
                    image, mode = image.convert("RGBA"), "P (transparent)"
                if image.mode in ("RGBA", "LA", "RGBa", "La", "PA"):
                    rgba = image.convert("RGBA")
                    background = image_module.new("RGBA", rgba.size, (255, 255, 255, 255))
                    image = image_module.alpha_composite(background, rgba)
                rgb = image.convert("RGB")
        except (OSError, SyntaxError, ValueError) as error:  # Pillow's UnidentifiedImageError is an OSError
            raise ValueError(f"{path} is not an image Pillow can read ({type(error).__name__}: {error})") from None
        if mode != "RGB":
            self.converted[mode] += 1
        if rgb.size != (self.size, self.size):
            rgb = rgb.resize((self.size, self.size), image_module.BICUBIC)
        return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)  # (3, S, S)

    def read_all(self, paths: Sequence[str | Path]) -> Tensor:
        """``(N, 3, size, size)`` uint8."""
        if not paths:
            return torch.zeros(0, 3, self.size, self.size, dtype=torch.uint8)
        return torch.stack([self.read(p) for p in paths])

    def say_conversions(self) -> None:
        """One warning naming every mode converted to RGB and how many images had it."""
        if self.converted:
            listed = ", ".join(f"{n} {mode}" for mode, n in sorted(self.converted.items()))
            warnings.warn(f"converted images to RGB ({listed}; transparency composited on white)", stacklevel=2)
            self.converted.clear()


def to_float(images: Tensor) -> Tensor:
    """uint8 images -> float32 in [0, 1]."""
    return images.float() / 255.0
