"""Long short-term memory cell, weight-compatible with ``torch.nn.LSTMCell`` and ``nn.LSTM``."""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_bool, check_nonnegative_int
from ._base import Params, State
from ._common import LAYER_NORM_EPS, GatedCell, Noise


class LSTMCell(GatedCell):
    r"""Long short-term memory (Hochreiter & Schmidhuber 1997), as ``torch.nn.LSTMCell``.

    Gate order ``i, f, g, o`` (torch.nn's):

    .. math::
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi} + p_i \odot c_{t-1}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf} + p_f \odot c_{t-1}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho} + p_o \odot c_t) \\
        h_t &= W_{hr} (o_t \odot \tanh(c_t))

    The peephole terms :math:`p` exist only with ``peepholes=True`` (Gers & Schmidhuber 2000,
    diagonal weights ``weight_ch`` ``(3H,)`` laid out ``i, f, o``); :math:`W_{hr}` only with
    ``proj_size > 0`` (Sak et al. 2014; ``weight_hr`` ``(P, H)``, and then ``weight_hh`` is
    ``(4H, P)``). ``layer_norm=True`` normalises each gate's input and recurrent pre-activation and
    the cell state before its tanh (Ba et al. 2016, sec. 3.1; gains ``ln_ih_weight``,
    ``ln_hh_weight`` ``(4H,)``; ``ln_c_weight``, ``ln_c_bias`` ``(H,)``). ``zoneout`` applies to
    both ``h`` and ``c``. ``forget_bias`` sets the initial forget-gate bias (Gers et al. 2000;
    Jozefowicz et al. 2015 recommend 1.0): ``bias_ih``'s forget block gets the value and
    ``bias_hh``'s is zeroed, so the sum is exactly ``forget_bias``.

    >>> import torch
    >>> cell = LSTMCell(3, 5, peepholes=True, forget_bias=1.0)
    >>> h, c = cell(torch.randn(2, 3))
    >>> h.shape, c.shape
    (torch.Size([2, 5]), torch.Size([2, 5]))
    """

    num_gates = 4
    state_names = ("h", "c")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        proj_size: int = 0,
        peepholes: bool = False,
        forget_bias: float | None = None,
        **options,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype, **options)
        self.proj_size = check_nonnegative_int("proj_size", proj_size)
        if self.proj_size >= self.hidden_size:
            raise ValueError(
                f"proj_size must be smaller than hidden_size ({self.hidden_size}), got {self.proj_size}"
            )
        self.peepholes = check_bool("peepholes", peepholes)
        if forget_bias is not None:
            if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real):
                raise TypeError(f"forget_bias must be a float or None, got {forget_bias!r}")
            if not self.bias:
                raise ValueError("forget_bias needs bias=True, got bias=False")
            forget_bias = float(forget_bias)
        self.forget_bias = forget_bias
        self._create_parameters()

    @property
    def recurrent_size(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def state_sizes(self) -> tuple[int, ...]:
        return (self.recurrent_size, self.hidden_size)

    @property
    def output_size(self) -> int:
        return self.recurrent_size

    @property
    def has_options(self) -> bool:
        # proj_size and forget_bias are torch.nn's own (the latter only an initialisation)
        return super().has_options or self.peepholes

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = super().parameter_shapes()
        H = self.hidden_size
        if self.proj_size:
            shapes["weight_hr"] = (self.proj_size, H)
        if self.peepholes:
            shapes["weight_ch"] = (3 * H,)
        if self.layer_norm:
            shapes.update(ln_c_weight=(H,), ln_c_bias=(H,))
        return shapes

    @torch.no_grad()
    def init_parameters(self, params: Params) -> None:
        super().init_parameters(params)
        if self.forget_bias is not None:
            forget = slice(self.hidden_size, 2 * self.hidden_size)
            params["bias_ih"][forget] = self.forget_bias
            params["bias_hh"][forget] = 0.0

    def step(self, xp_t: Tensor, state: State, params: Params, ctx: Noise | None = None) -> tuple[Tensor, State]:
        h, c = state  # (B, R), (B, H)
        gates = xp_t + self._recurrent_part(h, params, ctx)  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=-1)  # each (B, H)
        if self.peepholes:
            p_i, p_f, p_o = params["weight_ch"].chunk(3)
            i = i + p_i * c
            f = f + p_f * c
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if self.peepholes:
            o = o + p_o * c_new  # the output gate peeks at the new cell state
        if self.layer_norm:
            c_out = F.layer_norm(
                c_new, (self.hidden_size,), params["ln_c_weight"], params["ln_c_bias"], LAYER_NORM_EPS
            )
        else:
            c_out = c_new
        h_new = torch.sigmoid(o) * torch.tanh(c_out)
        if self.proj_size:
            h_new = F.linear(h_new, params["weight_hr"])  # (B, P)
        h_new = self._zoneout(h, h_new, ctx)
        c_new = self._zoneout(c, c_new, ctx)
        return h_new, (h_new, c_new)

    def extra_repr(self) -> str:
        parts = [super().extra_repr()]
        if self.proj_size:
            parts.append(f"proj_size={self.proj_size}")
        if self.peepholes:
            parts.append("peepholes=True")
        if self.forget_bias is not None:
            parts.append(f"forget_bias={self.forget_bias}")
        return ", ".join(parts)
