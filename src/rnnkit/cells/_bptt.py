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
so a seeded run draws the same masks). Under autocast the matrix products run in its dtype and the
states in float32 (:class:`_Products`). Anything else -- other cells, torch.func transforms --
returns None from :func:`fused_scan` and the cell runs its step loop, the plain-autograd twin the
tests hold this module to. Double backward is not supported (``once_differentiable``).

The Functions return the states of every step, ``hs`` (and the LSTM's ``cs``); the outputs are
``hs`` itself, or ``where(valid, hs, 0)`` under lengths, so nothing is stored twice.

This module holds :func:`fused_scan`, what the cell families share (zoneout and lengths, layer
norm, the chunked sums) and the Elman Function; ``_bptt_gru`` and ``_bptt_lstm`` hold the others.
"""

from __future__ import annotations

import functools
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
    weight = ctx.weight_hh if ctx is not None and ctx.weight_hh is not None else params["weight_hh"]
    products = _Products.for_scan(weight)
    state = tuple(s.to(weight.dtype) for s in state)  # the states in the parameters' dtype, even under autocast
    bias = params["bias_hh"] if cell.bias else None
    h_mask = ctx.h_mask if ctx is not None else None
    keep = _zoneout_keep(cell, xp, state, ctx)
    valid = mask.unsqueeze(-1) if mask is not None else None  # (T, B, 1) bool
    from ._bptt_gru import _GRUBeforeScan, _GRUScan
    from ._bptt_lstm import _LSTMScan

    if kind == "lstm":
        peep = params["weight_ch"] if cell.peepholes else None
        norms = (params["ln_hh_weight"], params["ln_c_weight"], params["ln_c_bias"]) if cell.layer_norm else (None,) * 3
        proj = params["weight_hr"] if cell.proj_size else None
        function, args = _LSTMScan, (xp, state[0], state[1], weight, bias, peep, *norms, proj, valid, h_mask, keep)
    else:
        function = {"gru": _GRUScan, "gru_before": _GRUBeforeScan}.get(kind, _ElmanScan)
        gain = params["ln_hh_weight"] if cell.layer_norm else None
        args = (xp, state[0], weight, bias, gain, valid, h_mask, _component(keep, 0), kind)
    with torch.autocast(xp.device.type, enabled=False):  # the Functions cast their products themselves
        states = function.apply(*args, products)
    states = states if isinstance(states, tuple) else (states,)
    hs = states[0]  # (T, B, R): the outputs are the states, zero past a sequence's end
    ys = hs if valid is None else torch.where(valid, hs, 0.0)
    return ys, tuple(s[-1] for s in states), (states if return_states else None)


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast runs matmuls in on ``device_type``, or None outside autocast."""
    if not _autocast_enabled(device_type):
        return None
    try:
        return torch.get_autocast_dtype(device_type)
    except AttributeError:  # torch < 2.4
        return torch.get_autocast_cpu_dtype() if device_type == "cpu" else torch.get_autocast_gpu_dtype()


class _Products:
    """A scan's matrix products: in the parameters' dtype, or autocast's way under autocast.

    Under autocast (``low``: its bf16 or fp16) every product rounds its operands to ``low`` and is
    computed there, as autocast computes a matmul, and its result comes back in the parameters'
    dtype (``full``). The Functions then keep what autocast's step loop keeps in ``low``: the gate
    activations they save, and the gradients flowing into them. The states, their gradients and the
    layer norms' inputs stay in ``full``, as in the step loop (where the float32 initial state makes
    every later LSTM and GRU state float32). Outside autocast, and for float64 parameters, which
    autocast leaves alone, the products are plain ``mm``/``addmm``.
    """

    def __init__(self, low: torch.dtype | None = None, full: torch.dtype | None = None):
        self.low, self.full = low, full

    @classmethod
    def for_scan(cls, weight: Tensor) -> _Products:
        low = _autocast_dtype(weight.device.type) if weight.dtype == torch.float32 else None
        return cls(low, weight.dtype)

    def operand(self, w: Tensor | None) -> Tensor | None:
        """A weight in the products' dtype, cast once per sweep."""
        return w if w is None or self.low is None else w.to(self.low)

    def _low(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.mm(a.to(self.low), b.to(self.low))

    def mm(self, a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
        """``a @ b`` in ``full`` (into ``out`` if given)."""
        if self.low is None:
            return torch.mm(a, b, out=out)
        product = self._low(a, b)
        return out.copy_(product) if out is not None else product.to(self.full)

    def addmm(self, bias: Tensor | None, a: Tensor, b: Tensor) -> Tensor:
        """``bias + a @ b`` (``a @ b`` without a bias) in ``full``."""
        if bias is None:
            return self.mm(a, b)
        return torch.addmm(bias, a, b) if self.low is None else torch.add(bias, self._low(a, b))

    def addmm_(self, out: Tensor, a: Tensor, b: Tensor) -> Tensor:
        """``out += a @ b``."""
        return out.addmm_(a, b) if self.low is None else out.add_(self._low(a, b))


def _outside_autocast(backward):
    """Backward with autocast off on the gradients' device, even when ``backward()`` is called inside
    an autocast region (on CPU it runs on the calling thread): the forward alone decided each
    product's dtype (:class:`_Products`, the compiled loops' ``low``), and autocast would otherwise
    turn backward's float32 products to bf16. Without any gradient (gradcheck's undefined-gradient
    check) CPU's: the products are then of zeros, the same in any dtype."""

    @functools.wraps(backward)
    def run(fctx, *grads):
        device = next((g.device.type for g in grads if g is not None), "cpu")
        with torch.autocast(device, enabled=False):
            return backward(fctx, *grads)

    return run


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
    draws = [tuple(torch.rand_like(s) < rate for s in state) for _ in range(xp.shape[0])]
    return tuple(torch.stack(parts) for parts in zip(*draws))  # per component (T, B, size)


def _component(keep, index: int):
    return keep[index] if isinstance(keep, tuple) else keep


def _at(k, t: int):
    return k[t] if isinstance(k, Tensor) else k


def _mixes(k, valid) -> bool:
    return k is not None or valid is not None


def _keep_for_backward(fctx, *tensors, keep, bias, **attributes) -> None:
    """What every scan's forward leaves its backward: ``tensors`` (saved), the zoneout weights,
    whether there is a bias, ``attributes``; gradients of unused outputs stay None, not zeros."""
    fctx.save_for_backward(*tensors)
    fctx.keep, fctx.has_bias = keep, bias is not None
    for name, value in attributes.items():
        setattr(fctx, name, value)
    fctx.set_materialize_grads(False)


def _stacked_norms(us, means: list, rstds: list, gain) -> tuple:
    """A layer-normed scan's pre-norm products and per-step statistics, or three Nones without it."""
    return (us, torch.stack(means), torch.stack(rstds)) if gain is not None else (None,) * 3


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
        term = xhat.mul_(dgh[part].view(xhat.shape)).sum((0, 1))  # xhat in the states' dtype
        total = term if total is None else total.add_(term)
    return total.flatten()


def _weight_grad(
    src: Tensor, h0: Tensor, hs: Tensor, h_mask: Tensor | None, gate: Tensor | None = None,
    start: int = 0, out: Tensor | None = None, products: _Products = _Products(),
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
        # (G*H, n*B) @ (n*B, R)
        out = products.mm(grad.t(), hin) if out is None else products.addmm_(out, grad.t(), hin)
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
    def forward(fctx, xp, h0, weight, bias, gain, valid, h_mask, keep, kind, products):
        steps, batch, H = xp.shape
        weight_t = products.operand(weight).t()  # (R, H)
        acts = torch.empty_like(xp)  # (T, B, H): x'_t + b_hh, then the activations
        mixing = _mixes(keep, valid)
        apart = mixing or acts.dtype != h0.dtype  # the states are not the activations themselves
        hs = torch.empty_like(acts, dtype=h0.dtype) if apart else acts
        us = torch.empty_like(hs) if gain is not None else None  # W_hh h, before the layer norm
        means, rstds = [], []
        h = h0
        for t in range(steps):
            a = _with_bias(xp[t], bias, acts[t])  # (B, H)
            hin = h if h_mask is None else h * h_mask
            if gain is None:
                products.addmm_(a, hin, weight_t)
            else:
                u = products.mm(hin, weight_t, out=us[t]).unsqueeze(1)  # (B, 1, H)
                xhat, mean, rstd = _norm(u)
                means.append(mean)
                rstds.append(rstd)
                a.addcmul_(xhat.squeeze(1), gain)
            a = a.tanh_() if kind == "tanh" else a.relu_()
            h = _mix(h, a, _at(keep, t), None if valid is None else valid[t], hs[t]) if apart else a
        norms = _stacked_norms(us, means, rstds, gain)
        _keep_for_backward(fctx, h0, weight, gain, hs, acts if apart else None, *norms, valid, h_mask,
                           keep=keep, bias=bias, kind=kind, products=products)  # fmt: skip
        return hs

    @staticmethod
    @once_differentiable
    @_outside_autocast
    def backward(fctx, dhs):
        h0, weight, gain, hs, acts, u, mean, rstd, valid, h_mask = fctx.saved_tensors
        products = fctx.products
        weight = products.operand(weight)
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
                    dweight = _weight_grad(dus[:size], h0, hs, h_mask, start=t, out=dweight, products=products)
            g = products.mm(src, weight)  # (B, H) @ (H, R)
            if h_mask is not None:
                g.mul_(h_mask)
            if held is not None:
                g.add_(held)
        if gain is None and need[2]:
            dweight = _weight_grad(dgh, h0, hs, h_mask, products=products)
        dbias = dgh.sum((0, 1)).to(h0.dtype) if need[3] and fctx.has_bias else None
        dgain = _gain_grad(dgh, u.unsqueeze(2), mean, rstd) if gain is not None and need[4] else None
        return dgh, g, dweight, dbias, dgain, None, None, None, None, None
