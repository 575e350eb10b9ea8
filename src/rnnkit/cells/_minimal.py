"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?").

Their gates read the input only, so ``h_t = a_t * h_{t-1} + b_t`` is a linear recurrence whose
coefficients are known for every step at once: training runs a parallel scan over time, and
generation runs the same math one step at a time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_bool, check_choice, check_positive_int
from ._base import Params, RecurrentCell, State
from ._compiled import linear_scan, mingru_scan


def g(x: Tensor) -> Tensor:
    """Positive activation for the candidate state (appendix B.3): x + 0.5 for x >= 0, else sigmoid."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """log(g(x)) computed without leaving log space."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def log_space_scan(
    log_a: Tensor, log_b: Tensor, h0: Tensor, chunk: int
) -> Tensor:
    """All states of ``h_t = a_t * h_{t-1} + b_t`` from log-coefficients ``(T, B, H)`` and ``h0`` ``(B, H)``.

    Within a chunk (Heinsen 2023; Feng et al. 2024, appendix B.2):
    ``h_t = exp(A_t) * h0 + exp(A_t + logcumsumexp_s<=t(log b_s - A_s))`` with
    ``A_t = cumsum(log a)``. ``h0`` enters linearly, so it may have any sign. Chunks run in
    sequence, each starting from the last state of the one before: that bounds ``|A_t|``, whose
    growth with T would otherwise cost float32 precision in the subtraction above. The error
    grows about linearly with the chunk: measured against the step form over 2,000 steps in
    float32, chunks of 32 stayed within 6e-6, 64 within 2e-5, unchunked 4e-4.
    """
    states = []
    for la, lb in zip(log_a.split(chunk), log_b.split(chunk)):
        a_star = la.cumsum(dim=0)  # (C, B, H)
        h = torch.exp(a_star + torch.logcumsumexp(lb - a_star, dim=0)) + torch.exp(a_star) * h0
        states.append(h)
        h0 = h[-1]
    return torch.cat(states)  # (T, B, H)


