"""Instructor overrides: OUT/overrides.csv, applied to grades.csv, the report and every export.

The file has the columns `student, assignment, notebook, score, reason`; each line sets one
notebook's score (`notebook` may be left blank when the assignment has one notebook). It lives in OUT
beside the results, is never written by the grader, and is applied to the rows as graded each time the
class's grades are built from them (lms/grades.py), so it survives a regrade of that student and an
edit after grading reaches the next export. A line that names no graded row is reported, never dropped.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from grader.errors import LmsError
from grader.results import Row

OVERRIDES_NAME = "overrides.csv"
COLUMNS = ("student", "assignment", "notebook", "score", "reason")


@dataclass(frozen=True)
class Override:
    """One notebook's score set by the instructor, and why."""

    student: str
    assignment: str
    notebook: str
    score: float
    reason: str = ""

    def note(self) -> str:
        """What the row's detail says about it."""
        why = f": {self.reason}" if self.reason else ""
        return f"score set to {self.score:g} by the instructor{why}"


def overrides_path(out: Path) -> Path:
    return out / OVERRIDES_NAME


def read_overrides(out: Path) -> list[Override]:
    """OUT/overrides.csv, or nothing when there is none."""
    path = overrides_path(out)
    if not path.exists():
        return []
    return parse_overrides(path.read_text(encoding="utf-8-sig"), str(path))


def parse_overrides(text: str, source: str = OVERRIDES_NAME) -> list[Override]:
    reader = csv.DictReader(io.StringIO(text))
    header = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in ("student", "assignment", "score") if c not in header]
    if missing:
        raise LmsError(f"{source}: missing the column(s) {', '.join(missing)} "
                       f"(expected {','.join(COLUMNS)})")
    reader.fieldnames = header
    found = []
    for line, r in enumerate(reader, start=2):
        r = {k: (v or "").strip() for k, v in r.items() if k is not None}
        if not any(r.values()):
            continue
        try:
            score = float(r["score"])
        except ValueError:
            raise LmsError(f"{source}, line {line}: score {r['score']!r} is not a number") from None
        found.append(Override(r["student"], r["assignment"], r.get("notebook", ""), score, r.get("reason", "")))
    return found


def targets(rows: Sequence[Row], override: Override) -> list[int]:
    """Indices of the rows `override` applies to: its notebook, or the assignment's only notebook."""
    hits = [i for i, r in enumerate(rows) if r.student_id == override.student and r.assignment == override.assignment]
    if override.notebook:
        return [i for i in hits if rows[i].notebook == override.notebook]
    return hits if len(hits) == 1 else []


def apply_overrides(rows: Sequence[Row], overrides: list[Override]) -> list[Row]:
    """`rows` (as results.Row, read from OUT/results) with each override's score and a note in the detail;
    the others unchanged. Called once, on rows as graded, by the one place that builds the class's grades."""
    rows = list(rows)
    for override in overrides:
        for i in targets(rows, override):
            row = rows[i]
            rows[i] = dataclasses.replace(row, score=float(override.score), raw_score=row.graded_score,
                                          override=override.note(),
                                          detail="; ".join(filter(None, [override.note(), row.detail])))
    return rows


def unmatched_overrides(rows: Sequence[Row], overrides: list[Override]) -> list[str]:
    """The overrides that name no row, each as a sentence (for the terminal and the report)."""
    lines = []
    for o in overrides:
        if not targets(rows, o):
            what = f"{o.student}/{o.assignment}/{o.notebook}" if o.notebook else f"{o.student}/{o.assignment}"
            hint = "" if o.notebook else " (name the notebook: the assignment has several, or none was graded)"
            lines.append(f"{OVERRIDES_NAME}: {what} matches no graded row{hint}")
    return lines
