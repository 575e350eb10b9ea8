"""The image with the attention map of each word of its caption (Xu et al. 2015, figure 3)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .data import END


def attention_figure(model, vocab, image: Tensor, tokens: list[str], *, columns: int = 6, title: str = ""):
    """``image`` ``(3, S, S)`` uint8, then one panel per word (and the end token) with the
    attention the model gave the grid when writing it, upsampled to the image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ids = torch.tensor([vocab.encode(tokens) + [vocab.index[END]]])  # (1, T)
    pixels = image.float()[None] / 255.0  # (1, 3, S, S)
    maps = model.attend(pixels, ids)[0]  # (T, h, w)
    size = image.shape[-1]
    upsampled = torch.nn.functional.interpolate(maps[:, None], size=(size, size), mode="bilinear",
                                                align_corners=False)[:, 0]  # (T, S, S)  # fmt: skip
    labels = [*tokens, "<end>"]
    panels = 1 + len(labels)
    columns = min(columns, panels)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(1.8 * columns, 1.9 * rows + (0.3 if title else 0)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    picture = image.permute(1, 2, 0).numpy()
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k == 0:
            ax.imshow(picture)
            ax.set_title("image", fontsize=9)
        elif k < panels:
            ax.imshow(picture)
            weights = upsampled[k - 1]
            ax.imshow((weights / weights.max().clamp_min(1e-12)).numpy(), cmap="gray", alpha=0.6, vmin=0, vmax=1)
            ax.set_title(labels[k - 1], fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
