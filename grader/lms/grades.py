"""The class's grades: every row saved in OUT, with the manual scores, the instructor's overrides and what collect
knew.

Built here, once each time they are needed, from the rows as graded (OUT/results): first the scores people gave
written answers (read back from formgrader into OUT/manual_grades.csv, grader/manual/), then OUT/overrides.csv,
then the collect manifest. autograde writes grades.csv and the report from them, and `export` totals them for an
LMS. Nothing reads grades.csv back to build on it, so an override is applied to a graded score exactly once, and
an edit of OUT/overrides.csv (or a grade given in formgrader) after grading reaches the next export as it reaches
the next grades.csv.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader import results
from grader.lms import manifest
from grader.manual.course import harvest
from grader.manual.publish import refresh_pages
from grader.manual.scores import apply_marks
from grader.manual.store import read_marks
from grader.overrides import apply_overrides, read_overrides, targets, unmatched_overrides
from grader.results import Row


@dataclass
class Grades:
    """The class's rows as the instructor sees them, the overrides that named no row, and the rows an override set
    (student, assignment, notebook)."""

    rows: list[Row]
    unmatched: list[str] = field(default_factory=list)
    overridden: set[tuple[str, str, str]] = field(default_factory=set)


def class_grades(out: Path, collected: manifest.Collected) -> Grades:
    """The rows saved under OUT with the manual scores and OUT/overrides.csv applied, then annotated from the
    collect manifest."""
    harvest(out)
    rows = apply_marks(results.load_all(out), read_marks(out))
    overrides = read_overrides(out)
    set_by = {(rows[i].student_id, rows[i].assignment, rows[i].notebook) for o in overrides for i in targets(rows, o)}
    rows = apply_overrides(rows, overrides)
    return Grades(manifest.annotate(rows, collected), unmatched_overrides(rows, overrides), set_by)


def write_grades(out: Path, rows: list[Row]) -> Path:
    """OUT/grades.csv from the class's rows, and each page's written answers as they now stand; the CSV's path."""
    refresh_pages(out, rows)
    return results.write_csv(out, rows)
