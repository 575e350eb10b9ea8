"""PyTorch's own test cases for its recurrent modules, run on rnnkit's.

``torch.testing._internal.common_modules.module_db`` is the table PyTorch's ``test_modules.py``
iterates: for ``nn.RNN``, ``GRU``, ``LSTM``, ``RNNCell``, ``GRUCell`` and ``LSTMCell``, the
constructor arguments and inputs of every case (no batch dimension, batch_first, bias,
bidirectional, proj_size, packed sequences, given ``hx``), a reference function for each, and the
inputs that must fail. Here every case runs on rnnkit's class of the same name with torch.nn's
weights: its outputs and gradients equal torch.nn's, the case's reference function holds, it passes
``gradcheck`` and ``gradgradcheck``, non-contiguous inputs give the same results, and every error
case raises the exception class torch.nn raises.

Deliberate differences (docs/layers.md): the error *messages* are rnnkit's own (they name the
argument, the expected and the received), so torch's message patterns are not matched, only the
exception classes; and rnnkit is stricter about a ``bias`` or ``batch_first`` given as an int.
The table is PyTorch's internal test data: where a torch build lacks it, this file is skipped.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck, gradgradcheck
from torch.nn.utils.rnn import PackedSequence

import rnnkit

common_modules = pytest.importorskip("torch.testing._internal.common_modules", reason="this torch has no module_db")

PAIRS = {nn.RNN: rnnkit.RNN, nn.GRU: rnnkit.GRU, nn.LSTM: rnnkit.LSTM,
         nn.RNNCell: rnnkit.RNNCell, nn.GRUCell: rnnkit.GRUCell, nn.LSTMCell: rnnkit.LSTMCell}  # fmt: skip
INFOS = [info for info in common_modules.module_db if info.module_cls in PAIRS]
TOL = dict(atol=1e-10, rtol=1e-10)


def test_the_table_has_every_recurrent_module():
    assert {info.module_cls for info in INFOS} == set(PAIRS)


def samples(info, training: bool, requires_grad: bool = True):
    found = info.module_inputs_func(info, device="cpu", dtype=torch.float64, requires_grad=requires_grad,
                                    training=training, with_packed_sequence=True)  # fmt: skip
    assert found, info.name
    return found


def pair(info, sample, training: bool):
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    torch.manual_seed(0)
    theirs = info.module_cls(*args, **kwargs).double().train(training)
    ours = PAIRS[info.module_cls](*args, **kwargs).double().train(training)
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


def tensors(value):
    """The tensors of a nested output or input, in order (a PackedSequence by its data)."""
    if isinstance(value, PackedSequence):
        return [value.data]
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensors(v)]
    return []


def assert_same(a, b):
    ta, tb = tensors(a), tensors(b)
    assert len(ta) == len(tb) and ta
    for x, y in zip(ta, tb):
        torch.testing.assert_close(x, y, **TOL)


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("info", INFOS, ids=lambda info: info.name)
def test_every_case_matches_torch_nn_and_its_reference(info, training):
    for sample in samples(info, training):
        theirs, ours = pair(info, sample, training)
        args, kwargs = sample.forward_input.args, sample.forward_input.kwargs
        expected, got = theirs(*args, **kwargs), ours(*args, **kwargs)
        assert_same(got, expected)
        leaves = [t for t in tensors(args) if t.requires_grad] + list(ours.parameters())
        probe = [torch.linspace(-1, 1, t.numel(), dtype=t.dtype).view_as(t) for t in tensors(got)]
        ours_grads = torch.autograd.grad(tensors(got), leaves, probe, allow_unused=True)
        their_leaves = [t for t in tensors(args) if t.requires_grad] + list(theirs.parameters())
        their_grads = torch.autograd.grad(tensors(expected), their_leaves, probe, allow_unused=True)
        for g, h in zip(ours_grads, their_grads):
            assert (g is None) == (h is None)
            if g is not None:
                torch.testing.assert_close(g, h, **TOL)
        if sample.reference_fn is not None and not any(isinstance(a, PackedSequence) for a in args):
            reference = sample.reference_fn(ours, *args, **kwargs)  # it passes the parameters itself
            assert_same(got, reference)


@pytest.mark.parametrize("info", INFOS, ids=lambda info: info.name)
def test_gradcheck_and_gradgradcheck(info):
    """test_modules.py's test_grad and test_gradgrad, on the inputs and every parameter: on every
    third case of the table (the cases vary bias, batch_first, bidirectional, proj_size and hx,
    each of which the others already cover for the forward and first-order gradients)."""
    for sample in samples(info, training=False)[::3]:
        _, ours = pair(info, sample, False)
        args = sample.forward_input.args
        if any(isinstance(a, PackedSequence) for a in args):
            continue  # a PackedSequence's data is not a leaf of the case's own making
        names, params = zip(*ours.named_parameters())
        flat = [a for a in tensors(args) if a.requires_grad]

        def f(*values, ours=ours, names=names, args=args, count=len(flat)):
            inputs, weights = values[:count], dict(zip(names, values[count:]))
            rebuilt = _replace(args, iter(inputs))
            return tuple(tensors(torch.func.functional_call(ours, weights, tuple(rebuilt))))

        assert gradcheck(f, (*flat, *params), fast_mode=True)
        assert gradgradcheck(f, (*flat, *params), fast_mode=True)


def _replace(value, new):
    """``value`` with its tensors that require grad taken in order from ``new``."""
    if isinstance(value, torch.Tensor):
        return next(new) if value.requires_grad else value
    if isinstance(value, (tuple, list)):
        return type(value)(_replace(v, new) for v in value)
    return value


@pytest.mark.parametrize("info", INFOS, ids=lambda info: info.name)
def test_non_contiguous_inputs_give_the_same_results(info):
    """test_modules.py's test_non_contiguous_tensors, in its simplest form: every input tensor
    replaced by a non-contiguous copy of itself."""
    for sample in samples(info, training=False, requires_grad=False):
        _, ours = pair(info, sample, False)
        args = sample.forward_input.args
        if any(isinstance(a, PackedSequence) for a in args):
            continue

        def strided(value):
            if isinstance(value, torch.Tensor):
                doubled = torch.repeat_interleave(value, 2, dim=-1)
                return doubled[..., ::2]  # the same values, every other element of a wider tensor
            if isinstance(value, (tuple, list)):
                return type(value)(strided(v) for v in value)
            return value

        noncontiguous = strided(copy.deepcopy(args))
        assert not all(t.is_contiguous() for t in tensors(noncontiguous))
        assert_same(ours(*noncontiguous), ours(*args))


def _stricter(cls, args, kwargs) -> bool:
    """A deliberate difference (docs/layers.md): torch.nn's cells take any ``bias`` (the table's
    ``RNNCell(10, 20, 'relu')`` is a cell whose bias is the string 'relu'); rnnkit refuses a bias
    that is not a bool, when the cell is built."""
    if not issubclass(cls, rnnkit.RecurrentCell):
        return False
    bias = kwargs.get("bias", args[2] if len(args) > 2 else True)
    return not isinstance(bias, bool)


@pytest.mark.parametrize("info", INFOS, ids=lambda info: info.name)
def test_every_error_case_raises_what_torch_nn_raises(info):
    cases = info.module_error_inputs_func(info, device="cpu", dtype=torch.float32, requires_grad=False,
                                          training=False)  # fmt: skip
    assert cases
    cls = PAIRS[info.module_cls]
    for case in cases:
        sample = case.module_error_input
        args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
        if _stricter(cls, args, kwargs):
            with pytest.raises(TypeError, match="bias must be True or False"):
                cls(*args, **kwargs)
            continue
        with pytest.raises(case.error_type):
            module = cls(*args, **kwargs)
            if case.error_on == common_modules.ModuleErrorEnum.FORWARD_ERROR:
                module(*sample.forward_input.args, **sample.forward_input.kwargs)
