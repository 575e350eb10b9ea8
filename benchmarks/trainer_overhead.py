"""The trainer's overhead: the cost of one optimizer step of `rnnkit train text` against a plain
torch.nn.LSTM loop of the same size on the same data (issue 13, item 14; bar: within 3%).

Two measurements. **In one process** (`--in-process`), the trainer (`rnnkit.training.Trainer`
with the text app's model, objective and batches, no run directory) and a plain loop over a
`torch.nn.LSTM` model on the same batches take turns, 150 steps each, timed by the thread's CPU
clock: the per-step cost of everything the trainer adds (the model's wrappers, the objective and
its accuracy, the NaN guards, the schedule, progress), free of start-up and of a busy machine.

**Whole runs**: each run is its own process with one thread. A step's cost is taken as a difference: the CPU
time (and wall time) of a run of N + 2 epochs of steps minus that of a run of N steps, over the
steps between them. Start-up (imports, reading and encoding the corpus, building the model, the
final evaluation and files) is in both runs and cancels; what is left is the steady cost of a
step, with the two epoch ends in between (their validation pass and, for rnnkit, the checkpoint
it writes there). CPU time of the child process is what the work cost, so a busy machine moves
it much less than it moves wall time; both are printed. Runs alternate (rnnkit, plain, ...).

The plain loop validates on the same held-out 10% at every epoch end, as rnnkit does by default
and as a practitioner's loop does (PyTorch's word_language_model example); `--no-plain-validation`
leaves that out, so the gap includes rnnkit's validation too.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/trainer_overhead.py --in-process --repeats 8
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/trainer_overhead.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HIDDEN, EMBEDDING, BATCH, BPTT, LR = 128, 64, 16, 64, 2e-3

PLAIN = r"""
import json, sys
import torch
from torch import nn
from rnnkit.apps.text.app import default_corpus

torch.set_num_threads(1)
torch.manual_seed(0)
max_steps, validate = int(sys.argv[1]), sys.argv[2] == "1"
hidden, embedding, batch, bptt, lr = *map(int, sys.argv[3:7]), float(sys.argv[7])
text, _ = default_corpus()
split = int(len(text) * 0.9)  # the app's val_fraction=0.1
vocab = sorted(set(text[:split]))
index = {c: i for i, c in enumerate(vocab)}


def streams(part, rows):  # (rows, N) contiguous streams and their next characters, as StreamBatches
    ids = torch.tensor([index.get(c, 0) for c in part], dtype=torch.long)
    n = (len(ids) - 1) // rows
    return ids[: n * rows].view(rows, n), ids[1 : n * rows + 1].view(rows, n)


x_all, y_all = streams(text[:split], batch)
x_val, y_val = streams(text[split:], batch)


class CharLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(len(vocab), embedding)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True)
        self.head = nn.Linear(hidden, len(vocab))

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)
        return self.head(out), state


def evaluate():
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for t in range(0, x_val.shape[1] - bptt + 1, bptt):
            logits, state = model(x_val[:, t : t + bptt], state)
            y = y_val[:, t : t + bptt].flatten()
            total += nn.functional.cross_entropy(logits.flatten(0, 1), y, reduction="sum").item()
            count += y.numel()
    model.train()
    return total / count


model = CharLSTM()
optimizer = torch.optim.Adam(model.parameters(), lr=lr)
steps = 0
while steps < max_steps:
    state = None
    for t in range(0, x_all.shape[1] - bptt + 1, bptt):
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
        if steps >= max_steps:
            break
    else:
        if validate:
            evaluate()
