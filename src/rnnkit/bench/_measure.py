"""Measuring: interleaved timing, peak memory of one call, and the machine (matmul peak, threads).

Timings on a shared machine drift; the contenders of a case are therefore timed in alternation
(rnnkit, torch.nn, loop, then the next repetition starting one further along), and only ratios
taken in the same run are compared.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

MATMUL_SIZE = 2048  # n of the n x n x n matmul that stands for the machine's peak


# -----------------------------------------------------------------------------
# timing


def _timed(call: Callable[[], object], count: int, sync: Callable[[], None]) -> float:
    sync()
    start = time.perf_counter()
    for _ in range(count):
        call()
    sync()
    return time.perf_counter() - start


def time_interleaved(
    calls: Sequence[Callable[[], object]],
    *,
    warmup: int = 2,
    reps: int | None = None,
    budget_s: float = 1.0,
    min_rep_s: float = 0.005,
    min_reps: int = 3,
    max_reps: int = 15,
    warmup_s: float = 0.2,
    sync: Callable[[], None] = lambda: None,
) -> list[list[float]]:
    """Seconds per call of each of ``calls``: a list of ``reps`` samples per call.

    Warm-up: ``warmup`` untimed rounds of one call each, interleaved like the repetitions, and
    more rounds (up to ``4 * warmup``) until each call has run ``warmup_s`` seconds; a call over
    a second stops it. A process's first calls pay for fresh memory (page faults of new
    allocations, the allocator's first sizes): with two warm-up calls per contender run one
    contender after the other, the first row of a run read 0.81x between identical kernels in
    two runs and 0.97-1.00x afterwards. The last warm-up call measures each call's cost.
    A repetition repeats a call until it lasts ``min_rep_s`` (a streaming step takes
    microseconds, below the clock's resolution for one call) and reports the mean. Without
    ``reps``, as many repetitions as fit ``budget_s`` seconds per contender, within
    ``[min_reps, max_reps]``. Repetitions interleave the calls, rotating which goes first.
    """
    cost = [0.0] * len(calls)
    spent = [0.0] * len(calls)
    for round_ in range(4 * warmup):
        if round_ >= warmup and min(spent) >= warmup_s:
            break
        for i, call in enumerate(calls):
            cost[i] = _timed(call, 1, sync)
            spent[i] += cost[i]
        if max(cost) > 1.0:
            break
    inner = [max(1, math.ceil(min_rep_s / c)) if c > 0 else 1 for c in cost]
    if reps is None:
        slowest = max(c * k for c, k in zip(cost, inner))
        reps = min_reps if slowest == 0 else round(budget_s / slowest)
        reps = max(min_reps, min(max_reps, reps))
    samples: list[list[float]] = [[] for _ in calls]
    collecting = gc.isenabled()
    gc.collect()
    gc.disable()  # a collection inside one contender's repetition would be charged to it
    try:
        for r in range(reps):
            for j in range(len(calls)):
                i = (j + r) % len(calls)
                samples[i].append(_timed(calls[i], inner[i], sync) / inner[i])
    finally:
        if collecting:
            gc.enable()
    return samples


def median_ms(samples: Sequence[float]) -> float:
    return 1e3 * statistics.median(samples)


# -----------------------------------------------------------------------------
# memory


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C++ profiler's own stderr lines (kineto start/stop notices) during a call."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (captured): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory_mb(calls: Sequence[Callable[[], object]], device: torch.device) -> list[float]:
    """Peak MiB that torch allocates during one call of each of ``calls``, above what was live before it.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the profiler's allocation events (every
    allocation and free of torch's CPU allocator, oneDNN's workspace included), summed in time
    order within each call's span; Python objects and allocator caching are not seen. One
    profiler session serves all the calls (starting one costs about a third of a second).
    """
    gc.collect()
    if device.type == "cuda":
        peaks = []
        for call in calls:
            torch.cuda.synchronize(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            call()
            torch.cuda.synchronize(device)
            peaks.append((torch.cuda.max_memory_allocated(device) - before) / 2**20)
        return peaks
    from torch.profiler import ProfilerActivity, profile, record_function

    names = [f"rnnkit.bench.call{i}" for i in range(len(calls))]
    with _quiet_stderr():
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            for name, call in zip(names, calls):
                with record_function(name):
                    call()
        events = prof.profiler.kineto_results.events()
    spans = {e.name(): (e.start_ns(), e.start_ns() + e.duration_ns()) for e in events if e.name() in names}
    deltas = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    peaks = []
    for name in names:
        begin, end = spans[name]
        current = peak = 0
        for when, nbytes in deltas:
            if begin <= when <= end:
                current += nbytes
                peak = max(peak, current)
        peaks.append(peak / 2**20)
    return peaks


# -----------------------------------------------------------------------------
# the machine


@dataclass(frozen=True)
class Machine:
    """Where and when a benchmark ran, and the matmul rates its rows are a percentage of."""

    device: str
    name: str  # CPU model or GPU name
    torch_version: str
    threads: int
    bf16: bool  # native bf16 (CPU: avx512_bf16 / amx_bf16; CUDA: is_bf16_supported)
    peak_fp32: float  # GFLOP/s of the fastest fp32 matmul kernel tried
    peak_fp32_kernel: str
    peak_fp32_all: dict  # kernel -> GFLOP/s
    peak_bf16: float  # GFLOP/s of a bf16 matmul, 0.0 without native bf16
    matmul_size: int
    date: str
    load_average: tuple[float, float, float]
    load_average_end: tuple[float, float, float] | None = None


def _cpu_flags() -> set[str] | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def bf16_supported(device: torch.device) -> bool:
    """Whether the hardware computes bf16 natively (not emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    flags = _cpu_flags()
    if flags is not None:
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _matmul_rate(call: Callable[[], object], n: int, sync: Callable[[], None]) -> float:
    (samples,) = time_interleaved([call], warmup=2, reps=5, min_rep_s=0.0, sync=sync)
    return 2 * n**3 / statistics.median(samples) / 1e9


def load_average() -> tuple[float, float, float]:
    try:
        return tuple(round(v, 2) for v in os.getloadavg())  # type: ignore[return-value]
    except OSError:
        return (math.nan, math.nan, math.nan)


def measure_machine(device: torch.device | str = "cpu", *, matmul_size: int | None = None) -> Machine:
    """Describe the machine and time an ``n^3`` matmul in fp32 (and bf16 where native)."""
    device = torch.device(device)
    n = matmul_size or MATMUL_SIZE
    load = load_average()
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    rates = {"torch.mm": _matmul_rate(lambda: torch.mm(a, b), n, sync)}
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        try:  # oneDNN's own sgemm; MKL's torch.mm takes a slower path on some AMD CPUs
            a_dnn, b_dnn = a.to_mkldnn(), b.t().contiguous().to_mkldnn()
            rates["oneDNN linear"] = _matmul_rate(lambda: torch._C._nn.mkldnn_linear(a_dnn, b_dnn), n, sync)
        except (RuntimeError, AttributeError):
            pass
    kernel = max(rates, key=rates.get)
    bf16 = bf16_supported(device)
    peak_bf16 = 0.0
    if bf16:
        a16, b16 = a.bfloat16(), b.bfloat16()
        peak_bf16 = _matmul_rate(lambda: torch.mm(a16, b16), n, sync)
    return Machine(
        device=str(device),
        name=torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        torch_version=torch.__version__,
        threads=torch.get_num_threads(),
        bf16=bf16,
        peak_fp32=rates[kernel],
        peak_fp32_kernel=kernel,
        peak_fp32_all=rates,
        peak_bf16=peak_bf16,
        matmul_size=n,
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        load_average=load,
    )


def settle_machine(start: Machine, end: Machine) -> Machine:
    """``start`` with the better of two matmul measurements and the load average at the end."""
    rates = {k: max(v, end.peak_fp32_all.get(k, 0.0)) for k, v in start.peak_fp32_all.items()}
    kernel = max(rates, key=rates.get)
    return dataclasses.replace(
        start,
        peak_fp32=rates[kernel],
        peak_fp32_kernel=kernel,
        peak_fp32_all=rates,
        peak_bf16=max(start.peak_bf16, end.peak_bf16),
        load_average_end=end.load_average,
    )
