"""The trainer's overhead: optimizer steps `rnnkit train text` makes in a fixed time, against a
plain torch.nn.LSTM loop of the same size on the same data (issue 13, item 14; bar: within 3%).

Runs alternate (rnnkit, plain, rnnkit, plain, ...) so that a shared machine's load falls on
both alike; each run trains for SECONDS of wall time in its own process with one thread, and
the ratio is the mean steps of rnnkit over the mean steps of the plain loop.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/trainer_overhead.py --seconds 20 --pairs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HIDDEN, EMBEDDING, BATCH, BPTT, LR = 128, 64, 16, 64, 2e-3

PLAIN = r"""
import json, sys, time
import torch
from torch import nn
from rnnkit.apps.text.app import default_corpus

torch.set_num_threads(1)
torch.manual_seed(0)
seconds, hidden, embedding, batch, bptt, lr = float(sys.argv[1]), *map(int, sys.argv[2:6]), float(sys.argv[6])
text, _ = default_corpus()
text = text[: int(len(text) * 0.9)]  # the same training part as the app's val_fraction=0.1
vocab = sorted(set(text))
index = {c: i for i, c in enumerate(vocab)}
ids = torch.tensor([index[c] for c in text], dtype=torch.long)
streams = (len(ids) - 1) // batch
x_all = ids[: streams * batch].view(batch, streams)  # (B, N): contiguous streams, as StreamBatches
y_all = ids[1 : streams * batch + 1].view(batch, streams)


class CharLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(len(vocab), embedding)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True)
        self.head = nn.Linear(hidden, len(vocab))

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)
        return self.head(out), state


model = CharLSTM()
optimizer = torch.optim.Adam(model.parameters(), lr=lr)
steps, state, start = 0, None, time.perf_counter()
while time.perf_counter() - start < seconds:
    for t in range(0, streams - bptt, bptt):
        x, y = x_all[:, t : t + bptt], y_all[:, t : t + bptt]
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss.item()
        steps += 1
        if time.perf_counter() - start >= seconds:
            break
print(json.dumps({"steps": steps}))
"""


def run_rnnkit(seconds: float) -> int:
    with tempfile.TemporaryDirectory() as run_dir:
        command = [sys.executable, "-m", "rnnkit.cli", "train", "text", "--run-dir", f"{run_dir}/run", "--quiet",
                   f"--model.encoder.hidden_size={HIDDEN}", "--model.encoder.num_layers=1",
                   "--model.encoder.dropout=0", "--model.head_dropout=0", f"--model.input.embedding_dim={EMBEDDING}",
                   f"--task.batch_size={BATCH}", f"--task.bptt={BPTT}", f"--train.lr={LR}", "--train.threads=1",
                   f"--train.max_minutes={seconds / 60}", "--task.sample_length=1"]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, text=True)
        return _steps(run_dir)


def _steps(run_dir: str) -> int:
    lines = open(f"{run_dir}/run/metrics.jsonl").read().splitlines()
    return max(json.loads(line)["step"] for line in lines)


def run_plain(seconds: float) -> int:
    out = subprocess.run([sys.executable, "-c", PLAIN, str(seconds), str(HIDDEN), str(EMBEDDING), str(BATCH), str(BPTT),
                          str(LR)], check=True, capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout)["steps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="training time of each run")
    parser.add_argument("--pairs", type=int, default=3, help="rnnkit/plain pairs, interleaved")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ours, plain = [], []
    for pair in range(args.pairs):
        load = os.getloadavg()[0]
        ours.append(run_rnnkit(args.seconds))
        plain.append(run_plain(args.seconds))
        print(f"pair {pair + 1}: rnnkit {ours[-1]} steps, plain loop {plain[-1]} steps"
              f" ({ours[-1] / plain[-1]:.3f}); load average {load:.1f} on {os.cpu_count()} cores", flush=True)
    ratio = statistics.mean(ours) / statistics.mean(plain)
    print(f"rnnkit / plain loop steps in {args.seconds:.0f} s: {ratio:.3f}"
          f" (per pair {', '.join(f'{o / p:.3f}' for o, p in zip(ours, plain))}); {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
