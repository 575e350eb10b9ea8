"""torch.nn's own fused kernels (oneDNN on CPU for the LSTM, cuDNN on GPU), for plain layers.

These are the ``_VF`` entry points that ``torch.nn.RNN/LSTM/GRU.forward`` call. A layer takes
this route (:data:`TORCH`, a whole-stack route) when its options are exactly what the kernels
compute; the cells' step loop is the reference twin, and the tests hold the two to the same
numbers.
"""

from __future__ import annotations

from torch import Tensor, _VF
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..cells import GatedCell, State
from ._routes import Route, ScanCall

KERNELS = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}
CELL_KERNELS = {
    "LSTM": _VF.lstm_cell,
    "GRU": _VF.gru_cell,
    "RNN_TANH": _VF.rnn_tanh_cell,
    "RNN_RELU": _VF.rnn_relu_cell,
}


def cell_step(mode: str, x: Tensor, state: State, weights: list[Tensor | None]):
    """One step of one layer through torch.nn's cell kernel: ``weights`` are w_ih, w_hh, b_ih, b_hh
    (biases may be None). Returns ``(h, c)`` for the LSTM, ``h`` otherwise."""
    hx = state if mode == "LSTM" else state[0]
    return CELL_KERNELS[mode](x, hx, *weights)


def forward(
    mode: str,
    x: Tensor,
    state: State,
    weights: list[Tensor],
    lengths: Tensor | None,
    *,
    bias: bool,
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
) -> tuple[Tensor, State]:
    """Run the whole stack on time-major ``x`` ``(T, B, I)``; ``state`` is ``(h,)`` or ``(h, c)``."""
    kernel = KERNELS[mode]
    hx = state if mode == "LSTM" else state[0]
    options = (bias, num_layers, dropout, training, bidirectional)
    if lengths is None or bool((lengths == x.shape[0]).all()):
        result = kernel(x, hx, weights, *options, False)  # batch_first=False: x is time-major
        return result[0], tuple(result[1:])
    packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    order, restore = packed.sorted_indices, packed.unsorted_indices
    if mode == "LSTM":
        hx = tuple(h.index_select(1, order) for h in hx)
    else:
        hx = hx.index_select(1, order)
    result = kernel(packed.data, packed.batch_sizes, hx, weights, *options)
    output = PackedSequence(result[0], packed.batch_sizes, order, restore)
    padded, _ = pad_packed_sequence(output, total_length=x.shape[0])  # zeros past each end
    return padded, tuple(h.index_select(1, restore) for h in result[1:])


def _supports(cell: GatedCell, call: ScanCall) -> bool:
    return not cell.has_options  # the kernels compute torch.nn's cells, and nothing else


#: torch.nn's kernels for a whole stack: the layer runs them itself (``forward``)
TORCH = Route("torch", _supports, None, stack=True)
