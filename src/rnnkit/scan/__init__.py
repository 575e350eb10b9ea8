"""The time loops: how a cell runs over a whole sequence.

Each cell family registers its routes, fastest first (:func:`register`), and :func:`select`
picks the first that supports a call -- the one place where a route is chosen:

========== ============================== ===============================================
cell       routes, in order               what each is
========== ============================== ===============================================
RNNCell    compiled, torch, bptt, loop    compiled: rnnkit's C++ loop (CPU, no options);
GRUCell    compiled, torch, bptt, loop    torch: torch.nn's fused kernels (no options,
LSTMCell   torch, compiled, bptt, loop    the whole stack); bptt: the hand-written BPTT
                                          in PyTorch ops (every option); compiled for the
                                          LSTM: the layer-norm LSTM
MinGRUCell log, compiled, linear, loop    log: the parallel log-space scan (GPUs);
MinLSTMCell                               compiled / linear: the sequential recurrence
any cell   loop                           the step loop, the reference twin
========== ============================== ===============================================

A layer's streaming ``step`` is not a scan: for the plain RNN/LSTM/GRU, with gradients off on CPU,
:func:`compiled_step` runs every layer of it in one compiled call (:mod:`rnnkit.scan._step`),
held by the tests to the cells' own steps, and ``disabled("compiled")`` turns it off too.

Every route is held by the tests to :func:`step_loop`, the cell's own steps through autograd.
Every route is differentiable twice: where a fast route's backward is an unrecorded sweep, its
second derivative (``create_graph=True``) is the step loop's, rerun on the same tensors
(:mod:`rnnkit.scan._twin`).
``with rnnkit.scan.disabled("compiled", "bptt"):`` turns routes off (as
``torch.backends.cudnn.flags`` does for cuDNN); ``RNNKIT_NATIVE=0`` in the environment keeps the
compiled loops from being built at all.
"""

from ..cells import GRUCell, LSTMCell, MinGRUCell, MinLSTMCell, RecurrentCell, RNNCell
from . import _elman, _gru, _lstm, _minimal
from ._loop import LOOP
from ._loop import step_loop as step_loop
from ._minimal import LinearRecurrence as LinearRecurrence
from ._minimal import log_space_scan as log_space_scan
from ._routes import Route as Route
from ._routes import ScanCall as ScanCall
from ._routes import ScanResult as ScanResult
from ._routes import StateHook as StateHook
from ._routes import disabled as disabled
from ._routes import is_disabled as is_disabled
from ._routes import ranks_before as ranks_before
from ._routes import register as register
from ._routes import routes_for as routes_for
from ._routes import run as run
from ._routes import select as select
from ._routes import stack_routes as stack_routes
from ._step import applies as compiled_step_applies
from ._step import stack_step as compiled_step
from ._torch_vf import cell_step as torch_cell_step
from ._torch_vf import forward as torch_forward
from ._twin import DoubleBackwardError as DoubleBackwardError

register(RecurrentCell, LOOP)
register(RNNCell, *_elman.ROUTES)
register(GRUCell, *_gru.ROUTES)
register(LSTMCell, *_lstm.ROUTES)
register(MinGRUCell, *_minimal.MINGRU_ROUTES)
register(MinLSTMCell, *_minimal.MINLSTM_ROUTES)

__all__ = [
    "Route",
    "ScanCall",
    "ScanResult",
    "StateHook",
    "register",
    "routes_for",
    "select",
    "stack_routes",
    "run",
    "disabled",
    "is_disabled",
    "DoubleBackwardError",
    "ranks_before",
    "step_loop",
    "log_space_scan",
    "LinearRecurrence",
    "torch_forward",
    "torch_cell_step",
    "compiled_step",
    "compiled_step_applies",
]
