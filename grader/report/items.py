"""Item analysis of a class's results: which tests separate strong students from weak ones, how each
exercise went.

For every test cell of a notebook: its pass rate, and its *discrimination*, the corrected item-total
correlation: the Pearson correlation, over the class, between passing that cell (1 or 0) and the
student's score on the rest of the notebook (every other test cell's points). A good test is passed
more often by students who do well elsewhere (a clearly positive value); a value near zero or below
means the test does not follow the rest of the notebook: a broken test, an unclear spec, or a test that
checks something no other test does. Such cells are flagged for a person to read.

Only notebooks that ran count (rows with per-cell results), and not those whose score was voided for
cheating. Discrimination is computed from `MIN_STUDENTS` such notebooks on: the standard error of a
correlation near zero is about 1/sqrt(n - 1), 0.33 at 10 students, so below that even its sign means
little, and the report says so instead of showing a number.

Everything here is pure: rows in, dataclasses out.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field

from grader.results import Row

MIN_STUDENTS = 10
LOW = 0.2  # below this a cell is flagged as low; below 0 as negative


@dataclass(frozen=True)
class ItemStats:
    """One test cell across the class."""

    grade_id: str
    exercise: str
    hidden: bool
    points: float
    students: int  # notebooks that ran and count
    passed: int
    discrimination: float | None  # None when not computed (see `note`)
    flag: str = ""  # "negative", "low" or ""
    note: str = ""  # why there is no discrimination, when there is none

    @property
    def pass_rate(self) -> float:
        return self.passed / self.students if self.students else 0.0


@dataclass(frozen=True)
class ExerciseStats:
    """One exercise's points across the class."""

    exercise: str
    points: float  # possible
    students: int
    mean: float
    median: float
    distribution: dict[float, int]  # points earned -> how many students, every value from 0 on the way


@dataclass(frozen=True)
class NotebookItems:
    """Item analysis of one notebook (`assignment/notebook`)."""

    notebook: str
    students: int
    items: list[ItemStats] = field(default_factory=list)  # notebook order
    exercises: list[ExerciseStats] = field(default_factory=list)
    absent: str = ""  # why discrimination is not shown for this notebook, when it is not

    @property
    def flagged(self) -> list[ItemStats]:
        return [i for i in self.items if i.flag]


def voided(row: Row) -> bool:
    """A tampered notebook whose score was set to 0 although tests passed (cheating was detected)."""
    return row.status == "tampered" and row.score == 0 and any(c.score > 0 for c in row.cells)


def counted(rows: list[Row]) -> list[Row]:
    """The rows item analysis uses: notebooks that ran (they have per-cell results), not voided."""
    return [r for r in rows if r.cells and not voided(r)]


def correlation(xs: list[float], ys: list[float]) -> float | None:
    """Pearson's r of two equally long lists; None when either does not vary (r is undefined)."""
    n = len(xs)
    if n < 2 or n != len(ys):
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 1e-12 or syy <= 1e-12:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def flag_of(r: float | None) -> str:
    if r is None:
        return ""
    return "negative" if r < 0 else "low" if r < LOW else ""


def item_stats(rows: list[Row], min_students: int = MIN_STUDENTS) -> list[ItemStats]:
    """Pass rate and discrimination of every test cell of one notebook's `rows` (already `counted`)."""
    if not rows:
        return []
    order = list(dict.fromkeys(c.grade_id for r in rows for c in r.cells))
    totals = [sum(c.score for c in r.cells) for r in rows]
    found = []
    for gid in order:
        pairs = [(c, total) for r, total in zip(rows, totals) for c in r.cells if c.grade_id == gid]
        first = pairs[0][0]
        passes = [1.0 if c.score >= c.max_score else 0.0 for c, _ in pairs]
        rest = [total - c.score for c, total in pairs]
        n, passed = len(pairs), int(sum(passes))
        r, note = None, ""
        if n < min_students:
            note = f"{n} students: discrimination needs {min_students}"
        elif passed in (0, n):
            note = "every student passed" if passed else "no student passed"
        else:
            r = correlation(passes, rest)
            if r is None:
                note = "the rest of the notebook scored the same for everyone"
        found.append(ItemStats(gid, first.exercise, first.hidden, first.max_score, n, passed, r, flag_of(r), note))
    return found


def exercise_stats(rows: list[Row]) -> list[ExerciseStats]:
    """Mean, median and distribution of the points of each exercise of one notebook's `rows`."""
    if not rows:
        return []
    found = []
    for exercise in dict.fromkeys(c.exercise for r in rows for c in r.cells):
        points = max(sum(c.max_score for c in r.cells if c.exercise == exercise) for r in rows)
        earned = [sum(c.score for c in r.cells if c.exercise == exercise) for r in rows]
        counts = Counter(earned)
        steps = [float(x) for x in range(int(points) + 1)] if float(points).is_integer() else []
        distribution = {x: counts.get(x, 0) for x in sorted(set(steps) | set(counts))}
        found.append(ExerciseStats(exercise, points, len(earned), statistics.fmean(earned),
                                   statistics.median(earned), distribution))
    return found


def analyse(rows: list[Row], min_students: int = MIN_STUDENTS) -> list[NotebookItems]:
    """Item analysis of every notebook in `rows`, in the order the notebooks first appear."""
    keys = list(dict.fromkeys(f"{r.assignment}/{r.notebook}" for r in rows))
    found = []
    for key in keys:
        mine = counted([r for r in rows if f"{r.assignment}/{r.notebook}" == key])
        absent = ""
        if len(mine) < min_students:
            absent = (f"Discrimination is not shown: {len(mine)} notebook{'s' if len(mine) != 1 else ''} ran "
                      f"(voided ones not counted), and it needs at least {min_students}; with fewer, one "
                      f"student changes it too much to mean anything.")
        found.append(NotebookItems(key, len(mine), item_stats(mine, min_students), exercise_stats(mine), absent))
    return found
