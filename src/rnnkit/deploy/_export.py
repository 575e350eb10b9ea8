"""``rnnkit.export``: a model's whole-sequence and one-step graphs as ONNX, TorchScript or
``torch.export`` files, the state an explicit input and output of each.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._extras import require
from .._io import atomic_write
from .._validation import check_choice, check_positive_int
from ._graphs import SequenceGraph, StepGraph, example_inputs, io_names, recurrent_layer

FORMATS = ("onnx", "torchscript", "exported")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "exported": ".pt2"}
GRAPHS = ("both", "sequence", "step")
OPSET = 17


def graph_paths(out: str | Path, format: str) -> dict[str, Path]:
    """Where :func:`export` writes: ``out`` itself for the whole sequence, ``<stem>.step<suffix>``
    beside it for the one step (``model.onnx`` and ``model.step.onnx``)."""
    out = Path(out)
    suffix = out.suffix or SUFFIXES[format]
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return {"sequence": out.with_name(stem + suffix), "step": out.with_name(f"{stem}.step{suffix}")}


def export(
    model: nn.Module,
    out: str | Path,
    *,
    format: str = "onnx",
    graphs: str = "both",
    steps: int = 32,
    check: bool = True,
) -> dict[str, Path]:
    """Export ``model`` (an rnnkit layer, or a ``many_to_one``/``many_to_many`` model) to ``out``.

    Two graphs, in eval mode (dropout-like options at their expectation), fp32:

    - the **whole sequence** (``out``): ``input, h0[, c0], lengths -> output, h_n[, c_n]``; input
      padded to ``steps`` time steps (the tracer unrolls the time loop: the graph holds exactly
      ``steps`` steps; any batch size), ``lengths`` ``(B,)`` int64 in ``[1, steps]``;
    - the **one step** (``<stem>.step<suffix>``): ``input, h[, c] -> output, h_next[, c_next]``
      with any batch size, which a runtime steps for a sequence of any length. Not for a
      bidirectional model, whose reverse direction reads the future.

    Each state component is ``(num_layers * num_directions, B, size)``, as PyTorch's ``hx``.
    ``format``: ``"onnx"`` (``torch.onnx.export``, opset 17; with ``check`` the file is held to
    ``onnx.checker``), ``"torchscript"`` (``torch.jit.trace``) or ``"exported"``
    (``torch.export``). Files are written atomically. Returns ``{"sequence": path, "step": path}``
    for the graphs written.

    >>> import rnnkit, tempfile, os
    >>> paths = rnnkit.export(rnnkit.GRU(3, 8), os.path.join(tempfile.mkdtemp(), "gru.pt"),
    ...                       format="torchscript", steps=5)
    >>> sorted(p.name for p in paths.values())
    ['gru.pt', 'gru.step.pt']
    """
    format = check_choice("format", format, FORMATS)
    graphs = check_choice("graphs", graphs, GRAPHS)
    steps = check_positive_int("steps", steps)
    layer = recurrent_layer(model)
    if graphs == "step" and layer.bidirectional:
        StepGraph(model)  # raises: names why
    wanted = ("sequence", "step") if graphs == "both" else (graphs,)
    if layer.bidirectional:
        wanted = tuple(g for g in wanted if g != "step")
    if format == "onnx":
        require("onnx", "export", "ONNX export")
    model = copy.deepcopy(model).float().eval()  # the caller's model keeps its mode and dtype
    paths = graph_paths(out, format)
    written = {}
    for kind in wanted:
        graph = (StepGraph if kind == "step" else SequenceGraph)(model).eval()
        inputs = example_inputs(model, batch=2, steps=steps, step=kind == "step")
        names = io_names(model, step=kind == "step")
        atomic_write(paths[kind], lambda tmp: _WRITERS[format](graph, inputs, names, tmp, check))
        written[kind] = paths[kind]
    return written


def _write_onnx(graph: nn.Module, inputs: tuple, names: tuple[list[str], list[str]], path: Path, check: bool) -> None:
    inputs_names, output_names = names
    # the batch axis is free: dim 0 of the input (B, ...) and of lengths, dim 1 of every state
    layer = graph.layer
    batch_axis = 1 if graph.is_layer and not layer.batch_first and isinstance(graph, SequenceGraph) else 0
    dynamic = {inputs_names[0]: {batch_axis: "batch"}, output_names[0]: {batch_axis: "batch"}}
    for name in inputs_names[1:] + output_names[1:]:
        dynamic[name] = {0: "batch"} if name == "lengths" else {1: "batch"}
    if isinstance(graph, SequenceGraph) and not graph.is_layer and graph.model.registry_name == "many_to_one":
        dynamic[output_names[0]] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python ints it keeps as constants
        torch.onnx.export(
            graph, inputs, str(path), input_names=inputs_names, output_names=output_names,
            dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )  # fmt: skip
    if check:
        import onnx

        onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def _write_torchscript(graph: nn.Module, inputs: tuple, names: Any, path: Path, check: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(graph, inputs, check_trace=check)
    torch.jit.save(traced, str(path))


def _write_exported(graph: nn.Module, inputs: tuple, names: Any, path: Path, check: bool) -> None:
    batch = torch.export.Dim("batch", min=1, max=65536)
    layer = graph.layer
    time_major = graph.is_layer and not layer.batch_first and isinstance(graph, SequenceGraph)
    rest: list[Any] = [{1: batch} for _ in layer.state_names]  # forward(input, *args): args as one tuple
    if isinstance(graph, SequenceGraph):
        rest.append({0: batch})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(graph, inputs, dynamic_shapes=({1 if time_major else 0: batch}, tuple(rest)))
    torch.export.save(program, str(path))


_WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript, "exported": _write_exported}
