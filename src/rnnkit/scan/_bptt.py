"""Backpropagation through time written out by hand for the gated cells' scan.

The step loop (:func:`~rnnkit.scan.step_loop`) lets autograd record every small op of
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
:class:`~rnnkit.cells.Noise`), and zoneout (per-step masks drawn in the step loop's order,
so a seeded run draws the same masks). Under autocast the matrix products run in its dtype and the
states in float32 (:class:`~rnnkit.scan._autocast.Products`). Anything else -- other cells,
torch.func transforms -- is not supported by the route (:func:`supports`), and the cell runs its
step loop, the plain-autograd twin the tests hold this module to.

The Functions return the states of every step, ``hs`` (and the LSTM's ``cs``); the outputs are
``hs`` itself, or ``where(valid, hs, 0)`` under lengths, so nothing is stored twice.

This module holds what the cell families share (zoneout and lengths, layer norm, the chunked
sums, the route's set-up); ``_elman``, ``_gru`` and ``_lstm`` hold each family's Function.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ..cells import LAYER_NORM_EPS, GatedCell, State
from ._autocast import Products
from ._routes import ScanCall, ScanResult
from ._twin import Twin, rng_state


# -----------------------------------------------------------------------------
# the route: what every family's Function takes from the call, and what the layer gets back


def supports(cell: GatedCell, call: ScanCall) -> bool:
    """The hand-written BPTT runs any option of the three families; not under torch.func's
    transforms (vmap, grad), which a custom Function's in-place buffers do not survive."""
    return call.xp.shape[0] > 0 and not torch._C._are_functorch_transforms_active()


class Inputs(NamedTuple):
    """What the three families' Functions read from a call besides ``xp``."""

    state: State  # in the parameters' dtype, even under autocast
    weight: Tensor  # W_hh, with its dropconnect mask applied
    bias: Tensor | None  # b_hh
    valid: Tensor | None  # (T, B, 1) bool
    h_mask: Tensor | None  # recurrent dropout's (B, R) mask
    keep: tuple | float | None  # zoneout (see zoneout_keep)
    products: Products
    rng: Tensor | None  # the random state zoneout's masks were drawn from, for the twin


def inputs(cell: GatedCell, call: ScanCall) -> Inputs:
    ctx, params = call.ctx, call.params
    weight = ctx.weight_hh if ctx is not None and ctx.weight_hh is not None else params["weight_hh"]
    state = tuple(s.to(weight.dtype) for s in call.state)
    drawn = cell.zoneout and ctx is not None and ctx.training
    rng = rng_state(call.xp.device) if drawn else None
    return Inputs(
        state, weight, params["bias_hh"] if cell.bias else None,
        call.mask.unsqueeze(-1) if call.mask is not None else None,
        ctx.h_mask if ctx is not None else None, zoneout_keep(cell, call.xp, state, ctx), Products.for_scan(weight),
        rng,
    )  # fmt: skip


def finish(states: Tensor | tuple[Tensor, ...], valid: Tensor | None, return_states: bool) -> ScanResult:
    """The layer's view of a Function's per-step states: the outputs are the states ``hs`` (T, B, R),
    zero past each sequence's end; nothing is stored twice."""
    states = states if isinstance(states, tuple) else (states,)
    hs = states[0]
    ys = hs if valid is None else torch.where(valid, hs, 0.0)
    return ys, tuple(s[-1] for s in states), (states if return_states else None)


def apply(function, cell: GatedCell, call: ScanCall, i: Inputs, args: tuple):
    """``function.apply(*args, twin)``: the Function, and the step loop that differentiates it again."""
    twin = Twin(cell, call, args, i.state, rng=i.rng)
    with torch.autocast(call.xp.device.type, enabled=False):  # the Functions cast their products themselves
        return function.apply(*args, twin)


# -----------------------------------------------------------------------------
# zoneout and lengths: how each step's state mixes the new value with the previous one


def zoneout_keep(cell, xp: Tensor, state: State, ctx) -> tuple | float | None:
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


def component(keep, index: int):
    return keep[index] if isinstance(keep, tuple) else keep


def step_of(k, t: int):
    return k[t] if isinstance(k, Tensor) else k


def mixes(k, valid) -> bool:
    return k is not None or valid is not None


def keep_for_backward(fctx, *tensors, keep, bias, **attributes) -> None:
    """What every scan's forward leaves its backward: ``tensors`` (saved), the zoneout weights,
    whether there is a bias, ``attributes``; gradients of unused outputs stay None, not zeros."""
    fctx.save_for_backward(*tensors)
    fctx.keep, fctx.has_bias = keep, bias is not None
    for name, value in attributes.items():
        setattr(fctx, name, value)
    fctx.set_materialize_grads(False)


