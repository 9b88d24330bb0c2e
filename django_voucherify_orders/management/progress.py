"""Progress of a long command: a tqdm bar on a terminal, plain lines otherwise (logs,
cron, CI), on the command's stderr."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand

__all__ = ["Progress"]


class Progress:
    def __init__(self, command: BaseCommand, desc: str, *, bar: bool) -> None:
        self.command = command
        self.desc = desc
        self.bar_wanted = bar and sys.stderr.isatty()
        self.bar: Any = None
        self.total = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, total: int) -> None:
        """The number of orders to go through; shows the bar (on a terminal) at once."""
        self.total = total
        if self.bar_wanted and self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="order", desc=self.desc)

    def show(self, done: int, line: str, **postfix: Any) -> None:
        """``done`` orders so far: the bar moves on, or ``line`` is written."""
        if self.bar is None:
            self.command.stderr.write(line)
            return
        self.bar.update(done - self.bar.n)
        if postfix:
            self.bar.set_postfix(**postfix)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
