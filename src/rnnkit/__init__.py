"""rnnkit: recurrent neural networks on PyTorch.

Drop-in, weight-compatible ``RNN``, ``LSTM`` and ``GRU`` layers and cells, plus what torch.nn
lacks (layer norm, recurrent dropout, zoneout, dropconnect, peepholes, reset-before GRU, learned
initial state, per-step states, minGRU/minLSTM), and one layer machinery for user-defined cells.
"""

from .cells import GRUCell as GRUCell
from .cells import LSTMCell as LSTMCell
from .cells import MinGRUCell as MinGRUCell
from .cells import MinLSTMCell as MinLSTMCell
from .cells import RecurrentCell as RecurrentCell
from .cells import RNNCell as RNNCell
from .layers import GRU as GRU
from .layers import LSTM as LSTM
from .layers import RNN as RNN
from .layers import MinGRU as MinGRU
from .layers import MinLSTM as MinLSTM
from .layers import Recurrent as Recurrent
from .layers import RecurrentLayer as RecurrentLayer
from .layers import create_layer as create_layer
from ._validation import DeviceError as DeviceError
from ._validation import DTypeError as DTypeError
from ._validation import ShapeError as ShapeError
from .training.run import load as load
from .deploy import export as export

__version__ = "0.1.0"

__all__ = [
    "RNN",
    "LSTM",
    "GRU",
    "MinGRU",
    "MinLSTM",
    "Recurrent",
    "RecurrentLayer",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "MinGRUCell",
    "MinLSTMCell",
    "RecurrentCell",
    "create_layer",
    "load",
    "export",
    "ShapeError",
    "DTypeError",
    "DeviceError",
    "__version__",
]
