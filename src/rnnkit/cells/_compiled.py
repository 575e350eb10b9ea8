"""The compiled twin of the hand-written BPTT for plain Elman and GRU scans and the layer-norm
LSTM on CPU.

:func:`compiled_scan` runs one direction of one layer through ``rnnkit/_native/rnn.cpp``: per
step one recurrent matmul and one vectorised pass of gate math, forward and backward, and the
recurrent weight gradient in one matmul at the end (per 16 steps for the layer-norm LSTM). It
covers the Elman and GRU cells without options and the LSTM with ``layer_norm`` as its only
option (bias on or off, lengths through the ``valid`` mask) in float32/float64 on CPU outside
autocast -- the layer-norm LSTM also under CPU autocast with float32 parameters, its products the
way :class:`~rnnkit.cells._bptt._Products` computes them -- and returns None for anything else,
so the caller falls back to :mod:`._bptt` (same math in PyTorch ops, and the reference the tests
hold this path to). torch.nn runs the GRU and Elman cells on CPU as ATen's op-by-op loop, and
has no layer-norm LSTM; a plain LSTM keeps torch.nn's oneDNN kernel. See docs/performance.md for
the measured gain.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .. import _native
from ._base import Params, State
from ._bptt import _autocast_dtype, _autocast_enabled, _kind, _outside_autocast

_DTYPES = (torch.float32, torch.float64)
_LOW = (torch.bfloat16, torch.float16)  # autocast dtypes the layer-norm LSTM's products can run in


def applies(xp: Tensor, *, under_autocast: bool = False) -> bool:
    """Whether the compiled loops can run on ``xp`` (and are built); under CPU autocast only where
    ``under_autocast`` (the caller then computes the products autocast's way)."""
    return (
        xp.device.type == "cpu"
        and xp.dtype in _DTYPES
        and (under_autocast or not _autocast_enabled("cpu"))
        and not torch._C._are_functorch_transforms_active()
        and _native.ops() is not None
    )


def compiled_scan(
    cell, xp: Tensor, state: State, params: Params, ctx: Any, mask: Tensor | None, return_states: bool
) -> tuple[Tensor, State, tuple[Tensor, ...] | None] | None:
    """:meth:`RecurrentCell.scan` of a plain GRU or Elman cell or a layer-norm LSTM, or None where it
    does not apply."""
    kind = _kind(cell)  # options (has_options) are what put masks in ctx: without them it has none
    if kind == "lstm":
        return _lstm_scan(cell, xp, state, params, mask, return_states) if _layer_norm_only(cell) else None
    if kind not in ("gru", "tanh", "relu") or cell.has_options or xp.shape[0] == 0 or not applies(xp):
        return None
    bias = params["bias_hh"] if cell.bias else None
    valid = mask.to(xp.dtype) if mask is not None else None  # (T, B)
    weight = params["weight_hh"]
    if not torch.is_grad_enabled():  # inference: the forward sweep alone, nothing kept for backward
        hs = _sweep(kind, xp, state[0], weight, bias, valid, save=False)[0]
    elif kind == "gru":
        hs = _GRU.apply(xp, state[0], weight, bias, valid)
    else:
        hs = _Elman.apply(xp, state[0], weight, bias, valid, kind == "relu")
    ys = hs if valid is None else hs * valid.unsqueeze(-1)  # outputs are zero past the end
    return ys, (hs[-1],), ((hs,) if return_states else None)


def _layer_norm_only(cell) -> bool:
    """An LSTM cell whose one option is layer norm: no peepholes, projection, zoneout or dropout
    (the last three are what would put masks in ``ctx``)."""
    return bool(
        cell.layer_norm and not cell.peepholes and not cell.proj_size
        and not cell.zoneout and not cell.recurrent_dropout and not cell.dropconnect
    )  # fmt: skip


def _lstm_scan(cell, xp: Tensor, state: State, params: Params, mask: Tensor | None, return_states: bool):
    """The layer-norm LSTM's scan: ``xp`` (T, B, 4H), the input part with its own layer norm and
    ``b_ih`` applied by :meth:`~rnnkit.cells._common.GatedCell.project_input` (in autograd)."""
    h0, c0 = state  # (B, H) each
    args = (h0, c0, params["weight_hh"], params["ln_hh_weight"], params["ln_c_weight"], params["ln_c_bias"])
    # under CPU autocast: float32 parameters and states, the products in autocast's bf16/fp16
    low = _autocast_dtype("cpu") if xp.dtype == torch.float32 else None
    if _autocast_enabled("cpu") and low not in _LOW:
        return None
    if xp.shape[0] == 0 or not applies(xp, under_autocast=True) or any(a.dtype != xp.dtype for a in args):
        return None
    weight, gains = args[2], args[3:]
    bias = params["bias_hh"] if cell.bias else None
    valid = mask.to(xp.dtype) if mask is not None else None  # (T, B)
    # the ops compute each product's dtype themselves; autocast would turn their float32 products to bf16
    with torch.autocast("cpu", enabled=False):
        if not torch.is_grad_enabled():  # inference: the forward sweep alone, nothing kept for backward
            hs, cs = _lstm_sweep(xp, h0, c0, weight, bias, *gains, valid, save=False, low=low)[:2]
        else:
            hs, cs = _LayerNormLSTM.apply(xp, h0, c0, weight, bias, *gains, valid, low)
    ys = hs if valid is None else hs * valid.unsqueeze(-1)  # outputs are zero past the end
    return ys, (hs[-1], cs[-1]), ((hs, cs) if return_states else None)


PACK_FROM = 3 * 256 * 256  # W_hh elements from which a step's product runs on oneDNN's packed weight


def pack(weight: Tensor, batch: int) -> Tensor | None:
    """``weight`` (N, K) in oneDNN's layout for ``x (batch, K) @ weight^T``, or None: MKL's ``mm``.

    At a step's few rows (B = 16-32) oneDNN's matmul on a packed weight measured 5-10% faster than
    MKL's for a GRU at H = 256 (3 x 256 x 256 weights) and 1.5-2x from H = 512, and slower below
    (an Elman RNN at H = 256, a GRU at H = 128): hence the threshold on the weight's size. Packing
    a 3072 x 1024 weight costs about 4 ms, paid back in 3 steps. float32 only.
    """
    if weight.dtype != torch.float32 or weight.numel() < PACK_FROM or not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), batch)
    except (AttributeError, RuntimeError):  # a torch without the op, or a CPU oneDNN refuses
        return None


