"""Rows of results, the terminal table and the JSON file."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._measure import Machine

FLOP_CONVENTION = (
    "forward = 2*G*H*(I+H)*B*T per layer (G = 1 Elman, 3 GRU, 4 LSTM; minGRU: 2*2*H*I*B*T, no"
    " recurrent matmul); training = 3 x forward. 'GF/s' counts the input projection, 'GF/s rec'"
    " leaves it out (DeepBench's convention); '%peak' is GF/s over the fp32 matmul peak"
)
SPEED_CONVENTION = (
    "speed = reference ms / rnnkit ms (> 1: rnnkit is faster); ms = median over repetitions"
    " after warm-up, the three contenders interleaved"
)
MEMORY_CONVENTION = (
    "MB = peak MiB torch allocates during one call above what was live before it (CPU: profiler"
    " allocation events; CUDA: max_memory_allocated)"
)


@dataclass(frozen=True)
class Row:
    """One case in one dtype: rnnkit's time and rates, and its two references' times.

    ``vs_torch`` and ``vs_loop`` are reference ms / rnnkit ms: above 1 rnnkit is faster.
    Memory fields are NaN when memory was not measured.
    """

    config: str
    case: str
    kind: str
    mode: str
    dtype: str
    batch: int
    input_size: int
    hidden_size: int
    steps: int
    layers: int
    path: str
    ms: float
    gflops: float
    gflops_recurrent: float
    pct_peak: float
    mem_mb: float
    torch_ref: str
    torch_ms: float
    torch_mem_mb: float
    vs_torch: float
    loop_ref: str
    loop_ms: float
    loop_mem_mb: float
    vs_loop: float
    reps: int
    ours: str
    # fastest repetition of each contender (JSON only): on a busy machine interference only adds
    # time, so ratios of minima are a second estimate beside the medians'
    ms_min: float
    torch_ms_min: float
    loop_ms_min: float
    error: str = ""  # why the row has no numbers (a contender raised); empty when it ran


def rescale(rows: Sequence[Row], machine: Machine) -> list[Row]:
    """The rows with ``pct_peak`` recomputed against ``machine``'s peak."""
    return [dataclasses.replace(r, pct_peak=100.0 * r.gflops / machine.peak_fp32) for r in rows]


def _num(value: float) -> str:
    """Three significant digits, no exponent for the ranges a benchmark sees."""
    if not math.isfinite(value):
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def header(machine: Machine) -> list[str]:
    peaks = ", ".join(f"{k} {v:.0f}" for k, v in machine.peak_fp32_all.items())
    bf16 = f"; bf16 {machine.peak_bf16:.0f} GFLOP/s" if machine.bf16 else "; no native bf16"
    load = f"load average {machine.load_average[0]:.2f} at start"
    if machine.load_average_end is not None:
        load += f", {machine.load_average_end[0]:.2f} at end"
    lines = [
        f"rnnkit bench, {machine.date}: torch {machine.torch_version}, {machine.device}"
        f" ({machine.name}), {machine.threads} threads, {load}",
        f"fp32 matmul peak ({machine.matmul_size}^3{', best of start and end' if machine.load_average_end else ''}):"
        f" {machine.peak_fp32:.0f} GFLOP/s [{peaks}]{bf16}",
        "FLOPs: " + FLOP_CONVENTION,
        SPEED_CONVENTION,
        MEMORY_CONVENTION,
    ]
    if busy(machine):
        lines.append(
            f"WARNING: the machine was busy (load average {max(_loads(machine)):.1f} on {os.cpu_count()} cores):"
            " absolute times and %peak are unreliable; only same-row ratios mean something, and"
            " --threads 1 keeps them steadier"
        )
    return lines


def _loads(machine: Machine) -> list[float]:
    loads = [machine.load_average[0]]
    if machine.load_average_end is not None:
        loads.append(machine.load_average_end[0])
    return [v for v in loads if math.isfinite(v)]


def busy(machine: Machine) -> bool:
    """Whether other processes probably competed for the cores our threads run on.

    The load average at the end counts our own threads too, so they are taken off it.
    """
    if machine.device != "cpu":
        return False
    others = [machine.load_average[0]]
    if machine.load_average_end is not None:
        others.append(machine.load_average_end[0] - machine.threads)
    spare = max(0.5, (os.cpu_count() or 1) - machine.threads)
    return any(load > spare + 0.5 for load in others if math.isfinite(load))


COLUMNS = (
    ("cfg", "config"), ("case", "case"), ("mode", "mode"), ("dtype", "dtype"), ("path", "path"),
    ("ms", "ms"), ("GF/s", "gflops"), ("GF/s rec", "gflops_recurrent"), ("%peak", "pct_peak"),
    ("MB", "mem_mb"), ("torch.nn ms", "torch_ms"), ("speed vs torch", "vs_torch"), ("torch MB", "torch_mem_mb"),
    ("loop ms", "loop_ms"), ("speed vs loop", "vs_loop"), ("loop MB", "loop_mem_mb"),
)  # fmt: skip


TITLES = [title for title, _ in COLUMNS]