print(json.dumps({"steps": steps, "val_loss": evaluate()}))
"""


def _child_run(command: list[str]) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of one child process."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def run_rnnkit(steps: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as run_dir:
        return _child_run([sys.executable, "-m", "rnnkit.cli", "train", "text", "--run-dir", f"{run_dir}/run", "--quiet",
                           f"--model.encoder.hidden_size={HIDDEN}", "--model.encoder.num_layers=1",
                           "--model.encoder.dropout=0", "--model.head_dropout=0",
                           f"--model.input.embedding_dim={EMBEDDING}", f"--task.batch_size={BATCH}",
                           f"--task.bptt={BPTT}", f"--train.lr={LR}", "--train.threads=1",
                           f"--train.max_steps={steps}", "--task.sample_length=1"])  # fmt: skip


def run_plain(steps: int, validate: bool) -> tuple[float, float]:
    return _child_run([sys.executable, "-c", PLAIN, str(steps), "1" if validate else "0", str(HIDDEN), str(EMBEDDING),
                       str(BATCH), str(BPTT), str(LR)])  # fmt: skip


def steps_per_epoch() -> int:
    from rnnkit.apps.text.app import default_corpus

    text, _ = default_corpus()
    streams = (int(len(text) * 0.9) - 1) // BATCH
    return len(range(0, streams - BPTT + 1, BPTT))


def in_process(repeats: int, steps: int = 150) -> None:
    import copy

    import torch
    from torch import nn

    from rnnkit.apps.text.app import TextApp, TextConfig
    from rnnkit.training import TrainConfig, Trainer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    settings = {"encoder": {"cell": "lstm", "hidden_size": HIDDEN, "num_layers": 1, "dropout": 0.0},
                "head_dropout": 0.0, "input": {"embedding_dim": EMBEDDING}}  # fmt: skip
    prepared = TextApp().prepare(TextConfig(batch_size=BATCH, bptt=BPTT), settings, 0)
    vocab = prepared.model.head.out_features

    class CharLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, EMBEDDING)
            self.lstm = nn.LSTM(EMBEDDING, HIDDEN, batch_first=True)
            self.head = nn.Linear(HIDDEN, vocab)

        def forward(self, x, state=None):
            out, state = self.lstm(self.embed(x), state)
            return self.head(out), state

    def trainer_step_cost() -> float:
        config = TrainConfig(lr=LR, max_steps=steps, clip_norm=1.0, threads=1, log_every=20)
        trainer = Trainer(copy.deepcopy(prepared.model), prepared.objective, config, None, quiet=True)
        start = time.thread_time()
        trainer.fit(prepared.train)
        return (time.thread_time() - start) / steps

    def plain_step_cost() -> float:
        model = CharLSTM()
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        start, state = time.thread_time(), None
        for n, (x, y, _) in enumerate(prepared.train.epoch(0), 1):
            logits, state = model(x, state)
            state = tuple(s.detach() for s in state)
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            loss.item()
            if n == steps:
                break
        return (time.thread_time() - start) / steps

    trainer_step_cost(), plain_step_cost()  # warm-up: first calls, allocator
    ours, plain = [], []
    for repeat in range(repeats):
        load = os.getloadavg()[0]
        ours.append(trainer_step_cost())
        plain.append(plain_step_cost())
        print(f"repeat {repeat + 1}: CPU ms per step, Trainer {1e3 * ours[-1]:.2f} plain {1e3 * plain[-1]:.2f}"
              f" ({plain[-1] / ours[-1]:.3f}); load average {load:.1f}", flush=True)  # fmt: skip
    ratio = statistics.median(plain) / statistics.median(ours)
    print(f"in one process: the Trainer's steps per CPU second / the plain loop's = {ratio:.3f} (medians of"
          f" {repeats} x {steps} steps); {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-steps", type=int, default=100, help="steps of the short run (N)")
    parser.add_argument("--repeats", type=int, default=3, help="rnnkit/plain measurements, interleaved")
    parser.add_argument("--no-plain-validation", action="store_true", help="the plain loop skips validation")
    parser.add_argument("--in-process", action="store_true", help="the per-step cost in one process, no start-up")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.in_process:
        in_process(args.repeats)
        return
    short, extra = args.base_steps, 2 * steps_per_epoch()
    validate = not args.no_plain_validation
    print(f"per-step cost = (run of {short + extra} steps - run of {short}) / {extra}; plain loop validates at"
          f" epoch ends: {'yes' if validate else 'no'}", flush=True)
    ours: list[tuple[float, float]] = []
    plain: list[tuple[float, float]] = []
    for repeat in range(args.repeats):
        load = os.getloadavg()[0]
        a, b = run_rnnkit(short), run_rnnkit(short + extra)
        c, d = run_plain(short, validate), run_plain(short + extra, validate)
        ours.append(((b[0] - a[0]) / extra, (b[1] - a[1]) / extra))
        plain.append(((d[0] - c[0]) / extra, (d[1] - c[1]) / extra))
        print(f"repeat {repeat + 1}: ms per step, CPU rnnkit {1e3 * ours[-1][0]:.2f} plain {1e3 * plain[-1][0]:.2f}"
              f" ({plain[-1][0] / ours[-1][0]:.3f}); wall rnnkit {1e3 * ours[-1][1]:.2f} plain"
              f" {1e3 * plain[-1][1]:.2f} ({plain[-1][1] / ours[-1][1]:.3f}); load average {load:.1f} on"
              f" {os.cpu_count()} cores", flush=True)  # fmt: skip
    for k, name in enumerate(("CPU", "wall")):
        ratio = statistics.median(p[k] for p in plain) / statistics.median(o[k] for o in ours)
        print(f"{name}: rnnkit's steps per second / the plain loop's = {ratio:.3f} (median per-step cost over"
              f" {args.repeats} repeats); {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip


if __name__ == "__main__":
    main()