def _sweep(kind: str, xp: Tensor, h0: Tensor, weight: Tensor, bias, valid, *, save: bool) -> tuple[Tensor, Tensor]:
    """The compiled forward sweep: states ``hs`` (T, B, H) and what backward reads (the GRU's
    gates where ``save``; the Elman's activations, ``hs`` itself without lengths)."""
    ops = _native.ops()
    xp, h0, weight = xp.contiguous(), h0.contiguous(), weight.contiguous()
    packed = pack(weight, h0.shape[0])
    if kind == "gru":
        return ops.gru_forward(xp, h0, weight, bias, valid, save, packed)
    return ops.elman_forward(xp, h0, weight, bias, valid, kind == "relu", packed)


class _GRU(torch.autograd.Function):
    """torch.nn's GRU (reset after), gate order r, z, n: ``hs`` (T, B, H) from ``xp`` (T, B, 3H)."""

    @staticmethod
    def forward(fctx, xp, h0, weight, bias, valid):
        hs, saved = _sweep("gru", xp, h0, weight, bias, valid, save=True)
        fctx.save_for_backward(hs, h0, saved, weight, valid)
        fctx.has_bias = bias is not None
        return hs

    @staticmethod
    @once_differentiable
    @_outside_autocast
    def backward(fctx, grad):
        hs, h0, saved, weight, valid = fctx.saved_tensors
        packed = pack(weight.t(), h0.shape[0])  # d(gh) @ W_hh = d(gh) @ (W_hh^T)^T
        dxp, dh0, dweight, dbias = _native.ops().gru_backward(
            grad.contiguous(), hs, h0.contiguous(), saved, weight.contiguous(), fctx.has_bias, valid, packed
        )
        return dxp, dh0, dweight, (dbias if fctx.has_bias else None), None


class _Elman(torch.autograd.Function):
    r""":math:`h_t = \phi(x'_t + W_{hh} h_{t-1} + b_{hh})`, :math:`\phi` tanh or ReLU."""

    @staticmethod
    def forward(fctx, xp, h0, weight, bias, valid, relu):
        hs, acts = _sweep("relu" if relu else "tanh", xp, h0, weight, bias, valid, save=True)
        fctx.save_for_backward(hs, acts, h0, weight, valid)
        fctx.has_bias, fctx.relu = bias is not None, relu
        return hs

    @staticmethod
    @once_differentiable
    @_outside_autocast
    def backward(fctx, grad):
        hs, acts, h0, weight, valid = fctx.saved_tensors
        packed = pack(weight.t(), h0.shape[0])
        dxp, dh0, dweight, dbias = _native.ops().elman_backward(
            grad.contiguous(), hs, acts, h0.contiguous(), weight.contiguous(), fctx.has_bias, valid, fctx.relu, packed
        )
        return dxp, dh0, dweight, (dbias if fctx.has_bias else None), None, None


def _lstm_sweep(xp, h0, c0, weight, bias, gain, gain_c, bias_c, valid, *, save: bool, low=None) -> tuple[Tensor, ...]:
    """The layer-norm LSTM's compiled forward sweep: ``hs``, ``cs`` (T, B, H) and, where ``save``,
    what backward reads: the gates' activations and normed products (T, B, 4H) each, and per row
    the norms' statistics (T, B, 6). ``low``: autocast's dtype, which the per-step products then
    run in (on ``W_hh`` cast once here; oneDNN's packed weight is float32 only)."""
    xp, h0, c0, weight = xp.contiguous(), h0.contiguous(), c0.contiguous(), weight.contiguous()
    gains = tuple(g.contiguous() for g in (gain, gain_c, bias_c))
    packed = pack(weight, h0.shape[0]) if low is None else None
    w_low = weight.detach().to(low) if low is not None else None  # (4H, H)
    return _native.ops().lstm_ln_forward(xp, h0, c0, weight, bias, *gains, valid, save, packed, w_low)


