"""What the compiled loops (``rnnkit/_native/rnn.cpp``) share: whether they can run, and oneDNN's
packed weights.

The loops are the compiled twins of the hand-written BPTT for plain Elman and GRU scans, the
layer-norm LSTM and minGRU/minLSTM's recurrence on CPU: per step one recurrent matmul and one
vectorised pass of gate math, forward and backward, and the recurrent weight gradient in one
matmul at the end (per 16 steps for the layer-norm LSTM), in float32/float64 outside autocast --
the layer-norm LSTM also under CPU autocast with float32 parameters, its products the way
:class:`~rnnkit.scan._autocast.Products` computes them. Each family's file holds its compiled
Function and route; everything else falls back to the hand-written BPTT in PyTorch ops (the
reference the tests hold these loops to). torch.nn runs the GRU and Elman cells on CPU as ATen's
op-by-op loop, and has no layer-norm LSTM; a plain LSTM keeps torch.nn's oneDNN kernel. See
docs/performance.md for the measured gain.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _native
from ._autocast import autocast_enabled
from ._bptt import finish
from ._routes import ScanCall, ScanResult
from ._twin import Twin

DTYPES = (torch.float32, torch.float64)
LOW = (torch.bfloat16, torch.float16)  # autocast dtypes the layer-norm LSTM's products can run in


def applies(xp: Tensor, *, under_autocast: bool = False) -> bool:
    """Whether the compiled loops can run on ``xp`` (and are built); under CPU autocast only where
    ``under_autocast`` (the caller then computes the products autocast's way)."""
    return (
        xp.is_cpu  # not xp.device.type: that builds a device object, a third of a microsecond per step
        and xp.dtype in DTYPES
        and (under_autocast or not autocast_enabled("cpu"))
        and not torch._C._are_functorch_transforms_active()
        and _native.ops() is not None
    )


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


def sweep(kind: str, xp: Tensor, h0: Tensor, weight: Tensor, bias, valid, *, save: bool) -> tuple[Tensor, Tensor]:
    """The compiled forward sweep: states ``hs`` (T, B, H) and what backward reads (the GRU's
    gates where ``save``; the Elman's activations, ``hs`` itself without lengths)."""
    ops = _native.ops()
    xp, h0, weight = xp.contiguous(), h0.contiguous(), weight.contiguous()
    packed = pack(weight, h0.shape[0])
    if kind == "gru":
        return ops.gru_forward(xp, h0, weight, bias, valid, save, packed)
    return ops.elman_forward(xp, h0, weight, bias, valid, kind == "relu", packed)


def supports_plain(cell, call) -> bool:
    """The compiled GRU and Elman loops: a cell without options (so ``ctx`` holds no masks)."""
    return not cell.has_options and call.xp.shape[0] > 0 and applies(call.xp)


def valid_weights(mask: Tensor | None, like: Tensor) -> Tensor | None:
    """The lengths' mask ``(T, B)`` as the compiled loops read it: 1.0 where a step is valid."""
    return mask.to(like.dtype) if mask is not None else None


def run_plain(kind: str, function, cell, call: ScanCall, *extra) -> ScanResult:
    """A plain GRU's or Elman cell's compiled scan: ``function`` (its autograd Function, given
    ``extra`` after the common arguments) in training, the forward sweep alone in inference."""
    xp, h0, weight = call.xp, call.state[0], call.params["weight_hh"]
    bias = call.params["bias_hh"] if cell.bias else None
    valid = valid_weights(call.mask, xp)  # (T, B)
    if not torch.is_grad_enabled():  # inference: nothing kept for backward
        hs = sweep(kind, xp, h0, weight, bias, valid, save=False)[0]
    else:
        args = (xp, h0, weight, bias, valid, *extra)
        hs = function.apply(*args, Twin(cell, call, args, call.state))
    return finish(hs, None if call.mask is None else call.mask.unsqueeze(-1), call.return_states)
