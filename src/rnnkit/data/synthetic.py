"""Generated long-range memory tasks: the adding problem and copy memory.

Both are the classic tests where a tanh RNN fails as the lag grows and gated cells
(LSTM, GRU) succeed. Each function draws a fresh batch from a ``torch.Generator``, so a
seeded generator gives the same data on every run and an unseeded call uses torch's global
RNG. Everything is generated on the CPU; move the tensors where you need them.

>>> g = torch.Generator().manual_seed(0)
>>> x, y = adding_problem(4, 50, generator=g)
>>> x.shape, y.shape
(torch.Size([4, 50, 2]), torch.Size([4]))
>>> x, y = copy_memory(4, lag=30, generator=g)
>>> x.shape, y.shape
(torch.Size([4, 50]), torch.Size([4, 50]))
"""

from __future__ import annotations

import math

import torch

from .._validation import check_int_at_least

__all__ = [
    "ADDING_BASELINE_MSE",
    "adding_problem",
    "copy_memory",
    "copy_memory_baseline",
]

# Predicting the mean, 1.0, for a sum of two U[0, 1) values: MSE = Var = 2 * 1/12.
ADDING_BASELINE_MSE = 1.0 / 6.0


def _check_generator(generator: object) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )


def adding_problem(
    n: int, length: int, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` sequences of the adding problem.

    The task of Hochreiter & Schmidhuber (1997, "Long Short-Term Memory", section 5.4,
    experiment 4), in the two-channel form of Le, Jaitly & Hinton (2015, "A Simple Way to
    Initialize Recurrent Networks of Rectified Linear Units", section 4.1) and Arjovsky,
    Shah & Bengio (2016, "Unitary Evolution Recurrent Neural Networks", section 4.2):

    - channel 0: values drawn uniformly from [0, 1);
    - channel 1: a marker that is 1 at exactly two steps, one in the first half
      ``[0, length // 2)`` and one in the second half ``[length // 2, length)``, else 0.

    The target is the sum of the two marked values. Always predicting 1.0 scores an MSE of
    1/6 (``ADDING_BASELINE_MSE``, about 0.167); a model that solves the task goes far below.

    Args:
        n: number of sequences, >= 1.
        length: steps per sequence ``T``, >= 2.
        generator: source of randomness; ``None`` uses torch's global RNG.

    Returns:
        ``x`` of shape ``(n, length, 2)``, float32 (batch first), and ``y`` of shape
        ``(n,)``, float32.
    """
    n = check_int_at_least("n", n, 1)
    length = check_int_at_least("length", length, 2)
    _check_generator(generator)

    half = length // 2
    values = torch.rand(n, length, generator=generator)  # (n, T)
    first = torch.randint(0, half, (n,), generator=generator)  # (n,) in the first half
    second = torch.randint(half, length, (n,), generator=generator)  # (n,) in the second half

    rows = torch.arange(n)
    markers = torch.zeros(n, length)  # (n, T)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0

    x = torch.stack([values, markers], dim=-1)  # (n, T, 2)
    y = values[rows, first] + values[rows, second]  # (n,)
    return x, y


def copy_memory(
    n: int,
    lag: int,
    *,
    num_symbols: int = 8,
    copy_length: int = 10,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` sequences of the copy memory task.

    The task of Arjovsky, Shah & Bengio (2016, "Unitary Evolution Recurrent Neural
    Networks", section 4.1), after Hochreiter & Schmidhuber (1997). Token ids: ``0`` is the
    blank, ``1..num_symbols`` the alphabet, ``num_symbols + 1`` the delimiter. With
    ``K = copy_length`` and ``T = lag``, each sequence has ``T + 2K`` steps:

    - input:  ``K`` random symbols, ``T - 1`` blanks, the delimiter, ``K`` blanks;
    - target: ``T + K`` blanks, then the ``K`` symbols of the input, in order.

    The model must remember the symbols over the lag and reproduce them once it sees the
    delimiter. Predicting blanks and then a uniform guess over the alphabet scores a
    cross-entropy of ``K * log(num_symbols) / (T + 2K)`` per step
    (``copy_memory_baseline``); with the paper's 8 symbols and K = 10 that is
    ``10 log 8 / (T + 20)``.

    Args:
        n: number of sequences, >= 1.
        lag: the delay ``T`` between the last symbol and the delimiter's answer, >= 1.
        num_symbols: alphabet size, >= 1 (the paper: 8).
        copy_length: symbols to remember ``K``, >= 1 (the paper: 10).
        generator: source of randomness; ``None`` uses torch's global RNG.

    Returns:
        ``x`` and ``y``, each of shape ``(n, lag + 2 * copy_length)``, int64 token ids.
    """
    n = check_int_at_least("n", n, 1)
    lag = check_int_at_least("lag", lag, 1)
    num_symbols = check_int_at_least("num_symbols", num_symbols, 1)
    copy_length = check_int_at_least("copy_length", copy_length, 1)
    _check_generator(generator)

    K, T = copy_length, lag
    delimiter = num_symbols + 1
    symbols = torch.randint(1, num_symbols + 1, (n, K), generator=generator)  # (n, K)

    x = torch.zeros(n, T + 2 * K, dtype=torch.long)  # (n, T + 2K), all blank
    x[:, :K] = symbols
    x[:, K + T - 1] = delimiter  # the step just before the answer window

    y = torch.zeros(n, T + 2 * K, dtype=torch.long)  # (n, T + 2K), all blank
    y[:, T + K :] = symbols
    return x, y


def copy_memory_baseline(lag: int, *, num_symbols: int = 8, copy_length: int = 10) -> float:
    """Mean per-step cross-entropy (nats) of the memoryless strategy for ``copy_memory``."""
    lag = check_int_at_least("lag", lag, 1)
    num_symbols = check_int_at_least("num_symbols", num_symbols, 1)
    copy_length = check_int_at_least("copy_length", copy_length, 1)
    return copy_length * math.log(num_symbols) / (lag + 2 * copy_length)
