"""torch.autograd.gradcheck in float64 for every cell and option, and through the layers.

Stochastic options are checked in training mode too: the function re-seeds the RNG on every call,
so each evaluation draws the same masks and the function is deterministic.
"""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

import rnnkit

I, H, B = 2, 3, 2

CELL_VARIANTS = {
    "rnn_tanh": (rnnkit.RNNCell, {}),
    "rnn_relu": (rnnkit.RNNCell, {"nonlinearity": "relu"}),
    "rnn_layer_norm": (rnnkit.RNNCell, {"layer_norm": True}),
    "lstm": (rnnkit.LSTMCell, {}),
    "lstm_layer_norm": (rnnkit.LSTMCell, {"layer_norm": True}),
    "lstm_peepholes": (rnnkit.LSTMCell, {"peepholes": True}),
    "lstm_proj": (rnnkit.LSTMCell, {"proj_size": 2}),
    "lstm_no_bias": (rnnkit.LSTMCell, {"bias": False}),
    "gru": (rnnkit.GRUCell, {}),
    "gru_reset_before": (rnnkit.GRUCell, {"reset_after": False}),
    "gru_layer_norm": (rnnkit.GRUCell, {"layer_norm": True}),
    "gru_reset_before_layer_norm": (rnnkit.GRUCell, {"reset_after": False, "layer_norm": True}),
    "min_gru": (rnnkit.MinGRUCell, {}),
    "min_lstm": (rnnkit.MinLSTMCell, {}),
}
for _family, _cls in (("rnn", rnnkit.RNNCell), ("lstm", rnnkit.LSTMCell), ("gru", rnnkit.GRUCell)):
    for _option in ("zoneout", "recurrent_dropout", "dropconnect"):
        CELL_VARIANTS[f"{_family}_{_option}"] = (_cls, {_option: 0.4})


def seeded(fn):
    def call(*args):
        torch.manual_seed(1234)
        return fn(*args)

    return call


@pytest.mark.parametrize("name", list(CELL_VARIANTS))
@pytest.mark.parametrize("training", [False, True])
def test_cell_gradcheck(name, training):
    cell_class, options = CELL_VARIANTS[name]
    torch.manual_seed(0)
    cell = cell_class(I, H, **options).double().train(training)
    names, params = zip(*cell.named_parameters())
    x = torch.randn(B, I, dtype=torch.float64, requires_grad=True)
    state = tuple(torch.randn(B, s, dtype=torch.float64, requires_grad=True) for s in cell.state_sizes)

    def step(x, *rest):
        state, values = rest[: len(cell.state_sizes)], rest[len(cell.state_sizes) :]
        out = torch.func.functional_call(cell, dict(zip(names, values)), (x, state if len(state) > 1 else state[0]))
        return out

    assert gradcheck(seeded(step), (x, *state, *params))


LAYER_VARIANTS = {
    "rnn": (rnnkit.RNN, {}),
    "rnn_all_options": (rnnkit.RNN, dict(nonlinearity="relu", layer_norm=True, zoneout=0.3, recurrent_dropout=0.3, dropconnect=0.3)),
    "lstm": (rnnkit.LSTM, {}),
    "lstm_proj": (rnnkit.LSTM, dict(proj_size=2)),
    "lstm_all_options": (rnnkit.LSTM, dict(layer_norm=True, peepholes=True, proj_size=2, zoneout=0.3,
                                           recurrent_dropout=0.3, dropconnect=0.3)),
    "gru": (rnnkit.GRU, {}),
    "gru_all_options": (rnnkit.GRU, dict(reset_after=False, layer_norm=True, zoneout=0.3, recurrent_dropout=0.3,
                                         dropconnect=0.3)),
    "min_gru": (rnnkit.MinGRU, {}),
    "min_lstm": (rnnkit.MinLSTM, {}),
}  # fmt: skip


@pytest.mark.parametrize("name", list(LAYER_VARIANTS))
@pytest.mark.parametrize("training", [False, True])
def test_layer_gradcheck_with_lengths_and_both_directions(name, training):
    """Through the time loop, both directions, two layers and uneven lengths, to input and hx."""
    layer_class, options = LAYER_VARIANTS[name]
    torch.manual_seed(0)
    kwargs = dict(num_layers=2, bidirectional=True, dropout=0.3, **options)
    if layer_class in (rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU):
        kwargs["backend"] = "loop"
    layer = layer_class(I, H, **kwargs).double().train(training)
    x = torch.randn(4, 3, I, dtype=torch.float64, requires_grad=True)
    cell = layer.cell(0, 0)
    hx = tuple(torch.randn(4, 3, s, dtype=torch.float64, requires_grad=True) for s in cell.state_sizes)
    lengths = torch.tensor([4, 1, 3])

    def run(x, *hx):
        output, state = layer(x, hx if len(hx) > 1 else hx[0], lengths=lengths)
        return (output, *(state if isinstance(state, tuple) else (state,)))

    assert gradcheck(seeded(run), (x, *hx), fast_mode=True)
