"""The step loop: a cell's own :meth:`~rnnkit.cells.RecurrentCell.step` over every time step,
recorded op by op by autograd. It is the reference twin every other route is held to, and the
route of any cell that registers no faster one."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..cells import Params, RecurrentCell, State
from ._routes import Route, ScanCall, ScanResult, StateHook


def step_loop(
    cell: RecurrentCell,
    xp: Tensor,
    state: State,
    params: Params,
    ctx: Any = None,
    mask: Tensor | None = None,
    return_states: bool = False,
    hook: StateHook | None = None,
) -> ScanResult:
    """Run ``cell.step`` over ``xp`` ``(T, B, G)``; ``hook(t, state)`` sees (and may replace) each new state.

    ``mask`` (``(T, B)`` bool, or None when every sequence is full length) marks the valid
    steps: past a sequence's end its state is held and its output is zero. Returns the outputs
    ``(T, B, output_size)``, the final state, and -- when ``return_states`` -- every state
    component at every step, each ``(T, B, size)``.
    """
    outputs: list[Tensor] = []
    history: list[State] = []
    # unbind, not xp[t]: indexing makes autograd build a full-size zero gradient per step
    steps = xp.unbind(0)
    valid = mask.unsqueeze(-1).unbind(0) if mask is not None else (None,) * len(steps)
    for t, (xp_t, m_t) in enumerate(zip(steps, valid)):
        y_t, new_state = cell.step(xp_t, state, params, ctx)
        if hook is not None:
            replaced = hook(t, new_state)
            if replaced is not None:
                # the output follows a replaced state only where it is that state (every built-in cell)
                y_t = replaced[0] if y_t is new_state[0] else y_t
                new_state = tuple(replaced)
        if m_t is not None:  # (B, 1): hold the state and zero the output past the end
            new_state = tuple(torch.where(m_t, n, s) for n, s in zip(new_state, state))
            y_t = torch.where(m_t, y_t, 0.0)
        state = new_state
        outputs.append(y_t)
        if return_states:
            history.append(state)
    states = tuple(torch.stack(s) for s in zip(*history)) if return_states else None
    return torch.stack(outputs), state, states


def _run(cell: RecurrentCell, call: ScanCall) -> ScanResult:
    return step_loop(cell, call.xp, call.state, call.params, call.ctx, call.mask, call.return_states, call.hook)


#: every cell's last route: registered for RecurrentCell itself
LOOP = Route("loop", lambda cell, call: True, _run, reimplements=False)
