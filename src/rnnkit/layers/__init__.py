"""Layers: stacking, directions, variable lengths and streaming over cells (whose time loops are
:mod:`rnnkit.scan`'s); torch.nn-compatible layers; layers by name."""

from ._base import LayerInput as LayerInput
from ._base import RecurrentLayer as RecurrentLayer
from ._generic import MinGRU as MinGRU
from ._generic import MinLSTM as MinLSTM
from ._generic import Recurrent as Recurrent
from ._registry import LAYERS as LAYERS
from ._registry import create_layer as create_layer
from ._registry import register_layer as register_layer
from ._sequence import reverse_padded as reverse_padded
from ._sequence import unpack as unpack
from ._sequence import valid_mask as valid_mask
from ._torch_compatible import GRU as GRU
from ._torch_compatible import LSTM as LSTM
from ._torch_compatible import RNN as RNN

__all__ = [
    "RecurrentLayer",
    "LayerInput",
    "Recurrent",
    "RNN",
    "LSTM",
    "GRU",
    "MinGRU",
    "MinLSTM",
    "LAYERS",
    "create_layer",
    "register_layer",
    "valid_mask",
    "reverse_padded",
    "unpack",
]