class LinearRecurrence(torch.autograd.Function):
    """``h_t = a_t * h_{t-1} + b_t`` for all steps, ``a``, ``b`` ``(T, B, H)``, ``h0`` ``(B, H)``.

    One fused multiply-add per step and no autograd graph inside: the backward pass is the same
    recurrence run in reverse, ``g_t = dL/dh_t + a_{t+1} * g_{t+1}``, after which
    ``dL/da_t = g_t * h_{t-1}`` and ``dL/db_t = g_t`` are single vectorised products. In linear
    space it is exact (no logarithms) and takes any sign; on a CPU it is the fastest scan
    (docs/performance.md).
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        hs = torch.empty_like(b)
        h = h0
        for a_t, b_t, out in zip(a.unbind(0), b.unbind(0), hs.unbind(0)):
            h = torch.addcmul(b_t, a_t, h, out=out)
        ctx.save_for_backward(a, hs, h0)
        return hs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        a, hs, h0 = ctx.saved_tensors
        g = torch.empty_like(grad)
        carry = torch.zeros_like(h0)
        a_next = torch.cat([a[1:], torch.zeros_like(a[:1])])  # a_{t+1}, and nothing past the end
        for grad_t, a_t, out in zip(grad.unbind(0)[::-1], a_next.unbind(0)[::-1], g.unbind(0)[::-1]):
            carry = torch.addcmul(grad_t, a_t, carry, out=out)
        h_prev = torch.cat([h0.unsqueeze(0), hs[:-1]])  # (T, B, H)
        return g * h_prev, g, g[0] * a[0]


SCANS = ("auto", "log", "sequential")


class _MinimalCell(RecurrentCell):
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
        check_bool("bias", bias)
        self.scan_mode = check_choice("scan", scan, SCANS)
        self.scan_chunk = check_positive_int("scan_chunk", scan_chunk)
        factory = {"device": device, "dtype": dtype}
        rows = self.num_blocks * hidden_size
        self.weight = nn.Parameter(torch.empty(rows, input_size, **factory))
        self.bias = nn.Parameter(torch.empty(rows, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.input_size)  # nn.Linear's default
        with torch.no_grad():
            self.weight.uniform_(-stdv, stdv)
            if self.bias is not None:
                self.bias.uniform_(-stdv, stdv)

    def project_input(self, x: Tensor, params: Params) -> Tensor:
        return F.linear(x, params["weight"], params.get("bias"))  # (..., k*H)

    def _coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        """``a``, ``b`` of ``h_t = a_t * h_{t-1} + b_t``, from the projected input ``(..., k*H)``."""
        raise NotImplementedError

    def _log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        """``log a``, ``log b`` of the same recurrence, computed without leaving log space."""
        raise NotImplementedError

    def step(self, xp_t: Tensor, state: State, params: Params, ctx=None) -> tuple[Tensor, State]:
        a, b = self._coefficients(xp_t)  # (B, H) each
        h = a * state[0] + b
        return h, (h,)

    def scan(self, xp, state, params, ctx=None, mask=None, return_states=False):
        # the log-space scan is parallel over time (Feng et al. 2024, appendix B): the choice
        # for GPUs; on a CPU the fused sequential recurrence measured faster at every length
        log_space = self.scan_mode == "log" or (self.scan_mode == "auto" and xp.device.type != "cpu")
        m = mask.unsqueeze(-1) if mask is not None else None
        if log_space:
            log_a, log_b = self._log_coefficients(xp)  # (T, B, H) each
            if m is not None:  # past a sequence's end: a = 1, b = 0, so the state is held
                log_a = torch.where(m, log_a, torch.zeros_like(log_a))
                log_b = torch.where(m, log_b, torch.full_like(log_b, -math.inf))
            hs = log_space_scan(log_a, log_b, state[0], self.scan_chunk)  # (T, B, H)
        else:
            hs = self._compiled_scan(xp, state[0], mask)  # gates and recurrence in one pass
            if hs is None:
                a, b = self._coefficients(xp)
                if m is not None:
                    a = torch.where(m, a, torch.ones_like(a))
                    b = torch.where(m, b, torch.zeros_like(b))
                hs = linear_scan(a, b, state[0])  # (T, B, H): compiled, where built
                if hs is None:
                    hs = LinearRecurrence.apply(a, b, state[0])
        outputs = torch.where(mask.unsqueeze(-1), hs, 0.0) if mask is not None else hs
        return outputs, (hs[-1],), ((hs,) if return_states else None)

    def _compiled_scan(self, xp: Tensor, h0: Tensor, mask: Tensor | None) -> Tensor | None:
        """All states through one compiled pass over gates and recurrence, or None (the default)."""
        return None

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        text = text if self.bias is not None else f"{text}, bias=False"
        return text if self.scan_mode == "auto" else f"{text}, scan={self.scan_mode!r}"


class MinGRUCell(_MinimalCell):
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

    def _compiled_scan(self, xp: Tensor, h0: Tensor, mask: Tensor | None) -> Tensor | None:
        return mingru_scan(xp, h0, mask)

    def _coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        k, h_tilde = xp.chunk(2, dim=-1)
        z = torch.sigmoid(k)
        return 1.0 - z, z * g(h_tilde)

    def _log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        k, h_tilde = xp.chunk(2, dim=-1)
        # log(1 - z) = -softplus(k), log z = -softplus(-k)
        return -F.softplus(k), -F.softplus(-k) + log_g(h_tilde)


class MinLSTMCell(_MinimalCell):
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

    def _coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        k_f, k_i, h_tilde = xp.chunk(3, dim=-1)
        d = self._gate_logit(k_f, k_i)
        return torch.sigmoid(-d), torch.sigmoid(d) * g(h_tilde)

    def _log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        k_f, k_i, h_tilde = xp.chunk(3, dim=-1)
        d = self._gate_logit(k_f, k_i)
        return -F.softplus(d), -F.softplus(-d) + log_g(h_tilde)
