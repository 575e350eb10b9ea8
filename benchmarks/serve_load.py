"""Load test of ``rnnkit serve`` on loopback: N concurrent detect-like streams stepping as fast as
they can, batched against the same workload served one step per request (``--max-batch 1
--batch-window 0``), over HTTP and over the WebSocket of each stream.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/serve_load.py [--streams 1 10 100 1000]
        [--seconds 5] [--repeats 1] [--transports http ws] [--hidden 256 --layers 2] [--detector]

Each case starts a server (a subprocess: ``rnnkit serve``, uvicorn with uvloop and httptools
where installed) on a run directory written here (a many-to-many LSTM, 1 feature; with
``--detector`` a detect run, trained here, whose streams answer scores and flags), opens N
streams, and steps each in its own client task; this process is the client (uvloop where
installed; HTTP/1.1 keep-alive written by hand, one connection per stream, so that the client
costs little beside the server; the WebSocket through the ``websockets`` package). After a
warm-up of ``--warmup`` seconds the steps answered in the next ``--seconds`` are counted:
throughput is steps per second, latency per step, p50 and p99 (with ``--repeats R``, the
median of R runs of each mode, taken in turn). Also the server's CPU time per
step (from /proc), which says where a step's time goes, and the batched step alone in process,
without a network: one tick of N streams against N ticks of one. Bounded in count and time;
nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import torch

from rnnkit._io import save_tensors, write_json
from rnnkit.deploy.serve import ServeConfig, StreamServer
from rnnkit.models import create_model, model_spec


def model_settings(hidden: int, layers: int) -> dict:
    return {"input": {"features": 1}, "outputs": 1, "encoder": {"cell": "lstm", "hidden_size": hidden, "num_layers": layers}}


def run_dir(root: Path, settings: dict) -> Path:
    torch.manual_seed(0)
    model = create_model("many_to_many", settings)
    path = root / "detect"
    path.mkdir()
    write_json(path / "config.json", {"model": model_spec(model)})
    save_tensors(path / "model.safetensors", model.state_dict())
    return path


def detect_run_dir(root: Path, hidden: int, layers: int) -> Path:
    """A ``rnnkit train detect`` run (three steps on a generated sine, online adaptation off, so
    that its streams batch): the detector's own streams, scores and flags, not the bare model's."""
    import math
    import warnings

    from rnnkit.apps import get_app
    from rnnkit.apps.runner import train_app

    data = root / "series.csv"
    data.write_text("timestamp,value\n" + "".join(f"{i},{math.sin(i / 8):.4f}\n" for i in range(600)))
    overrides = [f"task.data={data}", "task.online.every=0", "task.chunk=32", f"model.encoder.hidden_size={hidden}",
                 f"model.encoder.num_layers={layers}", "train.max_steps=3", "train.threads=1"]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_app(get_app("detect"), overrides=overrides, run_dir=root / "detect", quiet=True)
    return root / "detect"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the client: one connection per stream ----------------------------------------------------


class HTTPStream:
    """One keep-alive HTTP/1.1 connection, requests written by hand."""

    def __init__(self, port: int, scalar: bool = False) -> None:
        self.port = port
        self.format = "%.4f" if scalar else "[%.4f]"  # a detector's input is a number, a model's a list

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, path: str, body: bytes) -> dict:
        self.writer.write(b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                          b"content-length: %d\r\n\r\n%s" % (path.encode(), len(body), body))  # fmt: skip
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        data = await self.reader.readexactly(length)
        if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 201")):
            raise RuntimeError(f"{path}: {head.splitlines()[0].decode()} {data.decode()}")
        return json.loads(data)

    async def open(self) -> None:
        self.id = (await self.post("/streams", b"{}"))["id"]
        self.path = f"/streams/{self.id}/step"

    async def step(self, value: float) -> dict:
        return await self.post(self.path, b'{"input":%s}' % (self.format % value).encode())

    async def close(self) -> None:
        self.writer.close()


class SocketStream(HTTPStream):
    """A stream opened over HTTP, stepped over its WebSocket."""

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        await super().open()
        self.writer.close()
        self.socket = await connect(f"ws://127.0.0.1:{self.port}/streams/{self.id}/ws", compression=None, max_queue=None)

    async def step(self, value: float) -> dict:
        await self.socket.send('{"input":%s}' % (self.format % value))
        return json.loads(await self.socket.recv())

    async def close(self) -> None:
        await self.socket.close()


async def load(port: int, streams: int, transport: str, warmup: float, seconds: float, server_pid: int,
               scalar: bool = False) -> dict:  # fmt: skip
    kind = SocketStream if transport == "ws" else HTTPStream
    clients = [kind(port, scalar) for _ in range(streams)]
    for c in clients:
        await c.connect()
        await c.open()
    latencies: list[float] = []
    begin = time.perf_counter() + warmup
    stop = begin + seconds

    async def run(client: HTTPStream) -> None:
        value = 0.0
        while True:
            start = time.perf_counter()
            if start >= stop:
                return
            answer = await client.step(value)
            if "steps" not in answer:
                raise RuntimeError(f"step failed: {answer}")
            if start >= begin:
                latencies.append(time.perf_counter() - start)
            value = (value + 0.1) % 1.0

    tasks = [asyncio.ensure_future(run(c)) for c in clients]
    await asyncio.sleep(max(0.0, begin - time.perf_counter()))
    cpu_server, cpu_client = cpu_seconds(server_pid), time.process_time()
    await asyncio.gather(*tasks)
    cpu_server, cpu_client = cpu_seconds(server_pid) - cpu_server, time.process_time() - cpu_client
    for c in clients:
        await c.close()
    latencies.sort()
    n = len(latencies)
    return {"rate": n / seconds, "p50": statistics.median(latencies) * 1e3, "p99": latencies[int(0.99 * (n - 1))] * 1e3,
            "server_us": cpu_server / n * 1e6, "client_us": cpu_client / n * 1e6}  # fmt: skip


def serve_case(directory: Path, streams: int, transport: str, batched: bool, args) -> dict:
    port = free_port()
    flags = ["--batch-window", str(args.window), "--max-batch", "4096"] if batched else ["--batch-window", "0", "--max-batch", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "rnnkit.cli", "serve", str(directory), "--port", str(port),
                               "--max-streams", "5000", *flags], env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/models", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("rnnkit serve did not start") from None
                time.sleep(0.1)
        return asyncio.run(load(port, streams, transport, args.warmup, args.seconds, server.pid, args.detector))
    finally:
        server.terminate()
        server.wait(30)


def in_process(settings: dict, streams: int, seconds: float = 1.0) -> tuple[float, float]:
    """Steps per second of the stream pool without a network: one tick of all, against one per stream."""
    torch.manual_seed(0)
    server = StreamServer({"m": create_model("many_to_many", settings)}, ServeConfig())
    pool = server.pools["m"]
    ids = [server.open("m") for _ in range(streams)]

    def rate(batches: list[list[str]]) -> float:
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for batch in batches:
                pool.step(batch, [[0.5]] * len(batch))
                done += len(batch)
        return done / (time.perf_counter() - start)

    return rate([ids]), rate([[i] for i in ids])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--transports", nargs="+", choices=["http", "ws"], default=["http", "ws"])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per case (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring (default: %(default)s)")
    parser.add_argument("--window", type=float, default=ServeConfig().batch_window_ms,
                        help="batched: --batch-window in ms (default: rnnkit serve's, %(default)s)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each case, batched and alone in turn; the medians are shown (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--detector", action="store_true",
                        help="serve a trained detect run: the detector's streams (scores and flags), not the bare model's")
    args = parser.parse_args()
    if max(args.streams) > 2000:
        parser.error("--streams: at most 2000 (one connection each)")
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    torch.set_num_threads(1)
    settings = model_settings(args.hidden, args.layers)
    print(f"LSTM, 1 feature, hidden {args.hidden}, {args.layers} layer(s); load average {os.getloadavg()[0]:.1f}"
          f" on {os.cpu_count()} CPUs", flush=True)  # fmt: skip
    print(f"{'streams':>7} {'in-process batched / alone (steps/s)':>38}")
    for n in args.streams:
        batched, alone = in_process(settings, n)
        print(f"{n:7d} {batched:18.0f} / {alone:8.0f} = {batched / alone:5.1f}x", flush=True)
    with tempfile.TemporaryDirectory() as root:
        directory = detect_run_dir(Path(root), args.hidden, args.layers) if args.detector else run_dir(Path(root), settings)
        print("served:", "a detect run (scores and flags)" if args.detector else "the bare model (its outputs)")
        print(f"{'streams':>7} {'via':>4} {'mode':>8} {'steps/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
              f" {'server us/step':>14} {'client us/step':>14}")  # fmt: skip
        for n in args.streams:
            for transport in args.transports:
                runs: dict[bool, list[dict]] = {True: [], False: []}
                for _ in range(args.repeats):  # interleaved: a change of the machine's load hits both modes
                    for batched in (True, False):
                        runs[batched].append(serve_case(directory, n, transport, batched, args))
                rows = {b: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for b, rs in runs.items()}
                for batched, r in rows.items():
                    print(f"{n:7d} {transport:>4} {'batched' if batched else 'alone':>8} {r['rate']:9.0f} {r['p50']:8.1f}"
                          f" {r['p99']:8.1f} {r['server_us']:14.0f} {r['client_us']:14.0f}", flush=True)  # fmt: skip
                print(f"{n:7d} {transport:>4} {'ratio':>8} {rows[True]['rate'] / rows[False]['rate']:8.2f}x"
                      f"   (load average {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip

if __name__ == "__main__":
    main()
