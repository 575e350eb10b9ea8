"""``RNN``, ``LSTM``, ``GRU``: drop-in, weight-compatible replacements for torch.nn's layers.

They take torch.nn's constructor arguments in torch.nn's order and hold torch.nn's parameters
under torch.nn's names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``...), so
``layer.load_state_dict(torch_layer.state_dict())`` works both ways. What torch.nn lacks comes as
keyword-only options, each adding its own parameters under the same naming scheme.
"""

from __future__ import annotations


import torch
from torch import Tensor, nn

from .. import scan
from .._validation import check_choice, check_positive_int
from ..cells import (
    ElmanOptions,
    GatedCell,
    GatedOptions,
    GRUCell,
    GRUOptions,
    LSTMCell,
    LSTMOptions,
    Params,
    RNNCell,
    State,
)
from ._base import RecurrentLayer

BACKENDS = ("auto", "torch", "loop")


class _TorchCompatible(RecurrentLayer):
    """Shared body of RNN, LSTM and GRU: flat torch.nn parameters, one template cell per slot.

    ``backend``: ``"auto"`` (default) takes the fastest route of :mod:`rnnkit.scan` the options
    allow: on CPU rnnkit's compiled loop for a plain GRU or Elman RNN (faster than torch.nn's
    there, docs/performance.md), else torch.nn's fused kernel, else rnnkit's own loops (on CPU the
    compiled loop for a layer-norm LSTM, else the hand-written BPTT or the step loop);
    ``"torch"`` insists on torch.nn's fused kernel; ``"loop"`` never takes it, running rnnkit's
    own loops (the reference the tests hold the fused kernel to).
    """

    cell_class: type[GatedCell]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        device,
        dtype,
        *,
        options: GatedOptions,
        return_states: bool,
        learn_initial_state: bool,
        backend: str,
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
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.backend = check_choice("backend", backend, BACKENDS)
        self._cells: list[GatedCell] = []
        self._names: list[dict[str, str]] = []  # per slot: cell parameter name -> layer name
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                size = self.input_size if layer == 0 else self.num_directions * self._cells[0].output_size
                cell = self.cell_class(size, hidden_size, owns_parameters=False, **options.items())
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                names = {}
                for name, shape in cell.parameter_shapes().items():
                    names[name] = name + suffix
                    value = torch.empty(shape, device=device, dtype=dtype)
                    self.register_parameter(name + suffix, nn.Parameter(value))
                self._cells.append(cell)
                self._names.append(names)
        # the weights of the compiled streaming step, per layer in torch.nn's order (as _flat_weights)
        order = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
        self._step_names = [names[n] for names in self._names[:: self.num_directions] for n in order if n in names]
        self.options = options
        for name, value in options.items().items():  # rnn.layer_norm, lstm.proj_size...
            setattr(self, name, value)
        if self.backend == "torch":
            if self._cells[0].has_options:
                raise ValueError(
                    f"backend='torch' runs torch.nn's fused kernel, which cannot compute {self._cells[0].extra_repr()};"
                    " use backend='auto' or 'loop'"
                )
            if self.return_states:
                raise ValueError(
                    "backend='torch' runs torch.nn's fused kernel, which cannot give every step's state (return_states=True);"
                    " use backend='auto' or 'loop'"
                )
        self.reset_parameters()
        self._create_initial_state(device, dtype)

    def reset_parameters(self) -> None:
        """Re-initialise every weight by the cells' ``init`` scheme (torch.nn's by default)."""
        for slot, cell in enumerate(self._cells):
            cell.init_parameters(self._params(slot))

    def _params(self, slot: int) -> dict[str, Tensor]:
        return {name: getattr(self, flat) for name, flat in self._names[slot].items()}

    def cell(self, layer: int = 0, direction: int = 0) -> GatedCell:
        """The template cell at ``(layer, direction)``: the math, without parameters of its own."""
        return self._cells[layer * self.num_directions + direction]

    def cell_parameters(self, layer: int = 0, direction: int = 0) -> Params:
        return self._params(layer * self.num_directions + direction)

    @property
    def _flat_weights(self) -> list[Tensor]:
        """torch.nn's weight order: per layer and direction w_ih, w_hh, b_ih, b_hh, w_hr."""
        order = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
        return [getattr(self, names[n]) for names in self._names for n in order if n in names]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """Parameters grouped per layer and direction, as ``torch.nn.RNNBase.all_weights``."""
        return [list(self._params(slot).values()) for slot in range(len(self._cells))]

    @property
    def uses_fused_kernel(self) -> bool:
        """Whether ``forward`` runs torch.nn's fused kernel where rnnkit's compiled loop does not
        take the call first (without ``return_states``)."""
        return self.backend != "loop" and not self._cells[0].has_options and not self.return_states

    def flatten_parameters(self) -> None:
        """Accepted for drop-in compatibility with torch.nn; a no-op here."""

    def _excluded_routes(self) -> frozenset[str]:
        if self.backend == "loop":
            return frozenset({"torch"})
        if self.backend == "auto":
            return frozenset()
        # "torch": torch.nn's kernel, or the step loop where hooks need every step
        return frozenset(r.name for r in scan.routes_for(self._cells[0])) - {"torch", "loop"}

    def _run_stack(self, route: scan.Route, x: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
        return scan.torch_forward(
            self.mode,
            x,
            state,
            self._flat_weights,
            lengths,
            bias=self.bias,
            num_layers=self.num_layers,
            dropout=self.dropout,
            training=self.training,
            bidirectional=self.bidirectional,
        )

    def _step_compiles(self, x: Tensor) -> bool:
        # every layer of the step in one compiled call (rnnkit.scan._step) where nothing needs
        # autograd, options or dropout between the layers, and backend="torch" did not insist
        return (
            self.backend != "torch"
            and not self._cells[0].has_options
            and not (self.dropout and self.training and self.num_layers > 1)
            and scan.compiled_step_applies(x)
        )

    def _step_compiled(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        params = self._parameters  # a dict lookup per weight: getattr on a module costs ~0.5 us each
        weights = [params[name] for name in self._step_names]
        proj = bool(getattr(self, "proj_size", 0))
        return scan.compiled_step(self.mode, x, state, weights, bias=self.bias, proj=proj)

    @property
    def _steps_fused(self) -> bool:
        """Whether :meth:`_step_layer` calls torch.nn's cell kernels (what torch.nn.LSTMCell calls)."""
        return self.uses_fused_kernel and not getattr(self, "proj_size", 0)

    def _layer_step_route(self) -> str:
        return "torch" if self._steps_fused else "cells"

    def _step_layer(self, layer: int, x: Tensor, state: State) -> tuple[Tensor, State]:
        if not self._steps_fused:
            return super()._step_layer(layer, x, state)
        names = self._names[layer * self.num_directions]
        weights = [getattr(self, names[n]) if n in names else None for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        if self.mode == "LSTM":
            h, c = scan.torch_cell_step(self.mode, x, state, weights)
            return h, (h, c)
        h = scan.torch_cell_step(self.mode, x, state, weights)
        return h, (h,)

    @property
    def prefers_compiled_loop(self) -> bool:
        """Whether ``forward`` takes rnnkit's compiled loop over torch.nn's kernel where it is built
        (a plain GRU or Elman RNN, backend="auto", on CPU in float32/float64 outside autocast)."""
        cell = self._cells[0]
        return self.backend == "auto" and not cell.has_options and scan.ranks_before(cell, "compiled", "torch")

    def extra_repr(self) -> str:
        cell = self._cells[0].extra_repr().split(", ", 2)
        parts = [f"{self.input_size}, {self.hidden_size}"]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        parts.extend(cell[2:])
        for name in ("batch_first", "bidirectional", "return_states", "learn_initial_state"):
            if getattr(self, name):
                parts.append(f"{name}=True")
        if self.dropout:
            parts.append(f"dropout={self.dropout}")
        if self.backend != "auto":
            parts.append(f"backend={self.backend!r}")
        return ", ".join(parts)


class RNN(_TorchCompatible):
    r"""Elman RNN layer, a drop-in for ``torch.nn.RNN`` (same arguments, parameters, outputs).

    Each step: :math:`h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})` with
    :math:`\phi` = ``nonlinearity`` (``"tanh"`` or ``"relu"``); see :class:`rnnkit.RNNCell`.

    Keyword-only options beyond torch.nn: the cell's, documented in :class:`rnnkit.cells.ElmanOptions`;
    ``return_states`` and ``learn_initial_state`` (:class:`rnnkit.layers.RecurrentLayer`); ``backend``.

    >>> import torch
    >>> rnn = RNN(10, 20, num_layers=2, batch_first=True)
    >>> output, h_n = rnn(torch.randn(3, 5, 10))
    >>> output.shape, h_n.shape
    (torch.Size([3, 5, 20]), torch.Size([2, 3, 20]))
    """

    cell_class = RNNCell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        dropconnect: float = 0.0,
        init: str = "torch",
        return_states: bool = False,
        learn_initial_state: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, batch_first, dropout, bidirectional, device, dtype,
            options=ElmanOptions.from_arguments(locals()), return_states=return_states,
            learn_initial_state=learn_initial_state, backend=backend,
        )  # fmt: skip
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


class LSTM(_TorchCompatible):
    r"""LSTM layer, a drop-in for ``torch.nn.LSTM`` (same arguments, parameters, outputs).

    Gate order ``i, f, g, o``; ``proj_size > 0`` adds ``weight_hr_l{k}`` as torch.nn does. The
    equations and the options' parameters are in :class:`rnnkit.LSTMCell`.

    Keyword-only options beyond torch.nn: the cell's, documented in :class:`rnnkit.cells.LSTMOptions`;
    ``return_states`` and ``learn_initial_state`` (:class:`rnnkit.layers.RecurrentLayer`); ``backend``.

    >>> import torch
    >>> lstm = LSTM(10, 20, num_layers=2, layer_norm=True, zoneout=0.1)
    >>> output, (h_n, c_n) = lstm(torch.randn(5, 3, 10), lengths=[5, 4, 2])
    >>> output.shape, h_n.shape, c_n.shape
    (torch.Size([5, 3, 20]), torch.Size([2, 3, 20]), torch.Size([2, 3, 20]))
    """

    cell_class = LSTMCell
    mode = "LSTM"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        layer_norm: bool = False,
        peepholes: bool = False,
        forget_bias: float | None = None,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        dropconnect: float = 0.0,
        init: str = "torch",
        return_states: bool = False,
        learn_initial_state: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, batch_first, dropout, bidirectional, device, dtype,
            options=LSTMOptions.from_arguments(locals()), return_states=return_states,
            learn_initial_state=learn_initial_state, backend=backend,
        )  # fmt: skip


class GRU(_TorchCompatible):
    r"""GRU layer, a drop-in for ``torch.nn.GRU`` (same arguments, parameters, outputs).

    Gate order ``r, z, n``; ``reset_after=False`` gives the reset-before form (Cho et al. 2014,
    Keras ``reset_after=False``) on the same parameter shapes. Equations in :class:`rnnkit.GRUCell`.

    Keyword-only options beyond torch.nn: the cell's, documented in :class:`rnnkit.cells.GRUOptions`;
    ``return_states`` and ``learn_initial_state`` (:class:`rnnkit.layers.RecurrentLayer`); ``backend``.

    >>> import torch
    >>> gru = GRU(10, 20, bidirectional=True, reset_after=False)
    >>> output, h_n = gru(torch.randn(5, 3, 10))
    >>> output.shape, h_n.shape
    (torch.Size([5, 3, 40]), torch.Size([2, 3, 20]))
    """

    cell_class = GRUCell
    mode = "GRU"

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
        reset_after: bool = True,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        dropconnect: float = 0.0,
        init: str = "torch",
        return_states: bool = False,
        learn_initial_state: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, batch_first, dropout, bidirectional, device, dtype,
            options=GRUOptions.from_arguments(locals()), return_states=return_states,
            learn_initial_state=learn_initial_state, backend=backend,
        )  # fmt: skip
