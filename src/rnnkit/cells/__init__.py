"""Recurrent cells: one time step of math, its options, and the contract that user cells implement.

Nothing here loops over time: :mod:`rnnkit.scan` runs a cell over a sequence.
"""

from ._base import Params as Params
from ._base import RecurrentCell as RecurrentCell
from ._base import State as State
from ._elman import RNNCell as RNNCell
from ._gated import LAYER_NORM_EPS as LAYER_NORM_EPS
from ._gated import GatedCell as GatedCell
from ._gated import Noise as Noise
from ._gru import GRUCell as GRUCell
from ._lstm import LSTMCell as LSTMCell
from ._minimal import MinGRUCell as MinGRUCell
from ._minimal import MinimalCell as MinimalCell
from ._minimal import MinLSTMCell as MinLSTMCell
from ._options import CellOptions as CellOptions
from ._options import ElmanOptions as ElmanOptions
from ._options import GatedOptions as GatedOptions
from ._options import GRUOptions as GRUOptions
from ._options import LSTMOptions as LSTMOptions
from ._options import MinimalOptions as MinimalOptions

__all__ = [
    "RecurrentCell",
    "State",
    "Params",
    "GatedCell",
    "Noise",
    "LAYER_NORM_EPS",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "MinimalCell",
    "MinGRUCell",
    "MinLSTMCell",
    "CellOptions",
    "GatedOptions",
    "ElmanOptions",
    "GRUOptions",
    "LSTMOptions",
    "MinimalOptions",
]
