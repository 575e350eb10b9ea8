"""Layers over any :class:`~rnnkit.cells.RecurrentCell`: user cells, minGRU and minLSTM."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .._validation import check_positive_int
from ..cells import MinGRUCell, MinLSTMCell, Params, RecurrentCell
from ._base import RecurrentLayer


class Recurrent(RecurrentLayer):
    """Stacking, directions, lengths and streaming for any cell.

    ``cell`` is a factory called with each position's input size -- ``input_size`` for the first
    layer, ``num_directions * output_size`` above it -- that returns a new
    :class:`~rnnkit.cells.RecurrentCell`; a cell instance is accepted for a single unidirectional
    layer. Every position gets its own cell and parameters (``cells.{k}``, in layer-major,
    forward-then-reverse order). ``forward`` and ``step`` behave as in
    :class:`~rnnkit.layers.RecurrentLayer`.

    >>> import torch
    >>> from rnnkit.cells import GRUCell
    >>> layer = Recurrent(lambda n: GRUCell(n, 16, layer_norm=True), input_size=8, num_layers=2)
    >>> output, h_n = layer(torch.randn(5, 3, 8))
    >>> output.shape, h_n.shape
    (torch.Size([5, 3, 16]), torch.Size([2, 3, 16]))
    """

    def __init__(
        self,
        cell: Callable[[int], RecurrentCell] | RecurrentCell,
        input_size: int,
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        batch_first: bool = False,
        dropout: float = 0.0,
        return_states: bool = False,
        learn_initial_state: bool = False,
    ) -> None:
        super().__init__(
            input_size,
            num_layers,
            bidirectional,
            batch_first,
            dropout,
            return_states=return_states,
            learn_initial_state=learn_initial_state,
        )
        if isinstance(cell, RecurrentCell):
            if self.num_layers * self.num_directions != 1:
                raise ValueError(
                    "cell must be a factory (input_size -> cell) for several layers or directions,"
                    f" got a {type(cell).__name__} instance with num_layers={self.num_layers},"
                    f" bidirectional={self.bidirectional}"
                )
            cells = [cell]
        elif callable(cell):
            cells = []
            for layer in range(self.num_layers):
                size = self.input_size if layer == 0 else self.num_directions * cells[0].output_size
                cells.extend(self._build(cell, size) for _ in range(self.num_directions))
        else:
            raise TypeError(f"cell must be a RecurrentCell or a factory returning one, got {type(cell).__name__}")
        if cells[0].input_size != self.input_size:
            raise ValueError(
                f"cell.input_size must equal input_size: expected {self.input_size}, got {cells[0].input_size}"
            )
        for other in cells[1:]:
            if other.state_sizes != cells[0].state_sizes or other.output_size != cells[0].output_size:
                raise ValueError(
                    "every cell must have the same state_sizes and output_size: expected"
                    f" {cells[0].state_sizes}/{cells[0].output_size}, got {other.state_sizes}/{other.output_size}"
                )
        self.cells = nn.ModuleList(cells)
        reference = next(self.cells.parameters(), None)
        factory = {} if reference is None else {"device": reference.device, "dtype": reference.dtype}
        self._create_initial_state(**factory)

    @staticmethod
    def _build(factory: Callable[[int], RecurrentCell], size: int) -> RecurrentCell:
        cell = factory(size)
        if not isinstance(cell, RecurrentCell):
            raise TypeError(f"cell factory must return a RecurrentCell, got {type(cell).__name__}")
        if cell.input_size != size:
            raise ValueError(f"cell factory was asked for input_size={size}, got a cell with input_size={cell.input_size}")
        return cell

    def cell(self, layer: int = 0, direction: int = 0) -> RecurrentCell:
        return self.cells[layer * self.num_directions + direction]

    def cell_parameters(self, layer: int = 0, direction: int = 0) -> Params:
        return self.cell(layer, direction).parameters_dict()


class _MinimalLayer(Recurrent):
    cell_class: type[RecurrentCell]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        scan: str = "auto",
        scan_chunk: int = 32,
        return_states: bool = False,
        learn_initial_state: bool = False,
    ) -> None:
        self.hidden_size = check_positive_int("hidden_size", hidden_size)

        def build(size: int) -> RecurrentCell:
            return self.cell_class(size, hidden_size, bias, device, dtype, scan=scan, scan_chunk=scan_chunk)

        super().__init__(
            build,
            input_size,
            num_layers,
            bidirectional=bidirectional,
            batch_first=batch_first,
            dropout=dropout,
            return_states=return_states,
            learn_initial_state=learn_initial_state,
        )


class MinGRU(_MinimalLayer):
    """Stacked minGRU (Feng et al. 2024): trained by a parallel scan over time, stepped for generation.

    Arguments as :class:`rnnkit.GRU`. ``scan``: ``"log"`` is the parallel log-space scan (for
    GPUs; ``scan_chunk`` bounds how many steps one scan covers, see
    :func:`rnnkit.scan.log_space_scan`), ``"sequential"`` a fused linear recurrence
    (:class:`rnnkit.scan.LinearRecurrence`, faster on CPUs), ``"auto"`` picks by device. The math is in
    :class:`rnnkit.cells.MinGRUCell`.

    >>> import torch
    >>> layer = MinGRU(8, 16, num_layers=2, batch_first=True)
    >>> output, h_n = layer(torch.randn(3, 50, 8))
    >>> output.shape, h_n.shape
    (torch.Size([3, 50, 16]), torch.Size([2, 3, 16]))
    """

    cell_class = MinGRUCell


class MinLSTM(_MinimalLayer):
    """Stacked minLSTM (Feng et al. 2024); see :class:`MinGRU` and :class:`rnnkit.cells.MinLSTMCell`."""

    cell_class = MinLSTMCell
