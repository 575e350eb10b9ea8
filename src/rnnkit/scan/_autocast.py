"""Autocast as the hand-written BPTT and the compiled loops see it: whether it is on, its dtype,
how a scan's matrix products follow it (:class:`Products`), and backward outside it."""

from __future__ import annotations

import functools

import torch
from torch import Tensor


def autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast runs matmuls in on ``device_type``, or None outside autocast."""
    if not autocast_enabled(device_type):
        return None
    try:
        return torch.get_autocast_dtype(device_type)
    except AttributeError:  # torch < 2.4
        return torch.get_autocast_cpu_dtype() if device_type == "cpu" else torch.get_autocast_gpu_dtype()


class Products:
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
    def for_scan(cls, weight: Tensor) -> Products:
        low = autocast_dtype(weight.device.type) if weight.dtype == torch.float32 else None
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


def outside_autocast(backward):
    """Backward with autocast off on the gradients' device, even when ``backward()`` is called inside
    an autocast region (on CPU it runs on the calling thread): the forward alone decided each
    product's dtype (:class:`Products`, the compiled loops' ``low``), and autocast would otherwise
    turn backward's float32 products to bf16. Without any gradient (gradcheck's undefined-gradient
    check) CPU's: the products are then of zeros, the same in any dtype."""

    @functools.wraps(backward)
    def run(fctx, *grads):
        device = next((g.device.type for g in grads if g is not None), "cpu")
        with torch.autocast(device, enabled=False):
            return backward(fctx, *grads)

    return run
