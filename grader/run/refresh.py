"""`python -m grader refresh OUT`: bring OUT's outputs up to date with what it holds, without grading.

After an override (OUT/overrides.csv) or a late policy changes, grades.csv, the grade block of every
feedback page and the class report are rebuilt from the rows as graded (lms/grades.py); nothing is run
again and no page is rendered again beyond its grade block. `autograde` ends the same way, and `export`
does it for grades.csv and the pages before it writes the LMS's file.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from grader import results
from grader.errors import GraderError
from grader.lms import manifest
from grader.lms.grades import Grades, bring_up_to_date, class_grades
from grader.report import page as report_page
from grader.report import record
from grader.results import Row


@dataclass
class Refreshed:
    """What a refresh rewrote."""

    grades: Grades
    pages: list[Path] = field(default_factory=list)  # feedback pages whose grade block changed
    report: Path | None = None


def limits_by_assignment(rows: list[Row]) -> dict[str, str]:
    """The time limits each assignment's rows were graded with, as the report's settings list them: one
    line per assignment, each set of limits with how many rows it graded."""
    found: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        if r.limits:
            found[r.assignment][r.limits] += 1
    return {f"time limits, {assignment}": "; ".join(f"{words} ({n} row{'s' if n != 1 else ''})"
                                                   for words, n in by.items())
            for assignment, by in sorted(found.items())}


def write_report(out: Path, grades: Grades) -> Path:
    """OUT/report.html from the class's grades and what OUT keeps for it (report/record.py)."""
    kept = record.load(out)
    unplaced = manifest.merge_unplaced(results.load_unplaced(out), manifest.read(out).unplaced)
    settings = {**kept.settings, **limits_by_assignment(grades.rows)}
    return report_page.write(out, grades.rows, unplaced, kept.warning, settings=settings, similarity=kept.similarity)


def refresh(out: Path) -> Refreshed:
    """grades.csv, the pages' grade blocks and report.html, as OUT's rows, overrides and policies say."""
    out = Path(out)
    if not results.results_dir(out).is_dir():
        raise GraderError(f"{out}: no graded rows; run `python -m grader autograde SUBMISSIONS --out {out}` first")
    grades = class_grades(out)
    pages = bring_up_to_date(out, grades)
    return Refreshed(grades, pages, write_report(out, grades))
