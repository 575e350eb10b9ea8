"""Long short-term memory cell, weight-compatible with ``torch.nn.LSTMCell`` and ``nn.LSTM``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._base import Params, State
from ._gated import LAYER_NORM_EPS, GatedCell, Noise
from ._options import LSTMOptions


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
    ``bias_hh``'s is zeroed, so the sum is exactly ``forget_bias``. Options:
    :class:`~rnnkit.cells.LSTMOptions`.

    >>> import torch
    >>> cell = LSTMCell(3, 5, peepholes=True, forget_bias=1.0)
    >>> h, c = cell(torch.randn(2, 3))
    >>> h.shape, c.shape
    (torch.Size([2, 5]), torch.Size([2, 5]))
    """

    num_gates = 4
    state_names = ("h", "c")
    Options = LSTMOptions

    def _check_options(self) -> None:
        super()._check_options()
        if self.proj_size and self.proj_size >= self.hidden_size:
            raise ValueError(
                f"proj_size must be smaller than hidden_size ({self.hidden_size}), got {self.proj_size}"
            )

    @property
    def recurrent_size(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def state_sizes(self) -> tuple[int, ...]:
        return (self.recurrent_size, self.hidden_size)

    @property
    def output_size(self) -> int:
        return self.recurrent_size

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
