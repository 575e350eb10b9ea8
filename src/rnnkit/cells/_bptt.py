"""Backpropagation through time written out by hand for the gated cells' scan.

The step loop (:func:`~rnnkit.cells._base.step_loop`) lets autograd record every small op of
every step; its backward then replays T x (a dozen) graph nodes and keeps every intermediate.
Here each cell family's scan is one ``torch.autograd.Function``:

* forward: one recurrent matmul per step (two for the reset-before GRU and the projected LSTM)
  and the gate math, written in place into a few preallocated ``(T, B, .)`` buffers: the gate
  activations, the states, and under layer norm the recurrent pre-activations. That is all
  backward reads; everything else it recomputes (``tanh(c)``, the projection's input);
* backward: a reverse sweep in chunks of :data:`CHUNK` steps. For each chunk, its steps' local
  derivatives at once (a few ops over the chunk while it is in cache), written into the buffer
  that becomes ``d(gates)``; then per step only a scaling of that buffer by the incoming state
  gradient and one matmul for ``dh_{t-1}``; then the recurrent weight gradient as one matmul
  over the chunk's steps, ``(n*B, G*H)^T @ (n*B, R)``, and the biases and gains as sums.
  Nothing is written to what forward saved, so a retained graph can be run backward again.

Memory: forward keeps the gate activations (in place of the input projections' copy), the states
and, under layer norm, the recurrent pre-activations and their statistics; backward adds
``d(gates)`` (returned as ``d(x'_t)``) and chunk-sized scratch. At H256 B32 T50 that is at or
below the peak of the autograd step loop of the same cell and options (``rnnkit bench``'s MB).

Covered: Elman (tanh, ReLU); GRU, reset after the recurrent matmul (torch.nn's form) and before
it (Cho et al. 2014, eq. 8); LSTM with peepholes and projections (Sak et al. 2014). Each with bias
on/off, layer norm (each gate's recurrent pre-activation, and the LSTM's cell state; its backward
through aten's fused layer-norm kernel, :func:`_norm_backward`), lengths (past a sequence's end
the state is held, so its ``d(gates)`` are zero), recurrent dropout and dropconnect (the masks of
:class:`~rnnkit.cells._common.Noise`), and zoneout (per-step masks drawn in the step loop's order,
so a seeded run draws the same masks). Anything else -- other cells, autocast, torch.func
transforms -- returns None from :func:`fused_scan` and the cell runs its step loop, the
plain-autograd twin the tests hold this module to. Double backward is not supported
(``once_differentiable``).

The Functions return the states of every step, ``hs`` (and the LSTM's ``cs``); the outputs are
``hs`` itself, or ``where(valid, hs, 0)`` under lengths, so nothing is stored twice.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._base import Params, State

LAYER_NORM_EPS = 1e-5  # as rnnkit.cells._common, which imports this module


def fused_scan(
    cell, xp: Tensor, state: State, params: Params, ctx: Any, mask: Tensor | None, return_states: bool
) -> tuple[Tensor, State, tuple[Tensor, ...] | None] | None:
    """:meth:`RecurrentCell.scan` through the hand-written BPTT, or None when it does not apply."""
    kind = _kind(cell)
    if kind is None or xp.shape[0] == 0 or torch._C._are_functorch_transforms_active():
        return None
    if _autocast_enabled(xp.device.type):  # mixed dtypes: the step loop follows autocast's casts
        return None
    weight = ctx.weight_hh if ctx is not None and ctx.weight_hh is not None else params["weight_hh"]
    bias = params["bias_hh"] if cell.bias else None
    h_mask = ctx.h_mask if ctx is not None else None
    keep = _zoneout_keep(cell, xp, state, ctx)
    valid = mask.unsqueeze(-1) if mask is not None else None  # (T, B, 1) bool
    if kind == "lstm":
        peep = params["weight_ch"] if cell.peepholes else None
        norms = (params["ln_hh_weight"], params["ln_c_weight"], params["ln_c_bias"]) if cell.layer_norm else (None,) * 3
        proj = params["weight_hr"] if cell.proj_size else None
        states = _LSTMScan.apply(xp, state[0], state[1], weight, bias, peep, *norms, proj, valid, h_mask, keep)
    else:
        function = {"gru": _GRUScan, "gru_before": _GRUBeforeScan}.get(kind, _ElmanScan)
        gain = params["ln_hh_weight"] if cell.layer_norm else None
        states = (function.apply(xp, state[0], weight, bias, gain, valid, h_mask, _component(keep, 0), kind),)
    hs = states[0]  # (T, B, R): the outputs are the states, zero past a sequence's end
    ys = hs if valid is None else torch.where(valid, hs, 0.0)
    return ys, tuple(s[-1] for s in states), (states if return_states else None)


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def _kind(cell) -> str | None:
    from ._elman import RNNCell
    from ._gru import GRUCell
    from ._lstm import LSTMCell

    if type(cell) is LSTMCell:
        return "lstm"
    if type(cell) is RNNCell:
        return cell.nonlinearity
    if type(cell) is GRUCell:
        return "gru" if cell.reset_after else "gru_before"
    return None


# -----------------------------------------------------------------------------
# zoneout and lengths: how each step's state mixes the new value with the previous one


def _zoneout_keep(cell, xp: Tensor, state: State, ctx) -> tuple | float | None:
    """Zoneout's keep-the-previous-value masks: per state component a (T, B, size) bool tensor in
    training (drawn as the step loop draws them: one ``rand_like`` per component per step), the
    rate at evaluation, None without zoneout."""
    rate = cell.zoneout
    if not rate:
        return None
    if not (ctx is not None and ctx.training):
        return rate
    like = tuple(torch.empty_like(s, dtype=xp.dtype) for s in state)
    draws = [tuple(torch.rand_like(s) < rate for s in like) for _ in range(xp.shape[0])]
    return tuple(torch.stack(parts) for parts in zip(*draws))  # per component (T, B, size)


def _component(keep, index: int):
    return keep[index] if isinstance(keep, tuple) else keep


def _at(k, t: int):
    return k[t] if isinstance(k, Tensor) else k


def _mixes(k, valid) -> bool:
    return k is not None or valid is not None


def _mix(previous: Tensor, new: Tensor, k, v: Tensor | None, out: Tensor) -> Tensor:
    """The step's state, written to ``out``: zoneout (eq. 3 of Krueger et al. 2016; ``k`` the step's
    bool keep mask, or the rate at evaluation), then the lengths' hold (``v`` (B, 1) bool)."""
    if k is None:
        mixed = new
    elif isinstance(k, float):
        mixed = k * previous + (1.0 - k) * new
    else:
        mixed = torch.where(k, previous, new)
    if v is not None:
        return torch.where(v, mixed, previous, out=out)
    return out.copy_(mixed)


