"""Elman RNN cell, weight-compatible with ``torch.nn.RNNCell``."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import Params, State
from ._gated import GatedCell, Noise
from ._options import ElmanOptions

NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}


class RNNCell(GatedCell):
    r"""Elman recurrent cell (Elman 1990), as ``torch.nn.RNNCell``.

    .. math::
        h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \quad \phi \in \{\tanh, \mathrm{ReLU}\}

    Parameters: ``weight_ih`` ``(H, I)``, ``weight_hh`` ``(H, H)``, ``bias_ih``, ``bias_hh``
    ``(H,)``. With ``layer_norm`` each of the two matmuls is layer-normalised before the bias.
    Options: :class:`~rnnkit.cells.ElmanOptions`.

    >>> import torch
    >>> cell = RNNCell(3, 5, nonlinearity="relu")
    >>> cell(torch.randn(2, 3)).shape
    torch.Size([2, 5])
    """

    num_gates = 1
    Options = ElmanOptions

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
        **options,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype, nonlinearity=nonlinearity, **options)

    def step(self, xp_t: Tensor, state: State, params: Params, ctx: Noise | None = None) -> tuple[Tensor, State]:
        (h,) = state
        pre = xp_t + self._recurrent_part(h, params, ctx)  # (B, H)
        h_new = self._zoneout(h, NONLINEARITIES[self.nonlinearity](pre), ctx)
        return h_new, (h_new,)
