"""Running cases: build the contenders, time them side by side, turn the times into rows."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable

import torch

from .._validation import check_positive_int
from ._configs import Case, case_flops, select_cases
from ._contenders import build_contenders
from ._measure import Machine, measure_machine, median_ms, peak_memory_mb, time_interleaved
from ._report import Row

DTYPES = ("fp32", "bf16")


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``None``/``"auto"``: CUDA when available, else CPU; a named device must exist."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for, but torch sees no CUDA device")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {str(device)!r}")
    return device


def resolve_dtypes(dtypes: str | Iterable[str] | None, machine: Machine) -> list[str]:
    """``None``/``"all"``: fp32, and bf16 where the hardware has it; or a subset of fp32, bf16."""
    if dtypes is None or dtypes == "all":
        return ["fp32", "bf16"] if machine.bf16 else ["fp32"]
    chosen = [dtypes] if isinstance(dtypes, str) else list(dtypes)
    for dtype in chosen:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of 'fp32', 'bf16', 'all', got {dtype!r}")
    if "bf16" in chosen and not machine.bf16:
        raise ValueError(f"dtype 'bf16' was asked for, but {machine.name} has no native bf16")
    return chosen


def bench_case(
    case: Case,
    dtype: str,
    device: torch.device,
    machine: Machine,
    *,
    reps: int | None = None,
    warmup: int = 2,
    budget_s: float = 1.0,
    memory: bool = True,
) -> Row:
    """Time ``case`` in ``dtype``: rnnkit against its torch.nn and loop references, interleaved."""
    contenders = build_contenders(case, device, dtype)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    samples = time_interleaved(
        [c.call for c in contenders], warmup=warmup, reps=reps, budget_s=budget_s, sync=sync
    )
    ms = [median_ms(s) for s in samples]
    if memory:
        for contender in contenders:  # gradients from the timing would be freed inside the measured call
            for p in contender.module.parameters():
                p.grad = None
    mem = peak_memory_mb([c.call for c in contenders], device) if memory else [math.nan] * 3
    ours, reference, loop = contenders
    seconds = ms[0] / 1e3
    gflops = case_flops(case) / seconds / 1e9
    return Row(
        config=case.config or "-",
        case=case.label,
        kind=case.kind,
        mode=case.mode,
        dtype=dtype,
        batch=case.batch,
        input_size=case.input_size,
        hidden_size=case.hidden_size,
        steps=case.steps,
        layers=case.layers,
        path=ours.path,
        ms=ms[0],
        gflops=gflops,
        gflops_recurrent=case_flops(case, input_projection=False) / seconds / 1e9,
        pct_peak=100.0 * gflops / machine.peak_fp32,
        mem_mb=mem[0],
        torch_ref=reference.name,
        torch_ms=ms[1],
        torch_mem_mb=mem[1],
        vs_torch=ms[1] / ms[0],
        loop_ref=loop.name,
        loop_ms=ms[2],
        loop_mem_mb=mem[2],
        vs_loop=ms[2] / ms[0],
        reps=len(samples[0]),
        ours=ours.name,
        ms_min=1e3 * min(samples[0]),
        torch_ms_min=1e3 * min(samples[1]),
        loop_ms_min=1e3 * min(samples[2]),
    )


def failed_row(case: Case, dtype: str, error: str) -> Row:
    """A row without numbers (NaN, null in JSON) for a case whose contenders raised ``error``."""
    numbers = {f.name: math.nan for f in dataclasses.fields(Row) if f.type == "float"}
    return Row(
        **numbers,
        config=case.config or "-", case=case.label, kind=case.kind, mode=case.mode, dtype=dtype,
        batch=case.batch, input_size=case.input_size, hidden_size=case.hidden_size, steps=case.steps,
        layers=case.layers, path="error", torch_ref="", loop_ref="", ours="", reps=0, error=error,
    )  # fmt: skip


def run(
    configs: str | Iterable | None = None,
    *,
    quick: bool = False,
    dtypes: str | Iterable[str] | None = None,
    device: torch.device | str | None = None,
    reps: int | None = None,
    warmup: int = 2,
    budget_s: float = 1.0,
    memory: bool = True,
    machine: Machine | None = None,
    progress: Callable[[int, int, Row], None] | None = None,
    time_budget_s: float | None = None,
) -> list[Row]:
    """Benchmark ``configs`` and return one :class:`Row` per case and dtype.

    ``configs``: ids (``"1,2,6"``, ``["2", "3"]``; None for all), or Config/Case objects.
    ``quick``: each configuration's reduced ``--quick`` cases. ``dtypes``: ``"fp32"``,
    ``"bf16"``, or None for fp32 plus bf16 where the hardware has it (bf16 runs under autocast).
    ``reps``: timed repetitions per contender (default: as many as fit ``budget_s`` seconds,
    3 to 15). ``machine``: from :func:`measure_machine`, measured here when None.
    ``progress(done, total, row)`` is called after each row.

    ``time_budget_s`` sizes the run by time (``rnnkit bench --quick``): each case gets an equal
    share of what is left (``budget_s`` is then set from it), and one whose estimated cost exceeds
    its share is measured on fewer time steps (its row's label says how many); the estimate comes
    from the FLOP rate of the rows so far (:class:`TimeSizer`), so a loaded machine shrinks the
    later cases and an idle one leaves them as they are.

    >>> rows = run([Case("lstm", 8, 2, 3, "train")], reps=1, warmup=0, memory=False,
    ...            machine=measure_machine("cpu", matmul_size=64), dtypes="fp32")
    >>> rows[0].path, rows[0].vs_torch > 0
    ('fused', True)
    """
    device = resolve_device(device)
    cases = select_cases(configs, quick=quick)
    if reps is not None:
        check_positive_int("reps", reps)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    if machine is None:
        machine = measure_machine(device)
    chosen = resolve_dtypes(dtypes, machine)
    rows: list[Row] = []
    total = len(cases) * len(chosen)
    sizer = TimeSizer(time_budget_s, total, machine) if time_budget_s is not None else None
    for case in cases:
        for dtype in chosen:
            if sizer is not None and sizer.over():  # the budget is spent: the rest is not measured
                return rows
            measured, case_budget = (case, budget_s) if sizer is None else sizer.fit(case)
            try:
                row = bench_case(measured, dtype, device, machine, reps=reps, warmup=warmup, budget_s=case_budget,
                                 memory=memory)  # fmt: skip
            except RuntimeError as error:  # one failing contender should not lose the whole run
                row = failed_row(measured, dtype, f"{type(error).__name__}: {str(error).splitlines()[0]}")
            if sizer is not None:
                sizer.spent(measured, row)
            rows.append(row)
            if progress is not None:
                progress(len(rows), total, rows[-1])
    return rows


class TimeSizer:
    """Sizes the cases of a run to a time budget (see :func:`run`'s ``time_budget_s``).

    A case's wall time is about ``CALLS`` calls of its slowest contender (two warm-up calls and
    three repetitions of each of three contenders, and the memory pass), or the repetitions'
    own time budget where calls are cheap, plus a fixed ``OVERHEAD_S``. The slowest contender's
    seconds per call are estimated from the FLOP rate the rows so far achieved (before any, at
    ``GUESS_EFFICIENCY`` of the machine's matmul peak). A case is given the repetition budget its
    share of the time left allows, and is measured on fewer time steps (never under
    ``MIN_STEPS``) only when even that would not fit.
    """

    CALLS = 18
    GUESS_EFFICIENCY = 0.15
    OVERHEAD_S = 0.5  # building the contenders, warming them up, the profiler session
    MIN_STEPS = 10

    def __init__(self, budget_s: float, cases: int, machine: Machine) -> None:
        if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not budget_s > 0:
            raise ValueError(f"time_budget_s must be a positive number of seconds, got {budget_s!r}")
        self.deadline = time.perf_counter() + budget_s
        self.left = cases
        self.flops = 0.0
        self.seconds = 0.0
        self.guess_rate = machine.peak_fp32 * 1e9 * self.GUESS_EFFICIENCY

    def over(self) -> bool:
        """The budget is spent (on a machine loaded many times over, before every case ran)."""
        return time.perf_counter() >= self.deadline

    def rate(self) -> float:
        """FLOPs per second of the slowest contender of the rows so far."""
        return self.flops / self.seconds if self.seconds > 0 and self.flops > 0 else self.guess_rate

    def fit(self, case: Case) -> tuple[Case, float]:
        """``case`` (on fewer time steps if it would not fit its share of the time left) and the
        seconds each contender's timed repetitions may take."""
        share = max(self.deadline - time.perf_counter(), 0.0) / max(self.left, 1)
        self.left -= 1
        room = max(share - self.OVERHEAD_S, 0.0)
        reps_budget = max(min(room / 6, 1.0), 0.05)  # three contenders, half of the share
        if case.mode == "step" or case.steps <= self.MIN_STEPS:
            return case, reps_budget
        call = case_flops(case) / self.rate()  # seconds per call of the slowest contender
        if self.CALLS * call <= room:
            return case, reps_budget
        steps = max(self.MIN_STEPS, int(case.steps * room / (self.CALLS * call)))
        return (dataclasses.replace(case, steps=steps) if steps < case.steps else case), reps_budget

    def spent(self, case: Case, row: Row) -> None:
        """Learn from a measured row: its FLOPs per second of its slowest contender's call."""
        slowest = max(row.ms, row.torch_ms, row.loop_ms) / 1e3
        if case.mode != "step" and not row.error and math.isfinite(slowest) and slowest > 0:
            self.flops += case_flops(case)
            self.seconds += slowest
