"""What the Elman, LSTM and GRU cells share: torch.nn's parameter layout, initialisation, and the
regularisers and normalisation that torch.nn lacks (their options: :class:`GatedOptions`).

Parameters follow torch.nn: ``weight_ih`` ``(G*H, input_size)``, ``weight_hh`` ``(G*H, R)``,
``bias_ih`` and ``bias_hh`` ``(G*H,)``, with G gates of H units and R the size of the fed-back
state (H, or ``proj_size`` for a projected LSTM). Options add their own parameters:
``layer_norm`` adds gains ``ln_ih_weight`` and ``ln_hh_weight`` ``(G*H,)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import Params, RecurrentCell
from ._options import GatedOptions

LAYER_NORM_EPS = 1e-5


class Noise(NamedTuple):
    """What stays fixed over one sequence, from :meth:`GatedCell.begin_sequence`."""

    training: bool
    h_mask: Tensor | None  # (B, R) recurrent-dropout mask, already scaled by 1/(1-p)
    weight_hh: Tensor | None  # weight_hh with its dropconnect mask applied


def gate_layer_norm(z: Tensor, gain: Tensor, num_gates: int, bias: Tensor | None = None) -> Tensor:
    """Normalise each gate's pre-activation over its own H units, then scale by ``gain`` (and add
    ``bias``: one ``addcmul``, 6% faster than the two ops over the input's (T, B, G*H)).

    ``z`` is ``(..., G*H)``; normalising per gate keeps one gate's scale from swamping another's
    (Ba et al. 2016, sec. 3.1 normalise the summed inputs of each unit group).
    """
    # a Python int: an exported graph (rnnkit.deploy) keeps H as a constant, as ONNX's LayerNorm needs
    size = int(z.shape[-1]) // num_gates
    if num_gates == 1:  # no unflatten: ONNX's exporter would keep the traced batch size in its shape
        normed = F.layer_norm(z, (size,), eps=LAYER_NORM_EPS)
    else:
        per_gate = z.unflatten(-1, (num_gates, -1))  # (..., G, H)
        normed = F.layer_norm(per_gate, (size,), eps=LAYER_NORM_EPS).flatten(-2)  # (..., G*H)
    return normed * gain if bias is None else torch.addcmul(bias, normed, gain)


def zoneout(previous: Tensor, new: Tensor, rate: float, training: bool) -> Tensor:
    """Zoneout (Krueger et al. 2016, eq. 3): each unit keeps its previous value with prob. rate.

    At evaluation the expectation is used, as the paper does (sec. 3).
    """
    if rate == 0.0:
        return new
    if training:
        keep = torch.rand_like(new) < rate
        return torch.where(keep, previous, new)
    return rate * previous + (1.0 - rate) * new


def _bernoulli_scaled(shape, rate: float, like: Tensor) -> Tensor:
    keep = torch.rand(shape, dtype=like.dtype, device=like.device) >= rate
    return keep.to(like.dtype) / (1.0 - rate)


class GatedCell(RecurrentCell):
    """Base of the torch.nn-compatible cells (Elman, LSTM, GRU).

    ``GatedCell(input_size, hidden_size, bias=True, device=None, dtype=None, **options)``: the
    options are the fields of the family's options dataclass (:attr:`Options`; for all three
    :class:`~rnnkit.cells.GatedOptions` documents ``layer_norm``, ``recurrent_dropout``,
    ``zoneout``, ``dropconnect`` and ``init``). They are kept as ``cell.options`` and each as an
    attribute of its name.

    ``owns_parameters=False`` builds the cell without parameters: a torch-compatible layer keeps
    them under torch.nn's flat names and passes them to :meth:`step`.
    """

    num_gates: int = 1
    Options: type[GatedOptions] = GatedOptions

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        owns_parameters: bool = True,
        **options,
    ) -> None:
        super().__init__(input_size, hidden_size)
        self.options = self.Options.create(type(self).__name__, bias=bias, **options)
        for name, value in self.options.items().items():
            setattr(self, name, value)
        self._check_options()
        self._has_options = bool(self.options.extras())  # options are frozen: read on every forward
        self.owns_parameters = owns_parameters
        if owns_parameters:
            for name, shape in self.parameter_shapes().items():
                self.register_parameter(name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
            self.reset_parameters()

    def _check_options(self) -> None:
        """Checks that need the sizes as well as the options (the LSTM's ``proj_size``)."""
        if self.layer_norm and self.hidden_size == 0:
            raise ValueError("layer_norm needs hidden_size >= 1 (it normalises over the hidden units), got 0")

    # --- parameters --------------------------------------------------------------------
    @property
    def recurrent_size(self) -> int:
        """Size of the state fed back through ``weight_hh``."""
        return self.hidden_size

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        gh = self.num_gates * self.hidden_size
        shapes = {"weight_ih": (gh, self.input_size), "weight_hh": (gh, self.recurrent_size)}
        if self.bias:
            shapes.update(bias_ih=(gh,), bias_hh=(gh,))
        if self.layer_norm:
            shapes.update(ln_ih_weight=(gh,), ln_hh_weight=(gh,))
        return shapes

    @property
    def has_options(self) -> bool:
        """True when the cell computes something torch.nn's fused kernels do not."""
        return self._has_options

    def reset_parameters(self) -> None:
        self.init_parameters(self.parameters_dict())

    @torch.no_grad()
    def init_parameters(self, params: Params) -> None:
        """Initialise ``params`` (this cell's names) in place, by the ``init`` scheme."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0  # torch.nn's rule
        for name, p in params.items():
            if name.startswith("ln_") and name.endswith("_weight"):
                p.fill_(1.0)
            elif name.startswith("ln_"):
                p.zero_()
            elif self.init == "torch":
                p.uniform_(-stdv, stdv)
            elif name == "weight_ih":
                for block in p.split(self.hidden_size):
                    nn.init.xavier_uniform_(block)
            elif name in ("weight_hh", "weight_hr"):
                for block in p.split(self.hidden_size):
                    nn.init.orthogonal_(block)
            else:  # biases and peepholes start at zero
                p.zero_()

    # --- shared pieces of the step -----------------------------------------------------
    def _input_part(self, x: Tensor, params: Params) -> Tensor:
        """``W_ih x + b_ih``, normalised per gate under layer_norm: ``(..., I) -> (..., G*H)``."""
        if not self.layer_norm:
            return F.linear(x, params["weight_ih"], params.get("bias_ih"))
        bias = params["bias_ih"] if self.bias else None
        return gate_layer_norm(F.linear(x, params["weight_ih"]), params["ln_ih_weight"], self.num_gates, bias)

    def _recurrent_part(
        self, h: Tensor, params: Params, ctx: Noise | None, rows: slice = slice(None)
    ) -> Tensor:
        """``W_hh h + b_hh`` over the gate rows ``rows``, with masks and layer norm applied."""
        if ctx is not None and ctx.h_mask is not None:
            h = h * ctx.h_mask
        weight = ctx.weight_hh if ctx is not None and ctx.weight_hh is not None else params["weight_hh"]
        if rows != slice(None):  # slice only when asked: a view defeats autocast's weight cache,
            weight = weight[rows]  # which then keeps one low-precision copy of W_hh per step
        bias = params["bias_hh"][rows] if self.bias else None
        if not self.layer_norm:
            return F.linear(h, weight, bias)
        gain = params["ln_hh_weight"][rows]
        return gate_layer_norm(F.linear(h, weight), gain, gain.shape[0] // self.hidden_size, bias)

    def project_input(self, x: Tensor, params: Params) -> Tensor:
        return self._input_part(x, params)

    def begin_sequence(self, batch_size: int, params: Params, *, training: bool) -> Noise:
        h_mask = weight_hh = None
        if training and self.recurrent_dropout:
            like = params["weight_hh"]
            h_mask = _bernoulli_scaled((batch_size, self.recurrent_size), self.recurrent_dropout, like)
        if training and self.dropconnect:
            w = params["weight_hh"]
            weight_hh = w * _bernoulli_scaled(w.shape, self.dropconnect, w)
        return Noise(training, h_mask, weight_hh)

    def _zoneout(self, previous: Tensor, new: Tensor, ctx: Noise | None) -> Tensor:
        return zoneout(previous, new, self.zoneout, ctx is not None and ctx.training)

    def extra_repr(self) -> str:
        changed = ", ".join(f"{name}={value!r}" for name, value in self.options.changed().items())
        return f"{self.input_size}, {self.hidden_size}" + (f", {changed}" if changed else "")