def stacked_norms(us, means: list, rstds: list, gain) -> tuple:
    """A layer-normed scan's pre-norm products and per-step statistics, or three Nones without it."""
    return (us, torch.stack(means), torch.stack(rstds)) if gain is not None else (None,) * 3


def mix(previous: Tensor, new: Tensor, k, v: Tensor | None, out: Tensor) -> Tensor:
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


def new_weight(k, valid: Tensor | None, dtype) -> Tensor | float | None:
    """d(state_t)/d(new value_t) for all steps: None (1), a float, or a (T, B, .) tensor; the rest of
    the state's gradient, ``1 - weight``, passes to the previous state."""
    if k is None:
        return valid
    if isinstance(k, float):
        return 1.0 - k if valid is None else valid.to(dtype) * (1.0 - k)
    return ~k if valid is None else valid & ~k


def split_grad(total: Tensor, weight, t: int) -> tuple[Tensor, Tensor | None]:
    """A state's gradient split into the part reaching the step's new value and the part held over."""
    if weight is None:
        return total, None
    new = total * step_of(weight, t)
    return new, total - new


def plus_incoming(total: Tensor, grads: Tensor | None, t: int) -> Tensor:
    return total if grads is None else total + grads[t]


# -----------------------------------------------------------------------------
# shared pieces


def norm(u: Tensor, weight: Tensor | None = None, bias: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Layer norm over the last dim: the result, and the ``mean`` and ``rstd`` its backward reads."""
    return torch.native_layer_norm(u, u.shape[-1:], weight, bias, LAYER_NORM_EPS)


def norm_backward(grad: Tensor, u: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor | None = None) -> Tensor:
    """d(u) from d(layer_norm(u)): aten's fused kernel for
    ``rstd * (g - mean(g) - xhat * mean(g * xhat))``, ``g = grad * weight`` (Ba et al. 2016).
    The kernel reads ``mean`` and ``rstd`` as contiguous: slices of them are copied."""
    return torch.ops.aten.native_layer_norm_backward(
        grad, u, u.shape[-1:], mean.contiguous(), rstd.contiguous(), weight, None, [True, False, False]
    )[0]


#: steps per chunk where backward turns per-step buffers into sums chunk by chunk: the layer-norm
#: cells' d(W_hh h) (which under layer norm differ from d(gates)) and the gains' products
CHUNK = 16


def gain_grad(dgh: Tensor, u: Tensor, mean: Tensor, rstd: Tensor) -> Tensor:
    """d(gain) = sum over steps and batch of ``d(gain * xhat) * xhat``; ``u`` (T, B, G, H); xhat is
    recomputed a chunk of steps at a time."""
    total = None
    for start in range(0, u.shape[0], CHUNK):
        part = slice(start, start + CHUNK)
        xhat = torch.sub(u[part], mean[part]).mul_(rstd[part])  # (CHUNK, B, G, H)
        term = xhat.mul_(dgh[part].view(xhat.shape)).sum((0, 1))  # xhat in the states' dtype
        total = term if total is None else total.add_(term)
    return total.flatten()


def weight_grad(
    src: Tensor, h0: Tensor, hs: Tensor, h_mask: Tensor | None, gate: Tensor | None = None,
    start: int = 0, out: Tensor | None = None, products: Products = Products(),
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


def with_bias(x: Tensor, bias: Tensor | None, out: Tensor) -> Tensor:
    """``x + bias`` into ``out``: one step at a time, while the step's rows are in cache."""
    return torch.add(x, bias, out=out) if bias is not None else out.copy_(x)


def chunk_buffer(like: Tensor) -> Tensor:
    """Room for CHUNK steps of ``like`` (T, B, G): d(W_hh h) under layer norm, one chunk at a time."""
    return like.new_empty((min(CHUNK, like.shape[0]),) + like.shape[1:])


def chunk_done(t: int, steps: int) -> int:
    """How many steps the chunk that the reverse sweep completes at step ``t`` holds; 0 mid-chunk."""
    return min(CHUNK, steps - t) if t % CHUNK == 0 else 0


def times_one_minus(out: Tensor, x: Tensor) -> Tensor:
    """``out *= (1 - x)`` in place, without a temporary."""
    return out.addcmul_(out, x, value=-1.0)


def one_minus_square(x: Tensor, out: Tensor) -> Tensor:
    """``1 - x^2`` into ``out`` (tanh's derivative from its output)."""
    return torch.mul(x, x, out=out).neg_().add_(1.0)


def sigmoid_slope(x: Tensor, out: Tensor) -> Tensor:
    """``x (1 - x)`` into ``out`` (the sigmoid's derivative from its output)."""
    return torch.addcmul(x, x, x, value=-1.0, out=out)


def each_previous(h0: Tensor, hs: Tensor, out: Tensor, op, part: slice | None = None) -> Tensor:
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
