"""Recurrent cells: one time step of math, and the contract that user cells implement."""

from ._base import RecurrentCell as RecurrentCell
from ._common import GatedCell as GatedCell
from ._elman import RNNCell as RNNCell
from ._gru import GRUCell as GRUCell
from ._lstm import LSTMCell as LSTMCell
from ._minimal import MinGRUCell as MinGRUCell
from ._minimal import MinLSTMCell as MinLSTMCell

__all__ = ["RecurrentCell", "GatedCell", "RNNCell", "LSTMCell", "GRUCell", "MinGRUCell", "MinLSTMCell"]
