"""Second derivatives of the fast routes: their backward, differentiated, is the step loop's.

The hand-written BPTT and the compiled loops write their backward as in-place sweeps that no
graph records. Under ``create_graph=True`` (gradient penalties, Hessian-vector products,
meta-learning) a :class:`Twin` stands in for that sweep: it runs the cell's step loop again on the
same tensors -- the projected input recomputed from what the graph keeps anyway, the zoneout
masks redrawn from the same random state -- and returns its gradients, recorded, so that they can
be differentiated again. First-order backward never touches it, so speed and memory are as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..cells import RecurrentCell
from ._loop import step_loop
from ._routes import ScanCall


class DoubleBackwardError(RuntimeError):
    """A Function without a :class:`Twin` was differentiated with ``create_graph=True``."""


class Twin:
    """The step loop of one call, ready to differentiate a route's Function again.

    ``args`` are the Function's inputs (``args[0]`` its projected input); ``state`` the initial
    state among them. The projected input comes back from ``call.project`` (the layers pass
    ``cell.project_input`` of their input, which autograd keeps for the projection's own
    backward); a call without one keeps ``call.xp`` alive instead.
    """

    def __init__(self, cell: RecurrentCell, call: ScanCall, args: tuple, state: tuple[Tensor, ...], *, rng: Any = None):
        self.cell, self.args, self.state, self.rng = cell, args, state, rng
        self.params, self.ctx, self.mask = call.params, call.ctx, call.mask
        self.project: Callable[[], Tensor] | None = call.project
        self.xp = call.xp if call.project is None else None

    def grads(self, needs: tuple[bool, ...], grads: tuple[Tensor | None, ...]) -> tuple[Tensor | None, ...]:
        """The Function's input gradients as the step loop computes them, with a graph."""
        xp = self.project() if self.project is not None else self.xp
        devices = [xp.device] if xp.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=self.rng is not None), torch.enable_grad():
            if self.rng is not None:  # the zoneout masks of the forward, drawn again
                _set_rng_state(xp.device, self.rng)
            with torch.autocast(xp.device.type, enabled=False):
                _, _, states = step_loop(self.cell, xp, self.state, self.params, self.ctx, self.mask, True)
        targets = [xp if k == 0 else arg for k, arg in enumerate(self.args) if needs[k]]
        pairs = [(s, g) for s, g in zip(states, grads) if g is not None]
        found = iter(torch.autograd.grad([s for s, _ in pairs], targets, [g for _, g in pairs],
                                         create_graph=True, allow_unused=True))  # fmt: skip
        return tuple(next(found) if need else None for need in needs) + (None,) * (len(needs) - len(self.args))


def rng_state(device: torch.device) -> Tensor:
    """The random state a route's masks are about to be drawn from (for :class:`Twin`)."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _set_rng_state(device: torch.device, state: Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


def twin_backward(what: str):
    """Decorate a Function's backward whose last forward argument is a :class:`Twin` (or None):
    first order runs the backward as written, without a graph; ``create_graph=True`` (grad mode on
    inside backward) differentiates the twin instead.

    torch's ``once_differentiable`` defers its error to a node that ``torch.autograd.grad(...,
    inputs=...)`` can prune away, so a second derivative came back silently as zero or None."""

    def decorate(backward):
        @functools.wraps(backward)
        def run(fctx, *grads):
            if torch.is_grad_enabled():
                if fctx.twin is None:
                    raise DoubleBackwardError(
                        f"rnnkit's {what} was run without a twin, so it has no second derivative;"
                        " run it through rnnkit.scan.run (or a layer) for create_graph=True"
                    )
                return fctx.twin.grads(fctx.needs_input_grad, grads)
            with torch.no_grad():
                return backward(fctx, *grads)

        return run

    return decorate
