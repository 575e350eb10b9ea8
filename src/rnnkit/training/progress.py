"""Progress: a live bar on a terminal, plain log lines otherwise, nothing with ``quiet``."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = round(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


class Progress:
    """Reports training steps: ``update`` after each step, ``message`` for a line of text.

    On a terminal a tqdm bar shows loss, throughput (``unit`` per second) and the ETA; when the
    output is a file or a pipe, one plain line every ``log_every`` steps carries the same figures.
    """

    def __init__(
        self,
        total: int | None,
        *,
        quiet: bool = False,
        log_every: int = 20,
        unit: str = "items",
        stream: TextIO | None = None,
        initial: int = 0,
        time_limit: float | None = None,
        elapsed: float = 0.0,
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.total = total
        self.log_every = log_every
        self.unit = unit
        self.started = time.perf_counter()
        self.first_step = initial
        self.items = 0
        # a time limit (seconds, counted from the run's start; ``elapsed`` already spent) caps the
        # steps that will run: the total shown is the smaller of the planned and the projected
        self.deadline = self.started + time_limit - elapsed if time_limit is not None else None
        self.bar = None
        if not quiet and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, file=self.stream, dynamic_ncols=True, unit="step")

    def _expected_total(self, step: int, steps_per_second: float) -> int | None:
        if self.deadline is None or steps_per_second <= 0:
            return self.total
        projected = step + int(steps_per_second * max(self.deadline - time.perf_counter(), 0.0))
        return min(self.total, projected) if self.total else projected

    def update(self, step: int, *, loss: float, items: int, lr: float, epoch: int) -> None:
        self.items += items
        if self.quiet:
            return
        seconds = max(time.perf_counter() - self.started, 1e-9)
        rate = self.items / seconds
        steps_per_second = (step - self.first_step) / seconds
        total = self._expected_total(step, steps_per_second)
        if self.bar is not None:
            if total is not None and total != self.bar.total and step - self.first_step >= 5:
                self.bar.total = total
            self.bar.set_postfix_str(f"epoch {epoch + 1} loss {loss:.4f} {rate:,.0f} {self.unit}/s", refresh=False)
            self.bar.update(step - self.bar.n)
        elif step % self.log_every == 0:
            line = f"epoch {epoch + 1} step {step}"
            if total:
                eta = (total - step) / steps_per_second if steps_per_second > 0 else 0.0
                line += f"/{total}"
            line += f"  loss {loss:.4f}  lr {lr:.2e}  {rate:,.0f} {self.unit}/s"
            if total:
                line += f"  eta {format_duration(eta)}"
            print(line, file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
