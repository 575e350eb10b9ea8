"""Pictures of pen strokes: each sample's strokes, y up, titled with its recognised label."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...data.strokes import StrokeSample


def strokes_figure(samples: Sequence[StrokeSample], recognised: Sequence[str], *, columns: int = 8, title: str = ""):
    """A grid of the samples' strokes, each titled with its recognised label (and, in red, the
    true one where the sample has a label and they differ). Each stroke has its own colour and
    a dot where the pen went down."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if len(samples) != len(recognised):
        raise ValueError(f"recognised must have one label per sample: {len(samples)} samples, {len(recognised)} labels")
    count = max(1, len(samples))
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(1.4 * columns, 1.6 * rows + (0.3 if title else 0)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= len(samples):
            continue
        sample, label = samples[i], recognised[i]
        for j, stroke in enumerate(sample.strokes):
            colour = f"C{j % 10}"
            ax.plot(stroke[:, 0], stroke[:, 1], color=colour, linewidth=1.5)
            ax.plot(stroke[:1, 0], stroke[:1, 1], "o", color=colour, markersize=2.5)
        ax.set_aspect("equal", adjustable="datalim")
        wrong = sample.label is not None and sample.label != label
        ax.set_title(f"{label}" + (f" (true {sample.label})" if wrong else ""), fontsize=9,
                     color="tab:red" if wrong else "black")  # fmt: skip
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
