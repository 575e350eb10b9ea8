"""The cell contract: one step of a recurrence, separate from the time loop.

A cell is an ``nn.Module`` that computes ``(x_t, state_{t-1}) -> (y_t, state_t)``. The layers in
:mod:`rnnkit.layers` own the time loop, stacking, directions, variable lengths and streaming, so a
new cell gets all of those by implementing this contract (flax ``RNNCellBase``, Keras ``RNN``).

The math takes its weights as an explicit ``params`` mapping instead of reading ``self``. A cell
used on its own passes its own parameters (:meth:`RecurrentCell.parameters_dict`); the
torch-compatible layers keep torch.nn's flat parameter names (``weight_ih_l0``...) on the layer and
pass those, so one implementation serves both without copying weights.

A cell must define
    * ``input_size``, ``hidden_size``, ``output_size`` (ints) and ``state_sizes`` (a tuple of
      ints, one per state tensor; ``state_names`` names them, ``("h",)`` by default);
    * :meth:`step` -- one time step on the projected input.

and may override
    * :meth:`project_input` -- the part of the step that depends on the input only; the layer
      applies it to all time steps at once, as one large matmul (default: identity);
    * :meth:`begin_sequence` -- per-sequence randomness (dropout masks), sampled once.

The time loop over a whole sequence is not the cell's: :mod:`rnnkit.scan` runs it, by default
stepping :meth:`step` (:func:`rnnkit.scan.step_loop`); a faster route for a cell class -- a
parallel scan, a fused kernel -- is registered there (:func:`rnnkit.scan.register`) and held to
that loop by tests.

Example, a cell with a single state tensor::

    >>> import torch
    >>> from rnnkit.cells import RecurrentCell
    >>> class Leaky(RecurrentCell):
    ...     def __init__(self, input_size, hidden_size):
    ...         super().__init__(input_size, hidden_size)
    ...         self.weight_ih = torch.nn.Parameter(torch.randn(hidden_size, input_size) * 0.1)
    ...         self.weight_hh = torch.nn.Parameter(torch.randn(hidden_size, hidden_size) * 0.1)
    ...     def project_input(self, x, params):
    ...         return x @ params["weight_ih"].T                      # (..., H)
    ...     def step(self, xp_t, state, params, ctx=None):
    ...         (h,) = state
    ...         h = 0.5 * h + 0.5 * torch.tanh(xp_t + h @ params["weight_hh"].T)
    ...         return h, (h,)
    >>> cell = Leaky(3, 4)
    >>> cell(torch.randn(2, 3)).shape
    torch.Size([2, 4])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .._validation import (
    ShapeError,
    check_floating,
    check_matches,
    check_nonnegative_int,
    check_shape,
    check_tensor,
)

State = tuple[Tensor, ...]
Params = Mapping[str, Tensor]


class RecurrentCell(nn.Module):
    """Base class of every cell; see the module docstring for the contract."""

    state_names: tuple[str, ...] = ("h",)

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        # 0 is allowed, as torch.nn's cells allow it (empty outputs); the layers ask for >= 1, as torch.nn's
        self.input_size = check_nonnegative_int("input_size", input_size)
        self.hidden_size = check_nonnegative_int("hidden_size", hidden_size)

    # --- the contract ------------------------------------------------------------------
    @property
    def state_sizes(self) -> tuple[int, ...]:
        """Feature size of each state tensor."""
        return (self.hidden_size,)

    @property
    def output_size(self) -> int:
        """Feature size of ``y_t``."""
        return self.hidden_size

    def project_input(self, x: Tensor, params: Params) -> Tensor:
        """Input-only work for any number of leading dims: ``(..., input_size) -> (..., G)``."""
        return x

    def begin_sequence(self, batch_size: int, params: Params, *, training: bool) -> Any:
        """Sample what stays fixed over one sequence (masks); passed to every :meth:`step`."""
        return None

    def step(self, xp_t: Tensor, state: State, params: Params, ctx: Any = None) -> tuple[Tensor, State]:
        """One time step: ``xp_t`` is :meth:`project_input` of ``x_t``, shape ``(B, G)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement step()")

    # --- conveniences ------------------------------------------------------------------
    def parameters_dict(self) -> dict[str, Tensor]:
        """This cell's own parameters by name, as :meth:`step` expects them."""
        return dict(self.named_parameters(recurse=False))

    def initial_state(self, batch_size: int, *, dtype: torch.dtype, device: torch.device) -> State:
        """Zeros, one tensor per state component."""
        return tuple(torch.zeros(batch_size, n, dtype=dtype, device=device) for n in self.state_sizes)

    def forward(self, input: Tensor, hx: Tensor | State | None = None):
        """One step on ``input`` ``(B, input_size)`` or unbatched ``(input_size,)``.

        ``hx`` is the state: a tensor for one-component states, a tuple otherwise, or None for
        zeros. Returns the new state in the same form (torch.nn's cell convention), so a cell
        whose output differs from its state should override this.
        """
        params = self.parameters_dict()
        state, batched = self._prepare_state(input, hx, params)
        x = input if batched else input.unsqueeze(0)
        ctx = self.begin_sequence(x.shape[0], params, training=self.training)
        _, new_state = self.step(self.project_input(x, params), state, params, ctx)
        if not batched:
            new_state = tuple(s.squeeze(0) for s in new_state)
        return new_state[0] if len(new_state) == 1 else new_state

    def _prepare_state(self, input: Tensor, hx, params: Params) -> tuple[State, bool]:
        check_floating("input", check_tensor("input", input))
        if input.dim() not in (1, 2):
            raise ValueError(
                f"input must be 1-D (input_size,) or 2-D (batch, input_size), got {input.dim()}-D"
                f" of shape {tuple(input.shape)}"
            )
        if input.shape[-1] != self.input_size:
            raise ShapeError(
                f"input.size(-1) must be equal to input_size: expected {self.input_size},"
                f" got {input.shape[-1]}"
            )
        reference = next(iter(params.values()), None)
        if reference is not None:
            check_matches("input", input, dtype=reference.dtype, device=reference.device)
        batched = input.dim() == 2
        batch = input.shape[0] if batched else 1
        if hx is None:
            return self.initial_state(batch, dtype=input.dtype, device=input.device), batched
        if isinstance(hx, Tensor):
            parts: tuple = (hx,)
        elif isinstance(hx, (tuple, list)):
            parts = tuple(hx)
        else:
            raise TypeError(
                f"hx must be a tensor or a tuple of {len(self.state_sizes)} tensors {self.state_names},"
                f" got {type(hx).__name__}"
            )
        if len(parts) != len(self.state_sizes):
            raise ValueError(
                f"hx must have {len(self.state_sizes)} state tensor(s) {self.state_names},"
                f" got {len(parts)}"
            )
        state = []
        for name, part, size in zip(self.state_names, parts, self.state_sizes):
            label = f"hx ({name})"
            check_tensor(label, part)
            expected = (batch, size) if batched else (size,)
            check_shape(label, part, expected)
            check_matches(label, part, dtype=input.dtype, device=input.device)
            state.append(part if batched else part.unsqueeze(0))
        return tuple(state), batched
