"""Progress: a live bar on a terminal, plain log lines otherwise, nothing with ``quiet``."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
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
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.total = total
        self.log_every = log_every
        self.unit = unit
        self.started = time.perf_counter()
        self.first_step = initial
        self.items = 0
        self.bar = None
        if not quiet and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, file=self.stream, dynamic_ncols=True, unit="step")

    def update(self, step: int, *, loss: float, items: int, lr: float, epoch: int) -> None:
        self.items += items
        if self.quiet:
            return
        rate = self.items / max(time.perf_counter() - self.started, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix_str(f"epoch {epoch + 1} loss {loss:.4f} {rate:,.0f} {self.unit}/s", refresh=False)
            self.bar.update(step - self.bar.n)
        elif step % self.log_every == 0:
            line = f"epoch {epoch + 1} step {step}"
            if self.total:
                done = (step - self.first_step) / max(time.perf_counter() - self.started, 1e-9)
                eta = (self.total - step) / done if done > 0 else 0.0
                line += f"/{self.total}"
            line += f"  loss {loss:.4f}  lr {lr:.2e}  {rate:,.0f} {self.unit}/s"
            if self.total:
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
