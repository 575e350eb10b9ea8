"""Load test of ``rnnkit serve`` on loopback: N concurrent detect-like streams stepping as fast as
they can, batched against one step per request (``--max-batch 1 --batch-window 0``).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/serve_load.py [--streams 1 10 100] [--seconds 5]

Each case starts a server (a subprocess: ``rnnkit serve``) on a run directory written here (a
many-to-many LSTM, 1 feature, hidden 256, 2 layers), opens N streams, and steps each in its own
client task for ``--seconds``; throughput is acknowledged steps per second, latency per step.
Bounded in count and time; nothing leaves 127.0.0.1. Also the server's batched step alone,
in process without HTTP: one tick of N streams against N ticks of one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

from rnnkit._io import save_tensors, write_json
from rnnkit.deploy.serve import ServeConfig, StreamServer
from rnnkit.models import create_model, model_spec

MODEL = {"input": {"features": 1}, "outputs": 1, "encoder": {"cell": "lstm", "hidden_size": 256, "num_layers": 2}}


def run_dir(root: Path) -> Path:
    torch.manual_seed(0)
    model = create_model("many_to_many", MODEL)
    path = root / "detect"
    path.mkdir()
    write_json(path / "config.json", {"model": model_spec(model)})
    save_tensors(path / "model.safetensors", model.state_dict())
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(port: int, streams: int, seconds: float) -> tuple[float, float, float]:
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:
        ids = [(await client.post("/streams", json={})).json()["id"] for _ in range(streams)]
        latencies: list[float] = []
        stop = time.perf_counter() + seconds

        async def stream(sid: str) -> None:
            value = 0.0
            while time.perf_counter() < stop:
                start = time.perf_counter()
                answer = await client.post(f"/streams/{sid}/step", json={"input": [value]})
                answer.raise_for_status()
                latencies.append(time.perf_counter() - start)
                value = (value + 0.1) % 1.0

        began = time.perf_counter()
        await asyncio.gather(*(stream(sid) for sid in ids))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return len(latencies) / elapsed, statistics.median(latencies) * 1e3, latencies[int(0.99 * (len(latencies) - 1))] * 1e3


def serve_case(directory: Path, streams: int, seconds: float, batched: bool) -> tuple[float, float, float]:
    port = free_port()
    flags = ["--batch-window", "2", "--max-batch", "4096"] if batched else ["--batch-window", "0", "--max-batch", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "rnnkit.cli", "serve", str(directory), "--port", str(port),
                               "--max-streams", "5000", *flags], env=env)  # fmt: skip
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/models", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        return asyncio.run(load(port, streams, seconds))
    finally:
        server.terminate()
        server.wait(10)


def in_process(streams: int, repeats: int = 20) -> tuple[float, float]:
    """Steps per second of the stream pool without HTTP: one tick of all, against one per stream."""
    torch.manual_seed(0)
    server = StreamServer({"m": create_model("many_to_many", MODEL)}, ServeConfig())
    pool = server.pools["m"]
    ids = [server.open("m") for _ in range(streams)]
    inputs = [[0.5]] * streams
    start = time.perf_counter()
    for _ in range(repeats):
        pool.step(ids, inputs)
    batched = streams * repeats / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(repeats):
        for i in ids:
            pool.step([i], [[0.5]])
    alone = streams * repeats / (time.perf_counter() - start)
    return batched, alone


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'streams':>7} {'in-process batched/alone steps/s':>34}")
    for n in args.streams:
        batched, alone = in_process(n)
        print(f"{n:7d} {batched:15.0f} / {alone:8.0f} = {batched / alone:5.1f}x")
    with tempfile.TemporaryDirectory() as root:
        directory = run_dir(Path(root))
        print(f"{'streams':>7} {'mode':>9} {'steps/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for n in args.streams:
            rows = {}
            for batched in (True, False):
                rows[batched] = serve_case(directory, n, args.seconds, batched)
                rate, p50, p99 = rows[batched]
                print(f"{n:7d} {'batched' if batched else 'alone':>9} {rate:9.0f} {p50:8.1f} {p99:8.1f}", flush=True)
            print(f"{n:7d} {'ratio':>9} {rows[True][0] / rows[False][0]:9.2f}x")


if __name__ == "__main__":
    main()
