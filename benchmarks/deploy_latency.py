"""onnxruntime against PyTorch on the exported graphs: the streaming step (B1, H256) and a batch
(B64, T100), per cell; then issue 18's step bar: a 2-layer LSTM and GRU ``layer.step`` at B1,
H256 and H512, against a stack of two torch.nn cells (``rnnkit bench --configs 14``'s rows).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/deploy_latency.py [--repeats 200] [--rounds 5]
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/deploy_latency.py --bar-only --rounds 9

Prints one row per case: median latency of each in microseconds and their ratio. The bar's rows
time four calls interleaved in one process (rnnkit.bench.time_interleaved: rotating order, each
repetition a mean over enough calls to last 5 ms), in ``--rounds`` rounds of 15 repetitions:
rnnkit's step, the torch.nn cells, the rnnkit cells, and rnnkit's step layer after layer (the
path before the compiled whole-stack step, ``rnnkit.scan.disabled("compiled")``: torch.nn's cell
kernels per layer, with today's Python around them). Each round gives a ratio from its medians;
the row prints the median ratio over the rounds and their range, the ratio of the fastest
repetitions over all rounds (on a busy machine interference only adds time), and the load
average at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

import rnnkit
from rnnkit.bench import Case, build_contenders, time_interleaved
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
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the step bar's rows (0: none)")
    parser.add_argument("--bar-only", action="store_true", help="only the step bar's rows (no export)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.bar_only:
        step_bar(args.rounds)
        return
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
    if args.rounds:
        step_bar(args.rounds)


def step_bar(rounds: int) -> None:
    """Issue 18's bar: ``layer.step`` of a 2-layer LSTM/GRU at B1 against two torch.nn cells."""
    load = os.getloadavg()
    print(f"\nstep bar, {rounds} rounds; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start")
    print(f"{'case':22} {'rnnkit us':>10} {'torch.nn us':>12} {'ratio (range)':>22} {'rnnkit cells us':>16}"
          f" {'per-layer us':>13} {'per-layer ratio':>16} {'ratio of minima':>16}")  # fmt: skip
    for kind in ("lstm", "gru"):
        for hidden in (256, 512):
            case = Case(kind, hidden, 1, 1, "step", layers=2)
            ours, reference, cells = build_contenders(case, torch.device("cpu"))
            assert ours.path == "compiled", f"{case.label}: step takes {ours.path}, not the compiled step"
            layered = build_contenders(case, torch.device("cpu"))[0]  # the same weights (seeded)

            def layer_after_layer(call=layered.call):
                with rnnkit.scan.disabled("compiled"):
                    call()

            medians, fastest = [], [float("inf")] * 4
            for _ in range(rounds):
                samples = time_interleaved([ours.call, reference.call, cells.call, layer_after_layer], reps=15)
                medians.append([1e6 * statistics.median(s) for s in samples])
                fastest = [min(f, 1e6 * min(s)) for f, s in zip(fastest, samples)]
            ratios = sorted(m[0] / m[1] for m in medians)
            layered_ratios = sorted(m[3] / m[1] for m in medians)
            us = [statistics.median(m[i] for m in medians) for i in range(4)]
            spread = f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})"
            print(f"{case.label:22} {us[0]:10.1f} {us[1]:12.1f} {spread:>22} {us[2]:16.1f} {us[3]:13.1f}"
                  f" {statistics.median(layered_ratios):16.2f} {fastest[0] / fastest[1]:16.2f}")  # fmt: skip
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end;"
          " ratio = rnnkit step / torch.nn cells (<= 1.0: the bar is met)")


if __name__ == "__main__":
    main()
