"""Layers by name, for configuration files and the command line (timm's ``create_model`` idea)."""

from __future__ import annotations

import difflib
import inspect
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
    _check_options(name, LAYERS[name], options)
    return LAYERS[name](input_size, hidden_size, **options)


def _check_options(name: str, factory: Callable[..., nn.Module], options: dict) -> None:
    """Unknown keyword options named, with the closest known one (a typo such as ``zonout``)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read: the factory's own error stands
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    known = [n for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL][2:]  # after the sizes
    for key in options:
        if key not in parameters:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown option {key!r} for a {name!r} layer{hint}: expected one of {', '.join(known)}")


register_layer("rnn_tanh", partial(RNN, nonlinearity="tanh"))
register_layer("rnn_relu", partial(RNN, nonlinearity="relu"))
register_layer("lstm", LSTM)
register_layer("gru", GRU)
register_layer("mingru", MinGRU)
register_layer("minlstm", MinLSTM)
