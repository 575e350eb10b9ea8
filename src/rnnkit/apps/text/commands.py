"""``rnnkit demo`` (the main job: a text model on the text Python ships) and ``rnnkit generate``."""

from __future__ import annotations

import argparse
import functools
import sys
import time

from ..commands import Command


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=3.0, help="training time (default: %(default)s)")
    parser.add_argument("--run-dir", metavar="DIR", default=None,
                        help="where the run is written (default: runs/demo-TIMESTAMP)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def _demo(app, args: argparse.Namespace) -> int:
    import torch

    from ..runner import train_app

    if not args.minutes > 0:
        raise ValueError(f"minutes must be a positive number, got {args.minutes}")
    run_dir = args.run_dir or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}"
    if not args.quiet:
        print(f"rnnkit demo: a 2-layer LSTM character model on Python's own documentation text,"
              f" {args.minutes:g} min of training on {torch.get_num_threads()} CPU thread(s); then a sample.",
              file=sys.stderr, flush=True)
    overrides = [f"train.max_minutes={args.minutes}", f"train.seed={args.seed}", "train.lr=3e-3",
                 "train.schedule=cosine", "train.warmup_steps=50", "train.eval_every=200",
                 "model.encoder.hidden_size=256", "task.bptt=64", "task.batch_size=32",
                 "task.sample_prime=The ", "task.sample_length=300"]  # fmt: skip
    outcome = train_app(app, overrides=overrides, run_dir=run_dir, quiet=args.quiet)
    print(outcome.report)
    print(f"\nrun directory: {outcome.run_dir}\n  summary.md, metrics.jsonl, plots/loss.png, model.safetensors\n"
          f"more text: rnnkit generate {outcome.run_dir} --prime 'The ' --length 300")
    return 0


def demo_command(app) -> Command:
    """``rnnkit demo``: ``app`` (the text app) trained with the demo's settings."""
    return Command(
        help="the main job: train a character language model on text shipped with Python, then write a sample",
        example="rnnkit demo --minutes 3",
        add_arguments=_demo_arguments,
        run=functools.partial(_demo, app),
    )


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train text'")
    parser.add_argument("--prime", default="\n", help="text the model reads before it writes (default: a newline)")
    parser.add_argument("--length", type=int, default=500, help="tokens to generate (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="sampling temperature; 0 is greedy (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens")
    parser.add_argument("--top-p", type=float, default=None, help="sample within the smallest set of mass p")
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible samples")


def _generate(args: argparse.Namespace) -> int:
    from .generator import generate_text

    started = False

    def show(piece: str) -> None:
        nonlocal started
        if not started:  # the prime appears once the model has loaded and begun to write
            sys.stdout.write(args.prime)
            started = True
        sys.stdout.write(piece)
        sys.stdout.flush()

    generate_text(args.run_dir, prime=args.prime, length=args.length, temperature=args.temperature,
                  top_k=args.top_k, top_p=args.top_p, seed=args.seed, on_text=show)  # fmt: skip
    sys.stdout.write("\n")
    return 0


GENERATE = Command(
    help="write text with a trained text model",
    example="rnnkit generate runs/text-20261122-101500 --prime 'ROMEO:' --length 300 --temperature 0.7",
    add_arguments=_generate_arguments,
    run=_generate,
)
