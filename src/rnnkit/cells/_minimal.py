"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?").

Their gates read the input only, so ``h_t = a_t * h_{t-1} + b_t`` is a linear recurrence whose
coefficients are known for every step at once: :meth:`~MinGRUCell.coefficients` (and their logs)
for all steps, which :mod:`rnnkit.scan` runs as a parallel or a fused sequential scan in
training, and :meth:`~MinGRUCell.step`, the same math one step at a time, for generation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import Params, RecurrentCell, State
from ._options import MinimalOptions


def g(x: Tensor) -> Tensor:
    """Positive activation for the candidate state (appendix B.3): x + 0.5 for x >= 0, else sigmoid."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """log(g(x)) computed without leaving log space."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


class MinimalCell(RecurrentCell):
    """Shared parts: one input projection (``weight`` ``(k*H, I)``, ``bias`` ``(k*H,)``), no recurrent weights."""

    num_blocks: int

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        scan: str = "auto",
        scan_chunk: int = 32,
    ) -> None:
        super().__init__(input_size, hidden_size)
        self.options = MinimalOptions.create(type(self).__name__, bias=bias, scan=scan, scan_chunk=scan_chunk)
        self.scan_mode, self.scan_chunk = self.options.scan, self.options.scan_chunk
        factory = {"device": device, "dtype": dtype}
        rows = self.num_blocks * hidden_size
        self.weight = nn.Parameter(torch.empty(rows, input_size, **factory))
        self.bias = nn.Parameter(torch.empty(rows, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.input_size) if self.input_size > 0 else 0.0  # nn.Linear's default
        with torch.no_grad():
            self.weight.uniform_(-stdv, stdv)
            if self.bias is not None:
                self.bias.uniform_(-stdv, stdv)

    def project_input(self, x: Tensor, params: Params) -> Tensor:
        return F.linear(x, params["weight"], params.get("bias"))  # (..., k*H)

    def coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        """``a``, ``b`` of ``h_t = a_t * h_{t-1} + b_t``, from the projected input ``(..., k*H)``."""
        raise NotImplementedError

    def log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        """``log a``, ``log b`` of the same recurrence, computed without leaving log space."""
        raise NotImplementedError

    def step(self, xp_t: Tensor, state: State, params: Params, ctx=None) -> tuple[Tensor, State]:
        a, b = self.coefficients(xp_t)  # (B, H) each
        h = a * state[0] + b
        return h, (h,)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        text = text if self.bias is not None else f"{text}, bias=False"
        return text if self.scan_mode == "auto" else f"{text}, scan={self.scan_mode!r}"


class MinGRUCell(MinimalCell):
    r"""minGRU (Feng et al. 2024, sec. 3.1; log-space form of appendix B.3).

    .. math::
        z_t = \sigma(W_z x_t + b_z), \quad \tilde h_t = g(W_h x_t + b_h), \quad
        h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

    with :math:`g(x) = x + 0.5` for :math:`x \ge 0` and :math:`\sigma(x)` otherwise.
    Parameters: ``weight`` ``(2H, I)`` (rows ``z`` then ``h``), ``bias`` ``(2H,)``.

    >>> import torch
    >>> cell = MinGRUCell(3, 5)
    >>> cell(torch.randn(2, 3)).shape
    torch.Size([2, 5])
    """

    num_blocks = 2

    def coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        k, h_tilde = xp.chunk(2, dim=-1)
        z = torch.sigmoid(k)
        return 1.0 - z, z * g(h_tilde)

    def log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        k, h_tilde = xp.chunk(2, dim=-1)
        # log(1 - z) = -softplus(k), log z = -softplus(-k)
        return -F.softplus(k), -F.softplus(-k) + log_g(h_tilde)


class MinLSTMCell(MinimalCell):
    r"""minLSTM (Feng et al. 2024, sec. 3.2; log-space form of appendix B.3).

    .. math::
        f_t = \sigma(W_f x_t + b_f), \quad i_t = \sigma(W_i x_t + b_i), \quad
        \tilde h_t = g(W_h x_t + b_h) \\
        f'_t = \frac{f_t}{f_t + i_t}, \quad i'_t = \frac{i_t}{f_t + i_t}, \quad
        h_t = f'_t \odot h_{t-1} + i'_t \odot \tilde h_t

    Parameters: ``weight`` ``(3H, I)`` (rows ``f``, ``i``, ``h``), ``bias`` ``(3H,)``.
    """

    num_blocks = 3

    @staticmethod
    def _gate_logit(k_f: Tensor, k_i: Tensor) -> Tensor:
        # log i - log f, with log sigma(k) = -softplus(-k): then f' = sigma(-d), i' = sigma(d)
        return F.softplus(-k_f) - F.softplus(-k_i)

    def coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        k_f, k_i, h_tilde = xp.chunk(3, dim=-1)
        d = self._gate_logit(k_f, k_i)
        return torch.sigmoid(-d), torch.sigmoid(d) * g(h_tilde)

    def log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        k_f, k_i, h_tilde = xp.chunk(3, dim=-1)
        d = self._gate_logit(k_f, k_i)
        return -F.softplus(d), -F.softplus(-d) + log_g(h_tilde)
