"""onnxruntime against PyTorch on the exported graphs: the streaming step (B1, H256) and a batch
(B64, T100), per cell; a 2-layer LSTM step against two torch.nn.LSTMCell calls.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/deploy_latency.py [--repeats 200]

Prints one row per case: median latency of each in microseconds and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

import rnnkit
from rnnkit.deploy import export


def median_us(fn, repeats: int) -> float:
    for _ in range(max(3, repeats // 10)):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(tempfile.mkdtemp())
    print(f"{'case':34} {'pytorch us':>11} {'onnxruntime us':>15} {'ort/pt':>7}")
    for name, make in (("lstm", rnnkit.LSTM), ("gru", rnnkit.GRU), ("layer-norm lstm", None)):
        layer = (make(256, 256, num_layers=2) if make else rnnkit.LSTM(256, 256, num_layers=2, layer_norm=True)).eval()
        # the streaming step, B1 H256, 2 layers: the layer's own step against the exported step graph
        paths = export(layer, out / f"{name.replace(' ', '_')}.onnx", steps=100)
        x = torch.randn(1, 256)
        state = tuple(torch.zeros(2, 1, 256) for _ in layer.state_sizes)
        hx = state[0] if len(state) == 1 else state
        step = session(paths["step"])
        feeds = dict(zip([i.name for i in step.get_inputs()], [x.numpy(), *(s.numpy() for s in state)]))
        with torch.no_grad():
            pt = median_us(lambda: layer.step(x, hx), args.repeats)
        rt = median_us(lambda: step.run(None, feeds), args.repeats)
        print(f"{name + ' step B1 H256 L2':34} {pt:11.1f} {rt:15.1f} {rt / pt:7.2f}")
        # a batch, B64 T100: forward against the whole-sequence graph
        xs = torch.randn(100, 64, 256)
        lengths = torch.full((64,), 100)
        state = tuple(torch.zeros(2, 64, 256) for _ in layer.state_sizes)
        hx = state[0] if len(state) == 1 else state
        seq = session(paths["sequence"])
        feeds = dict(zip([i.name for i in seq.get_inputs()], [xs.numpy(), *(s.numpy() for s in state), lengths.numpy()]))
        with torch.no_grad():
            pt = median_us(lambda: layer(xs, hx), max(5, args.repeats // 20))
        rt = median_us(lambda: seq.run(None, feeds), max(5, args.repeats // 20))
        print(f"{name + ' batch B64 T100 H256 L2':34} {pt:11.1f} {rt:15.1f} {rt / pt:7.2f}")
    # the step bar: a 2-layer LSTM step against two torch.nn.LSTMCell calls
    for hidden in (256, 512):
        layer = rnnkit.LSTM(hidden, hidden, num_layers=2).eval()
        cells = [torch.nn.LSTMCell(hidden, hidden) for _ in range(2)]
        x = torch.randn(1, hidden)
        hx = (torch.zeros(2, 1, hidden), torch.zeros(2, 1, hidden))
        h1 = (torch.zeros(1, hidden), torch.zeros(1, hidden))

        def two_cells():
            a = cells[0](x, h1)
            return cells[1](a[0], h1)

        with torch.no_grad():
            ours = median_us(lambda: layer.step(x, hx), args.repeats * 5)
            theirs = median_us(two_cells, args.repeats * 5)
        print(f"{f'lstm step B1 H{hidden} L2 vs 2 LSTMCell':34} {theirs:11.1f} {ours:15.1f} {ours / theirs:7.2f}"
              "   (columns: LSTMCell x2, rnnkit step, ratio)")


if __name__ == "__main__":
    main()
