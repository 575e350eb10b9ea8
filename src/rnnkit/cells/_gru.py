"""Gated recurrent unit cell, weight-compatible with ``torch.nn.GRUCell``."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import Params, State
from ._gated import GatedCell, Noise
from ._options import GRUOptions


class GRUCell(GatedCell):
    r"""Gated recurrent unit (Cho et al. 2014), as ``torch.nn.GRUCell``; gate order ``r, z, n``.

    With ``reset_after=True`` (the default; torch.nn's and cuDNN's form):

    .. math::
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    With ``reset_after=False`` the reset gate is applied before the recurrent matmul, as in
    Cho et al. (2014, eq. 8) and Keras' ``reset_after=False``:
    :math:`n_t = \tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \odot h_{t-1}) + b_{hn})`.

    Parameters: ``weight_ih`` ``(3H, I)``, ``weight_hh`` ``(3H, H)``, ``bias_ih``, ``bias_hh``
    ``(3H,)`` -- the same shapes in both forms. Options: :class:`~rnnkit.cells.GRUOptions`.

    >>> import torch
    >>> cell = GRUCell(3, 5, reset_after=False, layer_norm=True)
    >>> cell(torch.randn(2, 3)).shape
    torch.Size([2, 5])
    """

    num_gates = 3
    Options = GRUOptions

    def step(self, xp_t: Tensor, state: State, params: Params, ctx: Noise | None = None) -> tuple[Tensor, State]:
        (h,) = state
        H = self.hidden_size
        x_r, x_z, x_n = xp_t.tensor_split(3, dim=-1)  # each (B, H); tensor_split: H may be 0
        if self.reset_after:
            h_r, h_z, h_n = self._recurrent_part(h, params, ctx).tensor_split(3, dim=-1)
            r = torch.sigmoid(x_r + h_r)
            z = torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
        else:
            h_r, h_z = self._recurrent_part(h, params, ctx, slice(0, 2 * H)).tensor_split(2, dim=-1)
            r = torch.sigmoid(x_r + h_r)
            z = torch.sigmoid(x_z + h_z)
            # the reset gate scales the state before W_hn; recurrent dropout still applies to h
            n = torch.tanh(x_n + self._recurrent_part(r * h, params, ctx, slice(2 * H, 3 * H)))
        h_new = self._zoneout(h, (1.0 - z) * n + z * h, ctx)
        return h_new, (h_new,)
