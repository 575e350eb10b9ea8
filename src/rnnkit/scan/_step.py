"""One streaming step of a whole plain stack (``RecurrentLayer.step``) as one compiled call.

At batch 1 a step's products are matrix-vector ones, bound by reading the weights, and around
them torch.nn's cell kernel issues one ATen op per piece of gate math: the profiler counts 104 ATen
calls (views included) in a 2-layer H256 LSTM step layer after layer, its 4 ``addmm`` 67% of the
time, and 6 in this one (``docs/deploy.md``, "Streaming step speed"). ``stack_step`` in ``rnnkit/_native/rnn.cpp``
runs every layer of the step in one call: per layer two products (a plain loop over the weight's
rows at up to 16 batch rows, MKL's matmul beyond) and one vectorised pass of gate math, each
layer's new state written straight into its slice of the stacked ``(L, B, size)`` result, which
the next layer reads as its input. The caller's state is read, never written.

It computes what the cells' own ``step`` computes, layer after layer -- the twin, which
``with rnnkit.scan.disabled("compiled"):`` runs instead, and which the tests hold it to -- for the
cells without options (``bias=False``, ``init``, ``forget_bias`` and ``proj_size`` included: they
change no step math torch.nn lacks), in float32/float64 on CPU outside autocast, with gradients
off (under ``torch.no_grad()``/``inference_mode``: it records nothing for autograd).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from .. import _native
from ..cells import State
from ._compiled import applies as compiled_applies
from ._routes import is_disabled

#: the torch-compatible layers' ``mode`` -> the compiled step's name for the family
MODES = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu"}


def applies(x: Tensor) -> bool:
    """Whether the compiled step can run on input ``x`` now: gradients off, the compiled loops
    built and not :func:`~rnnkit.scan.disabled`, CPU float32/float64 outside autocast."""
    return not torch.is_grad_enabled() and not is_disabled("compiled") and compiled_applies(x)


def stack_step(mode: str, x: Tensor, state: State, weights: list[Tensor], *, bias: bool,
               proj: bool) -> tuple[Tensor, State]:  # fmt: skip
    """One step of every layer: ``x`` ``(B, I)``, ``state`` each component ``(L, B, size)``,
    ``weights`` per layer in torch.nn's order (``w_ih, w_hh[, b_ih, b_hh][, w_hr]``). Returns the
    last layer's output ``(B, R)`` (a view of the new ``h``) and the new state, like ``state``."""
    output, *new_state = _kernel()(x, state, weights, MODES[mode], bias, proj)
    return output, tuple(new_state)


@functools.cache
def _kernel():
    """The op, looked up once: ``_native.ops()`` reads the environment on every call (0.7 us),
    and :func:`applies` has just done so."""
    return _native.ops().stack_step.default
