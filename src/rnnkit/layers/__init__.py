"""Layers: the time loop, stacking, directions, variable lengths and streaming over cells."""

from ._base import RecurrentLayer as RecurrentLayer
from ._generic import MinGRU as MinGRU
from ._generic import MinLSTM as MinLSTM
from ._generic import Recurrent as Recurrent
from ._registry import LAYERS as LAYERS
from ._registry import create_layer as create_layer
from ._registry import register_layer as register_layer
from ._torch_compatible import GRU as GRU
from ._torch_compatible import LSTM as LSTM
from ._torch_compatible import RNN as RNN

__all__ = [
    "RecurrentLayer",
    "Recurrent",
    "RNN",
    "LSTM",
    "GRU",
    "MinGRU",
    "MinLSTM",
    "LAYERS",
    "create_layer",
    "register_layer",
]