def _cells(row: Row) -> list[str]:
    line = []
    for _, field in COLUMNS:
        value = getattr(row, field)
        if field.startswith("vs_"):
            line.append(f"{value:.2f}x" if math.isfinite(value) else "-")
        elif isinstance(value, float):
            line.append(_num(value))
        else:
            line.append(str(value))
    return line


def _aligned(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) if i < 5 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def _markdown_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _markdown_rule() -> str:
    return "|" + "|".join("---" if i < 5 else "---:" for i in range(len(TITLES))) + "|"


def _footer(rows: Sequence[Row]) -> list[str]:
    refs = {(r.config, r.ours, r.torch_ref, r.loop_ref) for r in rows if not r.error}
    refs = sorted(refs, key=lambda r: _config_key(r[0]))
    lines = ["", "contenders (rnnkit | torch.nn reference | loop reference):"]
    lines += [f"  {cfg:>3}: {ours} | {torch_ref} | {loop_ref}" for cfg, ours, torch_ref, loop_ref in refs]
    failed = [r for r in rows if r.error]
    if failed:
        lines += ["", "rows that failed:"]
        lines += [f"  {r.config:>3} {r.case} {r.mode} {r.dtype}: {r.error}" for r in failed]
    return lines


def format_table(rows: Sequence[Row], machine: Machine | None = None, *, markdown: bool = False) -> str:
    """The rows as an aligned text table (or a Markdown one), under the machine's header."""
    cells = [_cells(row) for row in rows]
    lines = [] if machine is None else header(machine)
    if markdown:
        lines = [f"{line}  " for line in lines] + [""] if lines else []
        lines += [_markdown_line(TITLES), _markdown_rule()]
        lines += [_markdown_line(line) for line in cells]
    else:
        widths = [max(len(t), *(len(line[i]) for line in cells)) if cells else len(t) for i, t in enumerate(TITLES)]
        lines.append(_aligned(TITLES, widths))
        lines += [_aligned(line, widths) for line in cells]
        lines += _footer(rows)
    return "\n".join(lines)


class TableStream:
    """The table written a row at a time, each as it is measured (flushed): the machine's header
    and the column titles by :meth:`start`, a row by :meth:`add`, and by :meth:`finish` what
    only the end knows (the contenders, failed rows, the load and matmul peak at the end).

    Column widths are fixed up front, from the ``cases`` to come (:class:`Case`); ``%peak`` is
    against the peak measured at the start (the JSON's, against the better of start and end).
    """

    def __init__(self, cases: Sequence, stream, *, markdown: bool = False) -> None:
        self.stream, self.markdown = stream, markdown
        self.widths = [max(len(t), 6) for t in TITLES]
        self.widths[0] = max([len("cfg"), *(len(c.config or "-") for c in cases)])
        self.widths[1] = max([len("case"), *(len(c.label) for c in cases)])
        self.widths[4] = max(len("path"), 8)

    def _write(self, lines: Sequence[str]) -> None:
        self.stream.write("".join(f"{line}\n" for line in lines))
        self.stream.flush()

    def start(self, machine: Machine) -> None:
        lines = header(machine)
        if self.markdown:
            self._write([f"{line}  " for line in lines] + ["", _markdown_line(TITLES), _markdown_rule()])
        else:
            self._write([*lines, _aligned(TITLES, self.widths)])

    def add(self, row: Row) -> None:
        cells = _cells(row)
        self._write([_markdown_line(cells) if self.markdown else _aligned(cells, self.widths)])

    def finish(self, rows: Sequence[Row], start: Machine, settled: Machine, *, not_measured: int = 0) -> None:
        lines = [] if self.markdown else _footer(rows)
        if not_measured:
            lines += ["", f"{not_measured} case(s) not measured: the time budget was spent (the machine is loaded);"
                          " a larger --time-budget, or --configs, measures them"]  # fmt: skip
        end = settled.load_average_end[0] if settled.load_average_end else math.nan
        lines += ["", f"load average {end:.2f} at the end; fp32 matmul peak {settled.peak_fp32:.0f} GFLOP/s, best of"
                      f" start and end ({start.peak_fp32:.0f} at the start, which %peak above is against)"]  # fmt: skip
        if busy(settled) and not busy(start):
            lines.append("WARNING: the machine was busy by the end: only same-row ratios mean something")
        self._write(lines)


def _config_key(config: str) -> tuple:
    return (0, int(config)) if config.isdigit() else (1, config)


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def to_json(rows: Sequence[Row], machine: Machine, *, command: str | None = None) -> dict:
    """Everything needed to read the rows later: machine, conventions, command, rows."""
    return _finite_or_none({
        "command": command,
        "machine": dataclasses.asdict(machine),
        "conventions": {"flops": FLOP_CONVENTION, "speed": SPEED_CONVENTION, "memory": MEMORY_CONVENTION},
        "rows": [dataclasses.asdict(row) for row in rows],
    })  # fmt: skip


def write_json(path: str | Path, rows: Sequence[Row], machine: Machine, *, command: str | None = None) -> None:
    text = json.dumps(to_json(rows, machine, command=command), indent=1, allow_nan=False)
    Path(path).write_text(text + "\n")
