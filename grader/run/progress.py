"""Progress of a long run: a bar with counts and ETA on a terminal, one line per item otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Reports finished items out of a known total."""

    def __init__(self, total: int, stream: TextIO | None = None):
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.tty = self.stream.isatty()
        self.note = ""  # what the run says about itself (e.g. "3 workers"), shown with each line

    def _eta(self) -> str:
        if not self.done:
            return "--:--"
        left = (time.monotonic() - self.start) / self.done * (self.total - self.done)
        return f"{int(left // 60):02d}:{int(left % 60):02d}"

    def advance(self, label: str) -> None:
        """One more item finished; `label` says which and how it went."""
        self.done += 1
        label = f"{label} ({self.note})" if self.note else label
        if self.tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} ETA {self._eta()}  {label[:60]:<60}")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {label}\n")
        self.stream.flush()