class _LayerNormLSTM(torch.autograd.Function):
    r"""torch.nn's LSTM (gate order i, f, g, o) with layer norm of each gate's recurrent
    pre-activation and of the cell state (Ba et al. 2016, sec. 3.1):

    .. math::
        a_t = x'_t + \gamma \odot \mathrm{LN}_4(W_{hh} h_{t-1}) + b_{hh}, \quad
        c_t = f_t c_{t-1} + i_t g_t, \quad
        h_t = o_t \tanh(\mathrm{LN}(c_t; \gamma_c, \beta_c))

    ``hs``, ``cs`` (T, B, H) from ``xp`` (T, B, 4H); the twin of
    :class:`rnnkit.cells._bptt_lstm._LSTMScan` with ``gain``, ``gain_c``, ``bias_c`` alone. Under
    autocast (``low`` its dtype) the three products -- ``W_hh h`` per step, ``d(u) W_hh`` per step
    backward, ``dW_hh`` per chunk -- run on operands rounded to ``low`` and come back rounded, as
    :class:`~rnnkit.cells._bptt._Products` computes them; everything else stays float32."""

    @staticmethod
    def forward(fctx, xp, h0, c0, weight, bias, gain, gain_c, bias_c, valid, low):
        hs, cs, *saved = _lstm_sweep(xp, h0, c0, weight, bias, gain, gain_c, bias_c, valid, save=True, low=low)
        fctx.save_for_backward(hs, cs, h0, c0, *saved, weight, gain, gain_c, bias_c, valid)
        fctx.has_bias, fctx.low = bias is not None, low
        return hs, cs

    @staticmethod
    @once_differentiable
    @_outside_autocast
    def backward(fctx, dhs, dcs):
        hs, cs, h0, c0, acts, normed, stats, weight, gain, gain_c, bias_c, valid = fctx.saved_tensors
        low = fctx.low
        # d(u) @ W_hh = d(u) @ (W_hh^T)^T; under autocast W_hh in its dtype, cast again rather than kept
        packed = pack(weight.t(), h0.shape[0]) if low is None else None
        w_low = weight.to(low) if low is not None else None  # (4H, H)
        dxp, dh0, dc0, dweight, dbias, dgain, dgain_c, dbias_c = _native.ops().lstm_ln_backward(
            dhs.contiguous(), dcs.contiguous(), hs, cs, h0.contiguous(), c0.contiguous(), acts, normed, stats,
            weight.contiguous(), gain.contiguous(), gain_c.contiguous(), bias_c.contiguous(), fctx.has_bias,
            valid, packed, w_low,
        )  # fmt: skip
        return dxp, dh0, dc0, dweight, (dbias if fctx.has_bias else None), dgain, dgain_c, dbias_c, None, None


def linear_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor | None:
    """``h_t = a_t h_{t-1} + b_t`` through the compiled loop, or None where it does not apply."""
    if not applies(b) or a.dtype != b.dtype or h0.dtype != b.dtype:
        return None
    return _LinearScan.apply(a, b, h0)


class _LinearScan(torch.autograd.Function):
    """minGRU/minLSTM's recurrence; the twin of :class:`rnnkit.cells._minimal.LinearRecurrence`."""

    @staticmethod
    def forward(fctx, a, b, h0):
        a, h0 = a.contiguous(), h0.contiguous()  # (T, B, H), (B, H)
        hs = _native.ops().linear_scan_forward(a, b.contiguous(), h0)
        fctx.save_for_backward(a, hs, h0)
        return hs

    @staticmethod
    @once_differentiable
    def backward(fctx, grad):
        a, hs, h0 = fctx.saved_tensors
        da, db, dh0 = _native.ops().linear_scan_backward(grad, a, hs, h0)
        return da, db, dh0


def mingru_scan(xp: Tensor, h0: Tensor, mask: Tensor | None) -> Tensor | None:
    """minGRU's gates and recurrence in one compiled pass: ``xp`` (T, B, 2H) -> states (T, B, H)."""
    if not applies(xp) or h0.dtype != xp.dtype or xp.shape[0] == 0:
        return None
    return _MinGRU.apply(xp, h0, mask.to(xp.dtype) if mask is not None else None)


class _MinGRU(torch.autograd.Function):
    """The twin of :class:`rnnkit.cells._minimal.MinGRUCell`'s coefficients plus the linear scan."""

    @staticmethod
    def forward(fctx, xp, h0, valid):
        xp, h0 = xp.contiguous(), h0.contiguous()
        hs = _native.ops().mingru_forward(xp, h0, valid)
        fctx.save_for_backward(xp, hs, h0, valid)
        return hs

    @staticmethod
    @once_differentiable
    def backward(fctx, grad):
        xp, hs, h0, valid = fctx.saved_tensors
        dxp, dh0 = _native.ops().mingru_backward(grad, xp, hs, h0, valid)
        return dxp, dh0, None
