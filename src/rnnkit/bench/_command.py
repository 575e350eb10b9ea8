"""``rnnkit bench``: the command (:data:`COMMAND`), its arguments and its body."""

from __future__ import annotations

import argparse
import shlex
import sys

import torch

from ..apps.commands import Command
from ._configs import CONFIGS, select_cases
from ._measure import measure_machine, settle_machine
from ._report import TableStream, rescale, write_json
from ._run import resolve_device, run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``rnnkit bench`` options; the configurations are listed in the description."""
    listing = "\n".join(
        f"  {c.id:>2}{'*' if c.quick else ' '} {c.title}" for c in CONFIGS.values()
    )
    parser.description += (
        f"\n\nconfigurations (* has a --quick variant):\n{listing}\n\n"
        "Each row times rnnkit, the torch.nn module with the same weights, and rnnkit's plain\n"
        "autograd step loop, interleaved; speed = reference ms / rnnkit ms (> 1: rnnkit faster)."
    )
    parser.add_argument("--configs", metavar="IDS", default=None,
                        help="comma-separated configuration ids (default: all, or all with a --quick variant)")
    parser.add_argument("--quick", action="store_true",
                        help=f"the reduced subset in fp32, sized to about {QUICK_BUDGET_S:.0f} s (under two minutes) even"
                             " on a loaded 2-core CPU: a case is measured on fewer time steps when it would not fit")
    parser.add_argument("--time-budget", metavar="SECONDS", type=float, default=None,
                        help=f"size the run to about SECONDS (default: {QUICK_BUDGET_S:.0f} with --quick, else none)")
    parser.add_argument("--dtype", choices=["fp32", "bf16", "all"], default=None,
                        help="fp32, bf16 (autocast) or both where the hardware has bf16 (default: all; fp32 with --quick)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own default, printed in the header)")
    parser.add_argument("--reps", type=int, default=None,
                        help="timed repetitions per contender (default: what fits about 1 s, 3 to 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per contender first (default: 2)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--json", metavar="FILE", help="also write the machine, conventions and rows as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--quiet", action="store_true", help="nothing on stderr (the rows still print as measured)")


QUICK_BUDGET_S = 90.0  # the measuring; the matmul peak and start-up come on top
QUICK_MATMUL_SIZE = 1024  # an eighth of the full peak's work: seconds, not tens of them, under load


def main(args: argparse.Namespace) -> int:
    """Run the benchmark the parsed ``args`` ask for, print the table, write ``--json``."""
    select_cases(args.configs, quick=args.quick)  # a bad id fails before the matmul peak is timed
    if args.reps is not None and args.reps < 1:
        raise ValueError(f"--reps must be a positive integer, got {args.reps}")
    if args.warmup < 0:
        raise ValueError(f"--warmup must be a non-negative integer, got {args.warmup}")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    budget = args.time_budget if args.time_budget is not None else (QUICK_BUDGET_S if args.quick else None)
    if budget is not None and not budget > 0:
        raise ValueError(f"--time-budget must be a positive number of seconds, got {budget}")
    device = resolve_device(args.device)
    matmul_size = QUICK_MATMUL_SIZE if args.quick else None
    if not args.quiet:
        print(f"timing the {device} matmul peak ...", file=sys.stderr, flush=True)
    start = measure_machine(device, matmul_size=matmul_size)
    # each row is printed as it is measured; the table's end is printed last
    cases = select_cases(args.configs, quick=args.quick)
    table = TableStream(cases, sys.stdout, markdown=args.markdown)
    table.start(start)
    rows = run(
        args.configs,
        quick=args.quick,
        dtypes=args.dtype or ("fp32" if args.quick else "all"),
        device=device,
        reps=args.reps,
        warmup=args.warmup,
        budget_s=0.5 if args.quick else 1.0,
        memory=not args.no_memory,
        machine=start,
        progress=lambda done, total, row: table.add(row),
        time_budget_s=budget,
    )
    # the peak again at the end: on a shared machine the first measurement may have been unlucky
    machine = settle_machine(start, measure_machine(device, matmul_size=matmul_size))
    per_case = len({row.dtype for row in rows}) or 1
    table.finish(rows, start, machine, not_measured=max(len(cases) * per_case - len(rows), 0))
    if args.json:
        write_json(args.json, rescale(rows, machine), machine, command=shlex.join(["rnnkit", *sys.argv[1:]]))
    return 1 if any(row.error for row in rows) else 0  # the table lists what failed


COMMAND = Command(
    help="time rnnkit's layers against torch.nn and a plain autograd loop, side by side",
    example="rnnkit bench --quick --json bench.json",
    add_arguments=add_arguments,
    run=main,
)
