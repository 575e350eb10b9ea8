"""Where code written for torch.nn meets rnnkit's layers: the errors it catches, the values it passes.

Issue 13, items 3 and 4: rnnkit's messages are its own (they name the argument, the expected and
the received), and its exceptions are the classes torch.nn raises in the same places as well, so
an ``except RuntimeError`` (or ``except ValueError`` around a dtype) written for torch.nn still
catches them.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnkit

I, H, T, B = 3, 4, 5, 2

CASES = {  # what goes wrong -> a call on torch.nn's module or rnnkit's, by class
    "hx of the wrong batch": lambda m: m(torch.randn(T, B, I), (torch.randn(1, B + 1, H), torch.randn(1, B + 1, H))),
    "input of the wrong size": lambda m: m(torch.randn(T, B, I + 1)),
    "no time step": lambda m: m(torch.randn(0, B, I)),
    "cell input of the wrong size": lambda m: m(torch.randn(B, I + 1)),
    "cell hx of the wrong batch": lambda m: m(torch.randn(B, I), (torch.randn(B + 1, H), torch.randn(B + 1, H))),
}
LAYER_CASES = ["hx of the wrong batch", "input of the wrong size", "no time step"]
CELL_CASES = ["cell input of the wrong size", "cell hx of the wrong batch"]


@pytest.mark.parametrize("case", LAYER_CASES + CELL_CASES)
def test_shape_errors_are_runtime_errors_as_torch_nn_raises(case):
    torch_module, ours = (nn.LSTM(I, H), rnnkit.LSTM(I, H)) if case in LAYER_CASES else (nn.LSTMCell(I, H), rnnkit.LSTMCell(I, H))
    with pytest.raises(RuntimeError):
        CASES[case](torch_module)  # what code written for torch.nn expects
    with pytest.raises(RuntimeError) as caught:
        CASES[case](ours)
    assert isinstance(caught.value, (rnnkit.ShapeError, ValueError))  # and rnnkit's own, as before
    assert "must" in str(caught.value)  # rnnkit's message: what was expected, what was received


def test_a_dtype_mismatch_is_caught_as_torch_nn_raises_it():
    x = torch.randn(T, B, I, dtype=torch.float64)
    with pytest.raises(ValueError):
        nn.LSTM(I, H)(x)
    for error in (ValueError, TypeError, RuntimeError):
        with pytest.raises(error, match="dtype"):
            rnnkit.LSTM(I, H)(x)
    assert issubclass(rnnkit.DTypeError, TypeError) and issubclass(rnnkit.DeviceError, RuntimeError)


@pytest.mark.parametrize("layer", [nn.LSTM, rnnkit.LSTM, nn.GRU, rnnkit.GRU])
def test_dropout_of_one_between_layers(layer):
    torch.manual_seed(0)
    stack = layer(I, H, num_layers=2, dropout=1.0).train()
    assert stack(torch.randn(T, B, I))[0].shape == (T, B, H)


@pytest.mark.parametrize("pair", [(nn.RNNCell, rnnkit.RNNCell), (nn.GRUCell, rnnkit.GRUCell), (nn.LSTMCell, rnnkit.LSTMCell)])
def test_cells_of_hidden_size_zero_match_torch_nn(pair):
    theirs, ours = (cls(I, 0) for cls in pair)
    x = torch.randn(B, I)
    a, b = theirs(x), ours(x)
    for p, q in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        assert p.shape == q.shape == (B, 0)
