"""minGRU and minLSTM's time loops: their linear recurrence ``h_t = a_t * h_{t-1} + b_t`` run as a
parallel scan in log space (for GPUs), as a fused sequential recurrence (on CPUs; compiled where
built, PyTorch ops otherwise), and their routes. The coefficients are the cells' own
(:meth:`~rnnkit.cells.MinGRUCell.coefficients`); past a sequence's end a = 1 and b = 0, so the
state is held.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import _native
from ..cells import MinGRUCell, MinimalCell
from ._compiled import applies
from ._routes import Route, ScanCall, ScanResult


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
    (docs/performance.md). Differentiable to any order: under ``create_graph=True`` the reverse
    recurrence is itself a :class:`LinearRecurrence` (:func:`recurrence_grads`).
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
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        a, hs, h0 = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: the same math, recorded
            return recurrence_grads(grad, a, hs, h0)
        g = torch.empty_like(grad)
        carry = torch.zeros_like(h0)
        a_next = torch.cat([a[1:], torch.zeros_like(a[:1])])  # a_{t+1}, and nothing past the end
        for grad_t, a_t, out in zip(grad.unbind(0)[::-1], a_next.unbind(0)[::-1], g.unbind(0)[::-1]):
            carry = torch.addcmul(grad_t, a_t, carry, out=out)
        h_prev = torch.cat([h0.unsqueeze(0), hs[:-1]])  # (T, B, H)
        return g * h_prev, g, g[0] * a[0]


def recurrence_grads(grad: Tensor, a: Tensor, hs: Tensor, h0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``dL/da``, ``dL/db``, ``dL/dh0`` of :class:`LinearRecurrence` as differentiable ops: the
    reverse recurrence ``g_t = dL/dh_t + a_{t+1} g_{t+1}`` is a linear recurrence in reversed time."""
    a_next = torch.cat([a[1:], torch.zeros_like(a[:1])])  # (T, B, H): a_{t+1}, nothing past the end
    g = LinearRecurrence.apply(a_next.flip(0), grad.flip(0), torch.zeros_like(h0)).flip(0)
    h_prev = torch.cat([h0.unsqueeze(0), hs[:-1]])  # (T, B, H)
    return g * h_prev, g, g[0] * a[0]


class CompiledLinearRecurrence(torch.autograd.Function):
    """minGRU/minLSTM's recurrence; the twin of :class:`LinearRecurrence` (to which it hands a
    second derivative)."""

    @staticmethod
    def forward(fctx, a, b, h0):
        a, h0 = a.contiguous(), h0.contiguous()  # (T, B, H), (B, H)
        hs = _native.ops().linear_scan_forward(a, b.contiguous(), h0)
        fctx.save_for_backward(a, hs, h0)
        return hs

    @staticmethod
    def backward(fctx, grad):
        a, hs, h0 = fctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True
            return recurrence_grads(grad, a, hs, h0)
        da, db, dh0 = _native.ops().linear_scan_backward(grad, a, hs, h0)
        return da, db, dh0


class CompiledMinGRU(torch.autograd.Function):
    """The twin of :class:`~rnnkit.cells.MinGRUCell`'s coefficients plus the linear scan; under
    ``create_graph=True`` its gradient is that twin's, recorded (``xp`` is saved)."""

    @staticmethod
    def forward(fctx, xp, h0, valid, cell):
        xp, h0 = xp.contiguous(), h0.contiguous()
        hs = _native.ops().mingru_forward(xp, h0, valid)
        fctx.save_for_backward(xp, hs, h0, valid)
        fctx.cell = cell
        return hs

    @staticmethod
    def backward(fctx, grad):
        xp, hs, h0, valid = fctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: differentiate the PyTorch twin
            mask = valid.bool() if valid is not None else None
            a, b = _held(*fctx.cell.coefficients(xp), mask, 1.0)
            twin = LinearRecurrence.apply(a, b, h0)
            need = fctx.needs_input_grad[:2]
            found = iter(torch.autograd.grad(twin, [t for t, n in zip((xp, h0), need) if n], grad, create_graph=True))
            return *(next(found) if n else None for n in need), None, None
        dxp, dh0 = _native.ops().mingru_backward(grad, xp, hs, h0, valid)
        return dxp, dh0, None, None


def _log_space(cell: MinimalCell, xp: Tensor) -> bool:
    # the log-space scan is parallel over time (Feng et al. 2024, appendix B): the choice for
    # GPUs; on a CPU the fused sequential recurrence measured faster at every length
    return cell.scan_mode == "log" or (cell.scan_mode == "auto" and xp.device.type != "cpu")


def _finish(hs: Tensor, call: ScanCall) -> ScanResult:
    outputs = torch.where(call.mask.unsqueeze(-1), hs, 0.0) if call.mask is not None else hs
    return outputs, (hs[-1],), ((hs,) if call.return_states else None)


def _held(a: Tensor, b: Tensor, mask: Tensor | None, one: float) -> tuple[Tensor, Tensor]:
    """The coefficients with ``a = one`` and ``b`` at its identity past each sequence's end."""
    if mask is None:
        return a, b
    m = mask.unsqueeze(-1)  # (T, B, 1)
    return torch.where(m, a, torch.full_like(a, one)), torch.where(m, b, torch.full_like(b, 0.0 if one else -math.inf))


def _run_log(cell: MinimalCell, call: ScanCall) -> ScanResult:
    log_a, log_b = _held(*cell.log_coefficients(call.xp), call.mask, 0.0)  # (T, B, H) each: log 1 = 0, log 0
    return _finish(log_space_scan(log_a, log_b, call.state[0], cell.scan_chunk), call)


def _run_linear(cell: MinimalCell, call: ScanCall) -> ScanResult:
    a, b = _held(*cell.coefficients(call.xp), call.mask, 1.0)
    return _finish(LinearRecurrence.apply(a, b, call.state[0]), call)


def _supports_compiled(cell: MinimalCell, call: ScanCall) -> bool:
    return not _log_space(cell, call.xp) and applies(call.xp) and call.state[0].dtype == call.xp.dtype


def _run_compiled_linear(cell: MinimalCell, call: ScanCall) -> ScanResult:
    a, b = _held(*cell.coefficients(call.xp), call.mask, 1.0)
    return _finish(CompiledLinearRecurrence.apply(a, b, call.state[0]), call)


def _run_compiled_mingru(cell: MinGRUCell, call: ScanCall) -> ScanResult:
    """Gates and recurrence in one compiled pass: ``xp`` (T, B, 2H) -> states (T, B, H)."""
    valid = call.mask.to(call.xp.dtype) if call.mask is not None else None
    return _finish(CompiledMinGRU.apply(call.xp, call.state[0], valid, cell), call)


LOG = Route("log", lambda cell, call: _log_space(cell, call.xp), _run_log)
LINEAR = Route("linear", lambda cell, call: not _log_space(cell, call.xp), _run_linear)
#: minGRU's routes: its gates and recurrence compiled as one pass
MINGRU_ROUTES = (LOG, Route("compiled", _supports_compiled, _run_compiled_mingru), LINEAR)
#: minLSTM's routes: its coefficients in PyTorch ops, the recurrence compiled
MINLSTM_ROUTES = (LOG, Route("compiled", _supports_compiled, _run_compiled_linear), LINEAR)
