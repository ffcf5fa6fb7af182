"""How every notebook of one run is graded: one object, from the command line to the kernel client.

autograde builds it once; the grading task hands it, whole, to nbgrader's Execute step (execution.py),
which gives each cell its time limit through nbclient's per-cell hook (`timeout_func`) and the bridge's
relay the same limit for the student's side (bridge/split.py). Nothing copies its fields on the way.

Time limits. By default each notebook's come from its reference solution, measured cell by cell in
grading mode when the course is prepared (run/autograde.py): a cell may take max(10 s, 10 x the
reference's time for it), the notebook max(60 s, 5 x the reference's total); once a cell calling an
exercise has run past its limit, every later cell calling that exercise gets max(2 s, 3 x the reference's
time): a function that never returns costs the notebook one full limit, not one per test. `--timeout`
(every cell) and `--notebook-timeout` override them.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

DEFAULT_TIMEOUT = 60  # seconds per cell when there is neither --timeout nor a measured reference
NOTEBOOK_TIMEOUT_CELLS = 5  # with --timeout, the notebook's default limit is this many times it
CELL_FLOOR, CELL_FACTOR = 10, 10  # a cell's default: max(CELL_FLOOR, CELL_FACTOR x the reference's time)
NOTEBOOK_FLOOR, NOTEBOOK_FACTOR = 60, 5  # the notebook's default: max(NOTEBOOK_FLOOR, NOTEBOOK_FACTOR x its total)
RETRY_FLOOR, RETRY_FACTOR = 2, 3  # after an exercise timed out: max(RETRY_FLOOR, RETRY_FACTOR x the reference's)


def calls(cell, exercises) -> set[str]:
    """The exercises a cell's code may call (or defines): each name it mentions as a whole word, not an attribute.

    A mention, not only a call: a test may hand the exercise to a helper (`changed_arguments(lstm_cell, ...)`)."""
    source = cell.get("source", "") if cell is not None else ""
    return {name for name in exercises if re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", source)}


@dataclass(frozen=True)
class Limits:
    """One notebook's time limits: given (`cell`, `notebook`) or from its reference's times (`reference`)."""

    reference: dict[str, float] = field(default_factory=dict)  # cell id -> the reference's seconds
    cell: int | None = None  # --timeout: every cell's limit
    notebook: int = 0  # --notebook-timeout; 0: the default

    def cell_seconds(self, cell_id: str | None, retimed: bool = False) -> int:
        """The limit of one cell (`retimed`: an exercise it calls has timed out earlier in the notebook)."""
        if self.cell is not None:
            return self.cell
        if not self.reference:
            return DEFAULT_TIMEOUT
        known = self.reference.get(cell_id or "")
        mine = known if known is not None else max(self.reference.values())  # a cell the student added
        if retimed:
            return math.ceil(max(RETRY_FLOOR, RETRY_FACTOR * mine))
        return math.ceil(max(CELL_FLOOR, CELL_FACTOR * mine))

    def notebook_seconds(self) -> int:
        """The whole notebook's limit (0: none)."""
        if self.notebook:
            return self.notebook
        if self.cell is not None or not self.reference:
            return 0
        return math.ceil(max(NOTEBOOK_FLOOR, NOTEBOOK_FACTOR * sum(self.reference.values())))

    def words(self) -> str:
        """The limits in one line, as the row records them and the report shows them."""
        whole = self.notebook_seconds()
        notebook = f", notebook {whole} s" if whole else ""
        if self.cell is not None or not self.reference:
            given = "--timeout" + (", --notebook-timeout" if self.notebook else "") if self.cell is not None else "default"
            return f"per cell {self.cell_seconds(None)} s{notebook} ({given})"
        own = sorted({self.cell_seconds(c) for c in self.reference})
        short = sorted({self.cell_seconds(c, True) for c in self.reference})
        span = lambda xs: f"{xs[0]}-{xs[-1]}" if xs[0] != xs[-1] else f"{xs[0]}"  # noqa: E731
        return (f"per cell {span(own)} s ({span(short)} s once an exercise it calls timed out){notebook} "
                f"(from the reference{', --notebook-timeout' if self.notebook else ''})")


@dataclass(frozen=True)
class Settings:
    """How every notebook of one run is graded."""

    timeout: int | None = None  # seconds per cell (--timeout); None: each cell's own, from the reference
    notebook_timeout: int = 0  # seconds for the whole notebook; 0: the default (none with a bare --timeout)
    sandbox: str = "bwrap"
    threads: int = 1
    sandbox_warning: str | None = None
    keep_scratch: bool = False
    reference_objects: dict = field(default_factory=dict)  # what the audited functions look like untouched
    split: bool = True  # test cells in a trusted kernel; False runs all in the student's (controls, bench)
    fork: bool = False  # student kernels forked from a warm template per worker (kernel/forked.resolve decides)
    kernel_start: str = ""  # how student kernels start, in words, for the report
    reference_times: dict = field(default_factory=dict)  # notebook key -> {cell id: the reference's seconds}

    def limits(self, notebook: str = "") -> Limits:
        """The time limits of one notebook (`notebook`: its key, `01_packed_sequences/packed_sequences`)."""
        return Limits(dict(self.reference_times.get(notebook, {})), self.timeout, self.notebook_timeout)

    def clock(self, notebook: str = "", exercises=()) -> Clock:
        """The time limits of one notebook, starting now; `exercises` are its exercises' names."""
        return Clock(self.limits(notebook), exercises)


class Clock:
    """One notebook's time as it runs: each cell gets its limit, or what the notebook's own limit leaves if that
    is less; an exercise that ran past a limit once gets the short limit in every later cell that calls it."""

    def __init__(self, limits: Limits, exercises=()):
        self.limits = limits
        self.notebook_seconds = limits.notebook_seconds()
        self.deadline = time.monotonic() + self.notebook_seconds if self.notebook_seconds else None
        self.exercises = tuple(exercises)
        self.timed_out: set[str] = set()  # exercises that ran past a limit
        self.own = self.given = limits.cell_seconds(None)  # the running cell's own limit, and what it was given

    def left(self) -> float | None:
        """Seconds the notebook's own limit leaves (None without one)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def out_of_time(self) -> bool:
        """True when the notebook's limit leaves less than a second: the next cell is not started."""
        left = self.left()
        return left is not None and left < 1

    def for_cell(self, cell=None) -> int:
        """The limit of a cell starting now, in whole seconds (nbclient's `timeout_func`: it asks once per cell)."""
        retimed = bool(self.timed_out & calls(cell, self.exercises))
        self.own = self.limits.cell_seconds(cell.get("id") if cell is not None else None, retimed)
        left = self.left()
        self.given = self.own if left is None else int(min(self.own, left))
        return self.given

    def ran_past(self, cell) -> None:
        """`cell` ran past its limit: the exercises it calls get the short limit from now on."""
        self.timed_out |= calls(cell, self.exercises)

    def words(self) -> str:
        """The running cell's limit, in words."""
        if self.given < self.own:
            return f"the {self.given} s the notebook's {self.notebook_seconds} s limit left it"
        return f"{self.own} s"
