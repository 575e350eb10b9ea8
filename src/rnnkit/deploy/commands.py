"""``rnnkit export`` and ``rnnkit serve``: the deployment commands (their modules load when run)."""

from __future__ import annotations

import argparse
import os

from ..apps.commands import Command, check_output_path


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    from ._export import FORMATS, GRAPHS

    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory (config.json, model.safetensors)")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="file format (default: %(default)s)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="the whole-sequence graph's file; the one-step graph goes beside it as STEM.step.SUFFIX")
    parser.add_argument("--graphs", choices=GRAPHS, default="both", help="which graphs to write (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=100,
                        help="time steps the whole-sequence graph holds; pad shorter sequences and pass lengths"
                             " (default: %(default)s)")


def _export(args: argparse.Namespace) -> int:
    from ..training.run import load
    from ._export import export

    check_output_path(args.out, "--out")
    paths = export(load(args.run_dir), args.out, format=args.format, graphs=args.graphs, steps=args.steps)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


EXPORT = Command(
    help="export a run's model with its state as explicit inputs and outputs (ONNX, TorchScript, torch.export)",
    example="rnnkit export runs/detect --format onnx --out detect.onnx",
    add_arguments=_export_arguments,
    run=_export,
)


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    from .serve import ServeConfig

    default = ServeConfig()
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories to serve, each under its name")
    parser.add_argument("--host", default=default.host, help="address to bind (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument("--token", default=None,
                        help="require 'Authorization: Bearer TOKEN' (default: $RNNKIT_TOKEN, else none)")
    parser.add_argument("--state-dir", default=None, metavar="DIR",
                        help="snapshot open streams' state here (safetensors) and resume them after a restart")
    parser.add_argument("--snapshot-every", type=float, default=default.snapshot_every, metavar="SECONDS",
                        help="seconds between snapshots (default: %(default)s)")
    parser.add_argument("--batch-window", type=float, default=default.batch_window_ms, metavar="MS",
                        help="milliseconds a tick waits at most for the streams of the last tick to send their next"
                             " steps (default: %(default)s: a tick runs the steps that arrived while the last one ran)")
    parser.add_argument("--max-batch", type=int, default=default.max_batch,
                        help="streams per batched step at most; 1 serves every step alone (default: %(default)s)")
    parser.add_argument("--max-streams", type=int, default=default.max_streams,
                        help="open streams at most; more answer 429 (default: %(default)s)")
    parser.add_argument("--idle-timeout", type=float, default=default.idle_timeout, metavar="SECONDS",
                        help="close a stream idle this long (default: %(default)s)")
    parser.add_argument("--rate-limit", type=float, default=default.rate_limit, metavar="PER_SECOND",
                        help="requests (and WebSocket messages) a second per client address; more answer 429"
                             " (default: %(default)s, no limit)")
    parser.add_argument("--rate-burst", type=int, default=default.rate_burst,
                        help="requests a client may make at once before --rate-limit applies (default: %(default)s)")
    parser.add_argument("--max-body", type=int, default=default.max_body, metavar="BYTES",
                        help="bytes a request (a CSV, a message) may hold (default: %(default)s)")


def _serve(args: argparse.Namespace) -> int:
    from .serve import ServeConfig, run_server

    config = ServeConfig(
        host=args.host, token=args.token or os.environ.get("RNNKIT_TOKEN") or None,
        state_dir=args.state_dir, snapshot_every=args.snapshot_every, batch_window_ms=args.batch_window, max_batch=args.max_batch,
        max_streams=args.max_streams, idle_timeout=args.idle_timeout, rate_limit=args.rate_limit,
        rate_burst=args.rate_burst, max_body=args.max_body,
    )  # fmt: skip
    run_server(args.run_dirs, config, port=args.port)
    return 0


SERVE = Command(
    help="serve run directories: each app's endpoints, and stateful streams batched across streams, with a web page",
    example="rnnkit serve runs/detect --port 8000 --state-dir states/",
    add_arguments=_serve_arguments,
    run=_serve,
)

COMMANDS = {"export": EXPORT, "serve": SERVE}
