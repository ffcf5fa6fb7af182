"""How every notebook of one run is graded: one object, from the command line to the kernel client.

autograde builds it once; the grading task hands it, whole, to nbgrader's Execute step (execution.py),
which gives each cell its time limit through nbclient's per-cell hook (`timeout_func`) and the bridge's
relay the same limit for the student's side (bridge/split.py). Nothing copies its fields on the way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    """How every notebook of one run is graded."""

    timeout: int  # seconds per cell
    notebook_timeout: int = 0  # seconds for the whole notebook; 0: only the per-cell limit
    sandbox: str = "bwrap"
    threads: int = 1
    sandbox_warning: str | None = None
    keep_scratch: bool = False
    reference_objects: dict = field(default_factory=dict)  # what the audited functions look like untouched
    split: bool = True  # test cells in a trusted kernel; False runs all in the student's (controls, bench)
    fork: bool = False  # student kernels forked from a warm template per worker (kernel/forked.resolve decides)
    kernel_start: str = ""  # how student kernels start, in words, for the report

    def clock(self) -> Clock:
        """The time limits of one notebook, starting now."""
        return Clock(self.timeout, self.notebook_timeout)


class Clock:
    """One notebook's time as it runs: each cell gets the per-cell limit, or what the notebook's own limit
    leaves if that is less."""

    def __init__(self, cell_seconds: int, notebook_seconds: int = 0):
        self.cell_seconds, self.notebook_seconds = cell_seconds, notebook_seconds
        self.deadline = time.monotonic() + notebook_seconds if notebook_seconds else None
        self.given = cell_seconds  # the limit the running cell was given

    def left(self) -> float | None:
        """Seconds the notebook's own limit leaves (None without one)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def out_of_time(self) -> bool:
        """True when the notebook's limit leaves less than a second: the next cell is not started."""
        left = self.left()
        return left is not None and left < 1

    def for_cell(self, cell=None) -> int:
        """The limit of a cell starting now, in whole seconds (nbclient's `timeout_func`: it asks once per cell)."""
        left = self.left()
        self.given = self.cell_seconds if left is None else int(min(self.cell_seconds, left))
        return self.given

    def words(self) -> str:
        """The running cell's limit, in words."""
        if self.given < self.cell_seconds:
            return f"the {self.given} s the notebook's {self.notebook_seconds} s limit left it"
        return f"{self.cell_seconds} s"