def _new_weight(k, valid: Tensor | None, dtype) -> Tensor | float | None:
    """d(state_t)/d(new value_t) for all steps: None (1), a float, or a (T, B, .) tensor; the rest of
    the state's gradient, ``1 - weight``, passes to the previous state."""
    if k is None:
        return valid
    if isinstance(k, float):
        return 1.0 - k if valid is None else valid.to(dtype) * (1.0 - k)
    return ~k if valid is None else valid & ~k


def _split(total: Tensor, weight, t: int) -> tuple[Tensor, Tensor | None]:
    """A state's gradient split into the part reaching the step's new value and the part held over."""
    if weight is None:
        return total, None
    new = total * _at(weight, t)
    return new, total - new


def _with(total: Tensor, grads: Tensor | None, t: int) -> Tensor:
    return total if grads is None else total + grads[t]


# -----------------------------------------------------------------------------
# shared pieces


def _norm(u: Tensor, weight: Tensor | None = None, bias: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Layer norm over the last dim: the result, and the ``mean`` and ``rstd`` its backward reads."""
    return torch.native_layer_norm(u, u.shape[-1:], weight, bias, LAYER_NORM_EPS)


def _norm_backward(grad: Tensor, u: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor | None = None) -> Tensor:
    """d(u) from d(layer_norm(u)): aten's fused kernel for
    ``rstd * (g - mean(g) - xhat * mean(g * xhat))``, ``g = grad * weight`` (Ba et al. 2016).
    The kernel reads ``mean`` and ``rstd`` as contiguous: slices of them are copied."""
    return torch.ops.aten.native_layer_norm_backward(
        grad, u, u.shape[-1:], mean.contiguous(), rstd.contiguous(), weight, None, [True, False, False]
    )[0]


#: steps per chunk where backward turns per-step buffers into sums chunk by chunk: the layer-norm
#: cells' d(W_hh h) (which under layer norm differ from d(gates)) and the gains' products
CHUNK = 16


def _gain_grad(dgh: Tensor, u: Tensor, mean: Tensor, rstd: Tensor) -> Tensor:
    """d(gain) = sum over steps and batch of ``d(gain * xhat) * xhat``; ``u`` (T, B, G, H); xhat is
    recomputed a chunk of steps at a time."""
    total = None
    for start in range(0, u.shape[0], CHUNK):
        part = slice(start, start + CHUNK)
        xhat = torch.sub(u[part], mean[part]).mul_(rstd[part])  # (CHUNK, B, G, H)
        term = xhat.mul_(dgh[part].view(xhat.shape)).sum((0, 1))
        total = term if total is None else total.add_(term)
    return total.flatten()


def _weight_grad(
    src: Tensor, h0: Tensor, hs: Tensor, h_mask: Tensor | None, gate: Tensor | None = None,
    start: int = 0, out: Tensor | None = None,
) -> Tensor:
    """``out + sum_t src_t^T hin_t`` over the steps ``start, start + 1, ...`` that ``src`` holds,
    ``hin_t = h_{t-1} (* gate_t) (* h_mask)``, one matmul (two when the chunk starts at step 0).

    ``src`` (n, B, G*H), maybe a strided slice of a wider buffer; ``hs`` (T, B, R); ``gate`` (T, B, R)."""
    n = src.shape[0]
    if start == 0:
        pieces = [(src[0], h0, 0), (src[1:], hs[: n - 1], slice(1, n))]
    else:
        pieces = [(src, hs[start - 1 : start + n - 1], slice(start, start + n))]
    for grad, hin, steps in pieces:
        if grad.numel() == 0:
            continue
        if gate is not None:
            hin = hin * gate[steps]
        if h_mask is not None:
            hin = hin * h_mask
        grad, hin = (grad, hin) if grad.dim() == 2 else (grad.flatten(0, 1), hin.flatten(0, 1))
        out = grad.t().mm(hin) if out is None else out.addmm_(grad.t(), hin)  # (G*H, n*B) @ (n*B, R)
    return out


def _with_bias(x: Tensor, bias: Tensor | None, out: Tensor) -> Tensor:
    """``x + bias`` into ``out``: one step at a time, while the step's rows are in cache."""
    return torch.add(x, bias, out=out) if bias is not None else out.copy_(x)


def _chunk_buffer(like: Tensor) -> Tensor:
    """Room for CHUNK steps of ``like`` (T, B, G): d(W_hh h) under layer norm, one chunk at a time."""
    return like.new_empty((min(CHUNK, like.shape[0]),) + like.shape[1:])


def _chunk_done(t: int, steps: int) -> int:
    """How many steps the chunk that the reverse sweep completes at step ``t`` holds; 0 mid-chunk."""
    return min(CHUNK, steps - t) if t % CHUNK == 0 else 0


def _times_one_minus(out: Tensor, x: Tensor) -> Tensor:
    """``out *= (1 - x)`` in place, without a temporary."""
    return out.addcmul_(out, x, value=-1.0)


def _one_minus_square(x: Tensor, out: Tensor) -> Tensor:
    """``1 - x^2`` into ``out`` (tanh's derivative from its output)."""
    return torch.mul(x, x, out=out).neg_().add_(1.0)


def _sigmoid_slope(x: Tensor, out: Tensor) -> Tensor:
    """``x (1 - x)`` into ``out`` (the sigmoid's derivative from its output)."""
    return torch.addcmul(x, x, x, value=-1.0, out=out)


def _previous(h0: Tensor, hs: Tensor, out: Tensor, op, part: slice | None = None) -> Tensor:
    """``op(h_{t-1}, t, out_t)`` for the steps ``t`` of ``part`` (all by default; ``out`` holds just
    those), without concatenating ``h0`` and ``hs[:-1]``."""
    start, stop = (0, hs.shape[0]) if part is None else (part.start, part.stop)
    if start == 0:
        op(h0, 0, out[0])
        if stop > 1:
            op(hs[: stop - 1], slice(1, stop), out[1:])
    else:
        op(hs[start - 1 : stop - 1], slice(start, stop), out)
    return out


# -----------------------------------------------------------------------------
# Elman


class _ElmanScan(torch.autograd.Function):
    r""":math:`h_t = \phi(x'_t + W_{hh} (m \odot h_{t-1}) + b_{hh})`, then zoneout and lengths."""

    @staticmethod
    def forward(fctx, xp, h0, weight, bias, gain, valid, h_mask, keep, kind):
        steps, batch, H = xp.shape
        weight_t = weight.t()  # (R, H)
        acts = torch.empty_like(xp)  # (T, B, H): x'_t + b_hh, then the activations
        mixing = _mixes(keep, valid)
        hs = torch.empty_like(acts) if mixing else acts
        us = torch.empty_like(acts) if gain is not None else None  # W_hh h, before the layer norm
        means, rstds = [], []
        h = h0
        for t in range(steps):
            a = _with_bias(xp[t], bias, acts[t])  # (B, H)
            hin = h if h_mask is None else h * h_mask
            if gain is None:
                a.addmm_(hin, weight_t)
            else:
                u = torch.mm(hin, weight_t, out=us[t]).unsqueeze(1)  # (B, 1, H)
                xhat, mean, rstd = _norm(u)
                means.append(mean)
                rstds.append(rstd)
                a.addcmul_(xhat.squeeze(1), gain)
            a = a.tanh_() if kind == "tanh" else a.relu_()
            h = _mix(h, a, _at(keep, t), None if valid is None else valid[t], hs[t]) if mixing else a
        norms = (us, torch.stack(means), torch.stack(rstds)) if gain is not None else (None,) * 3
        fctx.save_for_backward(h0, weight, gain, hs, acts if mixing else None, *norms, valid, h_mask)
        fctx.keep, fctx.kind, fctx.has_bias = keep, kind, bias is not None
        fctx.set_materialize_grads(False)
        return hs

    @staticmethod
    @once_differentiable
    def backward(fctx, dhs):
        h0, weight, gain, hs, acts, u, mean, rstd, valid, h_mask = fctx.saved_tensors
        acts = hs if acts is None else acts
        steps, batch, H = acts.shape
        dgh = torch.empty_like(acts)  # (T, B, H): phi'(pre) now, d(pre) after the sweep
        if fctx.kind == "relu":
            dgh.copy_(acts > 0)
        else:
            _one_minus_square(acts, dgh)
        need = fctx.needs_input_grad
        dus = _chunk_buffer(dgh) if gain is not None else None
        dweight = None
        weight_new = _new_weight(fctx.keep, valid, acts.dtype)
        g = torch.zeros_like(h0)
        for t in range(steps - 1, -1, -1):
            dnew, held = _split(_with(g, dhs, t), weight_new, t)
            src = dgh[t].mul_(dnew)
            if gain is not None:
                du = _norm_backward((src * gain).unsqueeze(1), u[t].unsqueeze(1), mean[t], rstd[t])
                src = dus[t % CHUNK].copy_(du.squeeze(1))
                if need[2] and (size := _chunk_done(t, steps)):
                    dweight = _weight_grad(dus[:size], h0, hs, h_mask, start=t, out=dweight)
            g = src.mm(weight)  # (B, H) @ (H, R)
            if h_mask is not None:
                g.mul_(h_mask)
            if held is not None:
                g.add_(held)
        if gain is None and need[2]:
            dweight = _weight_grad(dgh, h0, hs, h_mask)
        dbias = dgh.sum((0, 1)) if need[3] and fctx.has_bias else None
        dgain = _gain_grad(dgh, u.unsqueeze(2), mean, rstd) if gain is not None and need[4] else None
        return dgh, g, dweight, dbias, dgain, None, None, None, None


# -----------------------------------------------------------------------------
# GRU


class _GRUScan(torch.autograd.Function):
    """torch.nn's GRU (reset after the recurrent matmul), gate order r, z, n."""

    @staticmethod
    def forward(fctx, xp, h0, weight, bias, gain, valid, h_mask, keep, kind):
        steps, batch, G = xp.shape
        H = G // 3
        weight_t = weight.t()  # (R, 3H)
        acts = torch.empty_like(xp)  # (T, B, 3H): r, z, n
        rg = xp.new_empty((steps, batch, H))  # r * (W_hn h + b_hn), the reset part of n's pre-activation
        hs = xp.new_empty((steps, batch, H))
        us = torch.empty_like(xp) if gain is not None else None
        means, rstds = [], []
        mixing = _mixes(keep, valid)
        h = h0
        for t in range(steps):
            hin = h if h_mask is None else h * h_mask
            if gain is None:
                gh = torch.addmm(bias, hin, weight_t) if bias is not None else hin.mm(weight_t)  # (B, 3H)
            else:  # each gate's recurrent pre-activation normalised over its H units
                u = torch.mm(hin, weight_t, out=us[t]).view(batch, 3, H)
                xhat, mean, rstd = _norm(u)
                means.append(mean)
                rstds.append(rstd)
                xhat = xhat.view(batch, G)
                gh = torch.addcmul(bias, xhat, gain) if bias is not None else xhat.mul_(gain)
            a = acts[t]
            rz = torch.add(xp[t, :, : 2 * H], gh[:, : 2 * H], out=a[:, : 2 * H]).sigmoid_()  # (B, 2H)
            reset = torch.mul(rz[:, :H], gh[:, 2 * H :], out=rg[t])
            n = torch.add(xp[t, :, 2 * H :], reset, out=a[:, 2 * H :]).tanh_()  # (B, H)
            if mixing:  # (1 - z) n + z h, then zoneout and lengths
                h = _mix(h, torch.lerp(n, h, rz[:, H:]), _at(keep, t), None if valid is None else valid[t], hs[t])
            else:
                h = torch.lerp(n, h, rz[:, H:], out=hs[t])
        norms = (us, torch.stack(means), torch.stack(rstds)) if gain is not None else (None,) * 3
        fctx.save_for_backward(h0, weight, gain, hs, acts, rg, *norms, valid, h_mask)
        fctx.keep, fctx.has_bias = keep, bias is not None
        fctx.set_materialize_grads(False)
        return hs

    @staticmethod
    @once_differentiable
    def backward(fctx, dhs):
        h0, weight, gain, hs, acts, rg, u, mean, rstd, valid, h_mask = fctx.saved_tensors
        steps, batch, H = hs.shape
        r, z, n = acts[..., :H], acts[..., H : 2 * H], acts[..., 2 * H :]
        # d(pre r), d(pre z), d(W_hn h + b_hn), d(pre n): local derivatives, then gradients;
        # with dn = (1 - z)(1 - n^2): r: dn (W_hn h + b_hn) r (1 - r), z: (h_{t-1} - n) z (1 - z), n_h: dn r, n: dn
        buf = acts.new_empty((steps, batch, 4 * H))
        dr, dz, dnh, dn = (buf[..., k * H : (k + 1) * H] for k in range(4))
        dgh = buf[..., : 3 * H]  # (T, B, 3H) strided: d(W_hh h + b_hh), gate order r, z, n
        need = fctx.needs_input_grad
        dus = _chunk_buffer(acts) if gain is not None else None
        dweight = None
        weight_new = _new_weight(fctx.keep, valid, hs.dtype)
        g = torch.zeros_like(h0)
        for t in range(steps - 1, -1, -1):
            if t % CHUNK == CHUNK - 1 or t == steps - 1:  # the chunk's local derivatives, while in cache
                part = slice(t - t % CHUNK, t + 1)
                _times_one_minus(_one_minus_square(n[part], dn[part]), z[part])
                torch.mul(dn[part], r[part], out=dnh[part])
                _times_one_minus(torch.mul(dn[part], rg[part], out=dr[part]), r[part])
                _previous(h0, hs, dz[part], lambda h, s, out: torch.sub(h, n[s], out=out), part)
                _times_one_minus(dz[part].mul_(z[part]), z[part])
            dnew, held = _split(_with(g, dhs, t), weight_new, t)
            buf[t].view(batch, 4, H).mul_(dnew.unsqueeze(1))
            src = dgh[t]
            if gain is not None:
                du = _norm_backward((src * gain).view(batch, 3, H), u[t].view(batch, 3, H), mean[t], rstd[t])
                src = dus[t % CHUNK].copy_(du.view(batch, 3 * H))
                if need[2] and (size := _chunk_done(t, steps)):
                    dweight = _weight_grad(dus[:size], h0, hs, h_mask, start=t, out=dweight)
            dh = src.mm(weight)  # (B, 3H) @ (3H, R)
            if h_mask is not None:
                dh.mul_(h_mask)
            dh.addcmul_(dnew, z[t])  # h_t = n + z (h_{t-1} - n)
            g = dh if held is None else dh.add_(held)
        if gain is None and need[2]:
            dweight = _weight_grad(dgh, h0, hs, h_mask)
        dbias = dgh.sum((0, 1)) if need[3] and fctx.has_bias else None
        dgain = _gain_grad(dgh, u.view(steps, batch, 3, H), mean, rstd) if gain is not None and need[4] else None
        dnh.copy_(dn)  # d(x'_t): as d(W_hh h + b_hh) in r and z, d(pre n) in n
        return dgh, g, dweight, dbias, dgain, None, None, None, None


class _GRUBeforeScan(torch.autograd.Function):
    r"""The reset-before GRU (Cho et al. 2014, eq. 8):
    :math:`n_t = \tanh(x'_n + W_{hn} (r_t \odot h_{t-1}) + b_{hn})`, the rest as torch.nn's."""

    @staticmethod
    def forward(fctx, xp, h0, weight, bias, gain, valid, h_mask, keep, kind):
        steps, batch, G = xp.shape
        H = G // 3
        w_rz, w_n = weight[: 2 * H].t(), weight[2 * H :].t()  # (R, 2H), (R, H)
        acts = torch.empty_like(xp)  # (T, B, 3H): x'_t + b_hh, then the activations r, z, n
        hs = xp.new_empty((steps, batch, H))
        us = torch.empty_like(xp) if gain is not None else None
        means, rstds = [], []
        mixing = _mixes(keep, valid)
        h = h0
        for t in range(steps):
            a = _with_bias(xp[t], bias, acts[t])
            hin = h if h_mask is None else h * h_mask
            if gain is None:
                a[:, : 2 * H].addmm_(hin, w_rz)
            else:
                u = us[t, :, : 2 * H].copy_(hin.mm(w_rz)).view(batch, 2, H)
                xhat, mean, rstd = _norm(u)
                a[:, : 2 * H].addcmul_(xhat.view(batch, 2 * H), gain[: 2 * H])
            rz = a[:, : 2 * H].sigmoid_()
            rh = rz[:, :H] * h  # the reset gate scales the state before W_hn; dropout still applies
            if h_mask is not None:
                rh.mul_(h_mask)
            if gain is None:
                a[:, 2 * H :].addmm_(rh, w_n)
            else:
                u_n = us[t, :, 2 * H :].copy_(rh.mm(w_n)).unsqueeze(1)  # (B, 1, H)
                xhat_n, mean_n, rstd_n = _norm(u_n)
                a[:, 2 * H :].addcmul_(xhat_n.squeeze(1), gain[2 * H :])
                means.append(torch.cat((mean, mean_n), 1))  # (B, 3, 1)
                rstds.append(torch.cat((rstd, rstd_n), 1))
            n = a[:, 2 * H :].tanh_()
            if mixing:
                h = _mix(h, torch.lerp(n, h, rz[:, H:]), _at(keep, t), None if valid is None else valid[t], hs[t])
            else:
                h = torch.lerp(n, h, rz[:, H:], out=hs[t])
        norms = (us, torch.stack(means), torch.stack(rstds)) if gain is not None else (None,) * 3
        fctx.save_for_backward(h0, weight, gain, hs, acts, *norms, valid, h_mask)
        fctx.keep, fctx.has_bias = keep, bias is not None
        fctx.set_materialize_grads(False)
        return hs

    @staticmethod
    @once_differentiable
    def backward(fctx, dhs):
        h0, weight, gain, hs, acts, u, mean, rstd, valid, h_mask = fctx.saved_tensors
        steps, batch, H = hs.shape
        r, z, n = acts[..., :H], acts[..., H : 2 * H], acts[..., 2 * H :]
        w_rz, w_n = weight[: 2 * H], weight[2 * H :]  # (2H, R), (H, R)
        # d(pre r, z, n) = d(x'_t): first the local derivatives, h_{t-1} r (1 - r) (to be scaled by
        # d(r h)), (h_{t-1} - n) z (1 - z) and (1 - z)(1 - n^2) (by the new state's gradient)
        dgh = torch.empty_like(acts)
        dr, dz, dn = dgh[..., :H], dgh[..., H : 2 * H], dgh[..., 2 * H :]
        need = fctx.needs_input_grad
        dus = _chunk_buffer(acts) if gain is not None else None
        dw_rz = dw_n = None
        weight_new = _new_weight(fctx.keep, valid, hs.dtype)
        g = torch.zeros_like(h0)
        for t in range(steps - 1, -1, -1):
            if t % CHUNK == CHUNK - 1 or t == steps - 1:  # the chunk's local derivatives, while in cache
                part = slice(t - t % CHUNK, t + 1)
                _times_one_minus(_one_minus_square(n[part], dn[part]), z[part])
                _previous(h0, hs, dz[part], lambda h, s, out: torch.sub(h, n[s], out=out), part)
                _times_one_minus(dz[part].mul_(z[part]), z[part])
                _previous(h0, hs, dr[part], lambda h, s, out: torch.mul(h, r[s], out=out), part)
                _times_one_minus(dr[part], r[part])
            dnew, held = _split(_with(g, dhs, t), weight_new, t)
            d = dgh[t]
            d[:, H:].view(batch, 2, H).mul_(dnew.unsqueeze(1))
            src_n = d[:, 2 * H :]
            if gain is not None:
                du_n = _norm_backward((src_n * gain[2 * H :]).unsqueeze(1), u[t, :, 2 * H :].unsqueeze(1),
                                      mean[t, :, 2:], rstd[t, :, 2:])
                src_n = dus[t % CHUNK, :, 2 * H :].copy_(du_n.squeeze(1))
            drh = src_n.mm(w_n)  # (B, H) @ (H, R): d(r h) after the dropout mask
            if h_mask is not None:
                drh.mul_(h_mask)
            d[:, :H].mul_(drh)
            src_rz = d[:, : 2 * H]
            if gain is not None:
                du_rz = _norm_backward((src_rz * gain[: 2 * H]).view(batch, 2, H), u[t, :, : 2 * H].view(batch, 2, H),
                                       mean[t, :, :2], rstd[t, :, :2])
                src_rz = dus[t % CHUNK, :, : 2 * H].copy_(du_rz.view(batch, 2 * H))
                if need[2] and (size := _chunk_done(t, steps)):
                    dw_rz = _weight_grad(dus[:size, :, : 2 * H], h0, hs, h_mask, start=t, out=dw_rz)
                    dw_n = _weight_grad(dus[:size, :, 2 * H :], h0, hs, h_mask, gate=r, start=t, out=dw_n)
            dh = src_rz.mm(w_rz)  # (B, 2H) @ (2H, R)
            if h_mask is not None:
                dh.mul_(h_mask)
            dh.addcmul_(drh, r[t]).addcmul_(dnew, z[t])
            g = dh if held is None else dh.add_(held)
        dweight = dbias = dgain = None
        if need[2]:
            if gain is None:
                dw_rz, dw_n = _weight_grad(dgh[..., : 2 * H], h0, hs, h_mask), _weight_grad(dgh[..., 2 * H :], h0, hs, h_mask, gate=r)
            dweight = torch.cat((dw_rz, dw_n))
        if need[3] and fctx.has_bias:
            dbias = dgh.sum((0, 1))
        if gain is not None and need[4]:
            dgain = _gain_grad(dgh, u.view(steps, batch, 3, H), mean, rstd)
        return dgh, g, dweight, dbias, dgain, None, None, None, None


# -----------------------------------------------------------------------------
# LSTM


class _LSTMScan(torch.autograd.Function):
    """torch.nn's LSTM (gate order i, f, g, o), with optional peepholes (Gers et al. 2002) and
    projection ``h_t = W_hr (o_t * tanh(c_t))`` (Sak et al. 2014)."""

    @staticmethod
    def forward(fctx, xp, h0, c0, weight, bias, peep, gain, gain_c, bias_c, proj, valid, h_mask, keep):
        steps, batch, G = xp.shape
        H = G // 4
        weight_t = weight.t()  # (R, 4H)
        proj_t = proj.t() if proj is not None else None  # (H, P)
        gates = torch.empty_like(xp)  # (T, B, 4H): x'_t + b_hh, then the activations i, f, g, o
        hs = xp.new_empty((steps, batch, h0.shape[-1]))
        cs = xp.new_empty((steps, batch, H))
        keep_h, keep_c = _component(keep, 0), _component(keep, 1)
        mix_h, mix_c = _mixes(keep_h, valid), _mixes(keep_c, valid)
        us = torch.empty_like(xp) if gain is not None else None
        if peep is not None:
            p_if, p_o = peep[: 2 * H].view(2, H), peep[2 * H :]
        normed, normed_c = ([], []), ([], [])
        h, c = h0, c0
        for t in range(steps):
            a = _with_bias(xp[t], bias, gates[t])  # (B, 4H)
            hin = h if h_mask is None else h * h_mask
            if gain is None:
                a.addmm_(hin, weight_t)
            else:  # each gate's recurrent pre-activation normalised over its H units
                u = torch.mm(hin, weight_t, out=us[t]).view(batch, 4, H)
                xhat, mean, rstd = _norm(u)  # (B, 4, H), (B, 4, 1), (B, 4, 1)
                normed[0].append(mean)
                normed[1].append(rstd)
                a.addcmul_(xhat.view(batch, G), gain)
            if peep is not None:  # the input and forget gates peek at the previous cell state
                a.view(batch, 4, H)[:, :2].addcmul_(c.unsqueeze(1), p_if)
            a[:, : 2 * H].sigmoid_()
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H].tanh_(), a[:, 3 * H :]
            c_new = (f * c if mix_c else torch.mul(f, c, out=cs[t])).addcmul_(i, g)
            if peep is not None:  # the output gate peeks at the new one
                o.addcmul_(c_new, p_o)
            o.sigmoid_()
            if gain_c is None:
                tc = torch.tanh(c_new)
            else:
                c_out, mean_c, rstd_c = _norm(c_new, gain_c, bias_c)  # (B, H), (B, 1), (B, 1)
                normed_c[0].append(mean_c)
                normed_c[1].append(rstd_c)
                tc = c_out.tanh_()
            direct = None if mix_h else hs[t]  # without zoneout and lengths the new h is the state
            if proj is None:
                h_new = torch.mul(tc, o, out=direct) if direct is not None else tc.mul_(o)  # (B, H)
            else:
                h_new = torch.mm(tc.mul_(o), proj_t, out=direct) if direct is not None else tc.mul_(o).mm(proj_t)  # (B, P)
            v = None if valid is None else valid[t]
            h = _mix(h, h_new, _at(keep_h, t), v, hs[t]) if mix_h else h_new
            c = _mix(c, c_new, _at(keep_c, t), v, cs[t]) if mix_c else c_new
        norms = tuple(torch.stack(parts) for parts in normed) if gain is not None else (None,) * 2
        norms_c = tuple(torch.stack(parts) for parts in normed_c) if gain_c is not None else (None,) * 2
        fctx.save_for_backward(h0, c0, weight, peep, gain, gain_c, bias_c, proj, gates, hs, cs, us,
                               *norms, *norms_c, valid, h_mask)  # fmt: skip
        fctx.keep, fctx.has_bias = keep, bias is not None
        fctx.set_materialize_grads(False)
        return hs, cs

    @staticmethod
    @once_differentiable
    def backward(fctx, dhs, dcs):
        (h0, c0, weight, peep, gain, gain_c, bias_c, proj, gates, hs, cs, u, mean, rstd, mean_c, rstd_c,
         valid, h_mask) = fctx.saved_tensors  # fmt: skip
        steps, batch, G = gates.shape
        H = G // 4
        need = fctx.needs_input_grad
        i, f, g, o = (gates[..., k * H : (k + 1) * H] for k in range(4))
        dgates = torch.empty_like(gates)  # (T, B, 4H): local derivatives, then d(gates) = d(x'_t)
        di, df, dg, do = (dgates[..., k * H : (k + 1) * H] for k in range(4))
        keep = fctx.keep
        weight_h = _new_weight(_component(keep, 0), valid, gates.dtype)
        weight_c = _new_weight(_component(keep, 1), valid, gates.dtype)
        if peep is not None:
            p_i, p_f, p_o = peep.chunk(3)
        dus = _chunk_buffer(dgates) if gain is not None else None  # d(W_hh h) under layer norm
        d_couts = _chunk_buffer(cs) if gain_c is not None else None  # d(c_out), for the cell norm's gains
        dh_news = _chunk_buffer(hs) if proj is not None else None  # d(W_hr m), for W_hr's gradient
        sums = dict.fromkeys(("weight", "bias", "peep", "gain", "gain_c", "bias_c", "proj"))
        gh, gc = torch.zeros_like(h0), torch.zeros_like(c0)
        # the sweep runs a chunk of steps at a time, latest first: each chunk's local derivatives
        # at once (a few ops over CHUNK steps, while they are in cache), then its steps, then its sums
        for start in reversed(range(0, steps, CHUNK)):
            part = slice(start, min(start + CHUNK, steps))
            n = part.stop - start

            def times_c_prev(x: Tensor, out: Tensor) -> Tensor:  # c_{t-1} * x_t over the chunk
                return _previous(c0, cs, out, lambda c, t, o: torch.mul(c, x[t], out=o), part)

            # c before zoneout, as forward computed it; under lengths alone the held cs serves (its
            # gradient is zero past the end); without either it is cs
            c_new = cs[part]
            if _component(keep, 1) is not None:
                c_new = times_c_prev(f, torch.empty_like(c_new)).addcmul_(i[part], g[part])
            tc = _cell_tanh(c_new, gain_c, bias_c)  # (n, B, H)
            torch.mul(_sigmoid_slope(o[part], do[part]), tc, out=do[part])  # tanh(c) o (1 - o)
            to_c = _one_minus_square(tc, tc).mul_(o[part])  # o (1 - tanh^2): d(o tanh(c)) -> d(c), or d(c_out)
            _sigmoid_slope(i[part], di[part]).mul_(g[part])  # g i (1 - i)
            _times_one_minus(times_c_prev(f, df[part]), f[part])  # c_{t-1} f (1 - f)
            _one_minus_square(g[part], dg[part]).mul_(i[part])  # i (1 - g^2)
            for t in range(part.stop - 1, start - 1, -1):
                j = t - start
                dh_new, held_h = _split(_with(gh, dhs, t), weight_h, t)
                dc_new, held_c = _split(_with(gc, dcs, t), weight_c, t)
                if proj is not None:
                    dh_new = dh_news[j].copy_(dh_new).mm(proj)  # (B, P) @ (P, H): d(o tanh(c))
                d = dgates[t].view(batch, 4, H)
                d[:, 3].mul_(dh_new)  # d(pre o)
                if gain_c is None:
                    dc = torch.addcmul(dc_new, dh_new, to_c[j])
                else:
                    d_cout = torch.mul(dh_new, to_c[j], out=d_couts[j])
                    dc = _norm_backward(d_cout, c_new[j], mean_c[t], rstd_c[t], gain_c).add_(dc_new)
                if peep is not None:
                    dc.addcmul_(d[:, 3], p_o)
                d[:, :3].mul_(dc.unsqueeze(1))  # d(pre i, f, g)
                src = dgates[t]
                if gain is not None:
                    du = _norm_backward(d * gain.view(4, H), u[t].view(batch, 4, H), mean[t], rstd[t])
                    src = dus[j].copy_(du.view(batch, G))
                gh = src.mm(weight)  # (B, 4H) @ (4H, R)
                if h_mask is not None:
                    gh.mul_(h_mask)
                if held_h is not None:
                    gh.add_(held_h)
                gc = dc.mul_(f[t])
                if peep is not None:
                    gc.addcmul_(d[:, 0], p_i).addcmul_(d[:, 1], p_f)
                if held_c is not None:
                    gc.add_(held_c)
            del to_c, tc
            if need[3]:
                src = dgates[part] if gain is None else dus[:n]
                sums["weight"] = _weight_grad(src, h0, hs, h_mask, start=start, out=sums["weight"])
            terms = {}
            if need[4] and fctx.has_bias:
                terms["bias"] = dgates[part].sum((0, 1))
            if peep is not None and need[5]:
                scratch = torch.empty_like(c_new)
                terms["peep"] = torch.cat((
                    times_c_prev(di, scratch).sum((0, 1)), times_c_prev(df, scratch).sum((0, 1)),
                    torch.mul(do[part], c_new, out=scratch).sum((0, 1)),
                ))  # fmt: skip
            if gain is not None and need[6]:
                terms["gain"] = _gain_grad(dgates[part], u[part].view(n, batch, 4, H), mean[part], rstd[part])
            if gain_c is not None:
                terms["gain_c"] = _gain_grad(d_couts[:n], c_new.unsqueeze(2), mean_c[part].unsqueeze(2),
                                             rstd_c[part].unsqueeze(2))
                terms["bias_c"] = d_couts[:n].sum((0, 1))
            if proj is not None and need[9]:
                m = _cell_tanh(c_new, gain_c, bias_c).mul_(o[part])  # (n, B, H): the projection's input
                terms["proj"] = dh_news[:n].flatten(0, 1).t().mm(m.flatten(0, 1))  # (P, n*B) @ (n*B, H)
            for name, term in terms.items():
                sums[name] = term if sums[name] is None else sums[name].add_(term)
        return (dgates, gh, gc, *sums.values(), None, None, None)


def _cell_tanh(c: Tensor, gain_c: Tensor | None, bias_c: Tensor | None) -> Tensor:
    """``tanh(c)``, or ``tanh(layer_norm(c))`` under layer norm, for all steps: (T, B, H)."""
    return torch.tanh(c) if gain_c is None else _norm(c, gain_c, bias_c)[0].tanh_()
