"""Argument checks shared by every public entry point.

Each check raises ``ValueError`` or ``TypeError`` whose message names the argument, what was
expected and what was received, e.g. ``dropout must be a float in [0, 1], got 1.5``.

A tensor of the wrong shape, dtype or device raises :class:`ShapeError`, :class:`DTypeError`
or :class:`DeviceError`: rnnkit's message, and the classes torch.nn raises in those places
too (``RuntimeError``, and ``ValueError`` for an RNN's dtype), so code written for torch.nn that
catches them keeps working.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor


class ShapeError(ValueError, RuntimeError):
    """A tensor of the wrong shape or size (torch.nn raises ``RuntimeError`` there)."""


class DTypeError(TypeError, ValueError, RuntimeError):
    """A tensor of the wrong dtype (torch.nn raises ``ValueError`` for an RNN, ``RuntimeError`` for a cell)."""


class DeviceError(ValueError, RuntimeError):
    """A tensor on the wrong device (torch.nn raises ``RuntimeError`` there)."""


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def check_nonnegative_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}")
    return int(value)


def check_int_at_least(name: str, value: object, minimum: int) -> int:
    """An integer >= ``minimum`` (bools are refused: ``True`` is a mistake, not a size)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_probability(name: str, value: object, *, inclusive: bool = False) -> float:
    """A dropout-like rate: a real number in [0, 1) -- [0, 1] where ``inclusive`` (torch.nn's
    inter-layer dropout; a rate of 1 elsewhere would divide by 1 - p = 0)."""
    interval = "[0, 1]" if inclusive else "[0, 1)"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in {interval}, got {type(value).__name__} {value!r}")
    if not (0.0 <= float(value) <= 1.0 if inclusive else 0.0 <= float(value) < 1.0):
        raise ValueError(f"{name} must be a float in {interval}, got {value}")
    return float(value)


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {expected}, got {value!r}")
    return value  # type: ignore[return-value]


def check_tensor(name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_floating(name: str, value: Tensor) -> Tensor:
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def check_matches(name: str, value: Tensor, *, dtype: torch.dtype, device: torch.device) -> None:
    """``value`` must live where the module's parameters live and share their dtype."""
    if value.dtype != dtype:
        raise DTypeError(f"{name} must have the parameters' dtype: expected {dtype}, got {value.dtype}")
    if value.device != device:
        raise DeviceError(f"{name} must be on the parameters' device: expected {device}, got {value.device}")


def check_shape(name: str, value: Tensor, expected: tuple[int, ...]) -> None:
    if tuple(value.shape) != tuple(expected):
        raise ShapeError(f"{name} must have shape {tuple(expected)}, got {tuple(value.shape)}")


def check_lengths(lengths: object, batch_size: int, max_length: int, device: torch.device) -> Tensor:
    """Per-sequence lengths of a padded batch, as an int64 tensor on ``device``.

    Every length must lie in [1, max_length]; there must be one per sequence.
    """
    if isinstance(lengths, Tensor):
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must be an integer tensor, got dtype {lengths.dtype}")
        if lengths.dim() != 1:
            raise ValueError(
                f"lengths must be 1-D with one entry per sequence, got shape {tuple(lengths.shape)}"
            )
        values = lengths.detach().to(device=device, dtype=torch.long)
    elif isinstance(lengths, Sequence) and not isinstance(lengths, (str, bytes)):
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in lengths):
            raise TypeError(f"lengths must be a sequence of integers, got {list(lengths)!r}")
        values = torch.tensor(list(lengths), dtype=torch.long, device=device)
    else:
        raise TypeError(
            f"lengths must be a 1-D integer tensor or a list of integers, got {type(lengths).__name__}"
        )
    if values.numel() != batch_size:
        raise ValueError(
            f"lengths must have one entry per sequence: expected {batch_size}, got {values.numel()}"
        )
    if batch_size:
        low, high = int(values.min()), int(values.max())
        if low < 1:
            raise ValueError(f"lengths must be >= 1, got a length of {low}")
        if high > max_length:
            raise ValueError(
                f"lengths must be <= the time dimension ({max_length}), got a length of {high}"
            )
    return values


_PACKAGE = str(Path(__file__).resolve().parent)


def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first frame outside rnnkit."""
    frame, level = sys._getframe(1), 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level
