"""Training speed of the hand-written BPTT (rnnkit.scan) against torch.nn and the autograd loop.

Training = forward + backward of ``output.sum()``; FLOPs counted as REFERENCE.md does (3 x forward,
forward = 2 * G * H * (I + H) * B * T). Contenders run interleaved in the same process, several
rounds, and the table reports each one's median time, and its speed relative to the group's first
row from the medians and from the best rounds (the machine is shared: the best round is the one
least disturbed).

    .venv/bin/python benchmarks/fused_bptt.py [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import rnnkit

# --- configuration -----------------------------------------------------------------------
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
parser.add_argument("--quick", action="store_true", help="only the small size")
parser.add_argument("--large", action="store_true", help="only the large size")
parser.add_argument("--rounds", type=int, default=5)
parser.add_argument("--reps", type=int, default=0, help="timed steps per round (0: 10 small, 3 large)")
args = parser.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)

SIZES = [(16, 128, 128, 100, 10), (32, 256, 256, 200, 3)]  # B, I, H, T, reps per round
if args.quick:
    SIZES = SIZES[:1]
if args.large:
    SIZES = SIZES[1:]
GATES = {"GRU": 3, "RNN": 1, "LSTM": 4}


# --- contenders --------------------------------------------------------------------------
def rnnkit_layer(family: str, I: int, H: int, fused: bool, **options):
    layer = getattr(rnnkit, family)(I, H, backend="loop", **options)
    if not fused:
        layer.register_state_hook(lambda *args: None)  # any hook keeps the cells' autograd step loop
    return layer.train()


def torch_layer(family: str, I: int, H: int, like=None):
    layer = getattr(torch.nn, family)(I, H)
    if like is not None:  # same weights
        layer.load_state_dict({k: v for k, v in like.state_dict().items() if k in layer.state_dict()})
    return layer.train()


def train_step(layer, x):
    out = layer(x)[0]
    out.sum().backward()


def time_it(layer, x, reps: int) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        train_step(layer, x)
    return (time.perf_counter() - start) / reps


def compare(title: str, contenders: dict, x, reps: int, gflop: float, reference: str) -> None:
    for layer in contenders.values():  # warm up
        train_step(layer, x)
    times = {name: [] for name in contenders}
    for _ in range(args.rounds):  # interleaved rounds
        for name, layer in contenders.items():
            times[name].append(time_it(layer, x, reps))
    ref, ref_best = statistics.median(times[reference]), min(times[reference])
    for name, ts in times.items():
        t, best = statistics.median(ts), min(ts)
        print(f"| {title} | {name} | {t * 1e3:8.2f} ms | {gflop / t:6.1f} | {ref / t:5.2f}x | {ref_best / best:5.2f}x |")


# --- measurements -------------------------------------------------------------------------
print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
print("| config | contender | median time | GFLOP/s | speed vs first row (medians) | (best rounds) |")
print("|---|---|---|---|---|---|")
for B, I, H, T, reps in SIZES:
    reps = args.reps or reps
    x = torch.randn(T, B, I)
    size = f"B{B} I{I} H{H} T{T}"
    for family, options in (("GRU", {}), ("RNN", {}), ("RNN", {"nonlinearity": "relu"})):
        fused = rnnkit_layer(family, I, H, True, **options)
        loop = rnnkit_layer(family, I, H, False, **options)
        loop.load_state_dict(fused.state_dict())
        reference = torch_layer(family, I, H, like=fused)
        if options:
            reference = torch.nn.RNN(I, H, nonlinearity="relu")
            reference.load_state_dict(fused.state_dict())
        gflop = 3 * 2 * GATES[family] * H * (I + H) * B * T / 1e9
        name = family + (" relu" if options else "")
        compare(f"{name} {size}", {"torch.nn": reference, "fused BPTT": fused, "autograd loop": loop}, x, reps, gflop, "torch.nn")
    for family, options in (("LSTM", {"layer_norm": True}), ("GRU", {"zoneout": 0.1}), ("LSTM", {"zoneout": 0.1}),
                            ("LSTM", {"peepholes": True}), ("GRU", {"recurrent_dropout": 0.25})):
        fused = rnnkit_layer(family, I, H, True, **options)
        loop = rnnkit_layer(family, I, H, False, **options)
        loop.load_state_dict(fused.state_dict())
        reference = torch_layer("LSTM", I, H)
        gflop = 3 * 2 * GATES[family] * H * (I + H) * B * T / 1e9
        opt = ",".join(f"{k}={v}" for k, v in options.items())
        compare(f"{family} {opt} {size}", {"torch.nn.LSTM": reference, "fused BPTT": fused, "autograd loop": loop},
                x, reps, gflop, "torch.nn.LSTM")
