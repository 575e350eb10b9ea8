"""Layers by name, for configuration files and the command line (timm's ``create_model`` idea)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from ._generic import MinGRU, MinLSTM
from ._torch_compatible import GRU, LSTM, RNN

LAYERS: dict[str, Callable[..., nn.Module]] = {}


def register_layer(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make ``factory(input_size, hidden_size, **options)`` available as ``create_layer(name, ...)``."""
    if name in LAYERS:
        raise ValueError(f"a layer named {name!r} is already registered")
    LAYERS[name] = factory


def create_layer(name: str, input_size: int, hidden_size: int, **options) -> nn.Module:
    """Build a registered layer: ``create_layer("lstm", 8, 64, num_layers=2, layer_norm=True)``."""
    if name not in LAYERS:
        raise ValueError(f"cell must be one of {', '.join(repr(n) for n in LAYERS)}, got {name!r}")
    return LAYERS[name](input_size, hidden_size, **options)


register_layer("rnn_tanh", partial(RNN, nonlinearity="tanh"))
register_layer("rnn_relu", partial(RNN, nonlinearity="relu"))
register_layer("lstm", LSTM)
register_layer("gru", GRU)
register_layer("mingru", MinGRU)
register_layer("minlstm", MinLSTM)
