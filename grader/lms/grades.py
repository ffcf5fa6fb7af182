"""The class's grades: every row saved in OUT, with the instructor's overrides and what collect knew.

Built here, once each time they are needed, from the rows as graded (OUT/results): autograde writes
grades.csv and the report from them, and `export` totals them for an LMS. Nothing reads grades.csv
back to build on it, so an override is applied to a graded score exactly once, and an edit of
OUT/overrides.csv after grading reaches the next export as it reaches the next grades.csv.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader import results
from grader.lms import manifest
from grader.overrides import apply_overrides, read_overrides, unmatched_overrides
from grader.results import Row


@dataclass
class Grades:
    """The class's rows as the instructor sees them, and the overrides that named no row."""

    rows: list[Row]
    unmatched: list[str] = field(default_factory=list)


def class_grades(out: Path, collected: manifest.Collected) -> Grades:
    """The rows saved under OUT with OUT/overrides.csv applied, then annotated from the collect manifest."""
    overrides = read_overrides(out)
    rows = apply_overrides(results.load_all(out), overrides)
    return Grades(manifest.annotate(rows, collected), unmatched_overrides(rows, overrides))
