"""Grading results: one JSON per row under OUT/results, from which grades.csv and the report are built.

Keeping every row as its own file makes a partial regrade (`--student`, `--assignment`) a matter of
replacing some files; the CSV and the report are always rebuilt from all of them.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATUSES = {
    "graded": "ran to the end, every cell within its time limit",
    "timeout": "a cell hit the per-cell time limit and was interrupted; the tests that passed count",
    "kernel_died": "the kernel died (crash, os._exit, out of memory); the tests that passed before count",
    "output_limit": "a cell printed more than the output limit; its output was cut, the cell interrupted",
    "invalid_notebook": "not JSON, not a valid notebook, or its grade cells unusable; score 0",
    "missing": "the student submitted this assignment, but not this notebook; score 0",
    "not_submitted": "the student has no folder for this assignment; score 0",
    "tampered": "grade or test cells deleted, duplicated or renamed, or cheating detected",
    "error": "the grader itself failed on this notebook (a bug: see the detail); score 0",
}
CSV_COLUMNS = ["student_id", "assignment", "notebook", "score", "max_score", "status", "detail", "late", "submitted_at"]


@dataclass
class CellResult:
    """One test cell's outcome."""

    grade_id: str
    exercise: str
    score: float
    max_score: float
    hidden: bool


@dataclass
class Row:
    """One student x notebook result."""

    student_id: str
    assignment: str
    notebook: str
    score: float
    max_score: float
    status: str
    detail: str = ""
    cells: list[CellResult] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    late: str = ""  # from the collect manifest: "true", "false", or "" when the LMS did not say
    submitted_at: str = ""  # ISO 8601, from the collect manifest

    def csv_row(self) -> dict[str, str]:
        values = asdict(self)
        values["score"] = f"{self.score:g}"
        values["max_score"] = f"{self.max_score:g}"
        return {k: values[k] for k in CSV_COLUMNS}


def results_dir(out: Path) -> Path:
    return out / "results"


def row_path(out: Path, student: str, assignment: str, notebook: str) -> Path:
    return results_dir(out) / student / assignment / f"{notebook}.json"


def feedback_path(out: Path, student: str, assignment: str, notebook: str) -> Path:
    return out / "feedback" / student / assignment / f"{notebook}.html"


def save(out: Path, row: Row) -> None:
    path = row_path(out, row.student_id, row.assignment, row.notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(row), indent=1))


def load_all(out: Path) -> list[Row]:
    """Every row saved under OUT, sorted by student, assignment, notebook."""
    rows = []
    for path in results_dir(out).glob("*/*/*.json"):
        data = json.loads(path.read_text())
        data["cells"] = [CellResult(**c) for c in data.get("cells", [])]
        rows.append(Row(**data))
    return sorted(rows, key=lambda r: (r.student_id, r.assignment, r.notebook))


def save_unplaced(out: Path, unplaced: dict[str, list[str]], students: list[str]) -> None:
    """Record each student's files that match no notebook (and clear it for those with none)."""
    for student in students:
        path = results_dir(out) / student / "unplaced.json"
        if unplaced.get(student):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(unplaced[student]))
        elif path.exists():
            path.unlink()


def load_unplaced(out: Path) -> dict[str, list[str]]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(results_dir(out).glob("*/unplaced.json"))}


def clear(out: Path, students: list[str] | None, assignments: list[str] | None) -> None:
    """Remove the results and feedback a new run will replace: all of them, or those in its scope."""
    for base in (results_dir(out), out / "feedback"):
        if not base.exists():
            continue
        if students is None and assignments is None:
            shutil.rmtree(base)
            continue
        for student_dir in base.iterdir():
            if students is not None and student_dir.name not in students:
                continue
            for target in student_dir.iterdir():
                if assignments is None or target.name in assignments:
                    shutil.rmtree(target) if target.is_dir() else target.unlink()
            if not any(student_dir.iterdir()):
                student_dir.rmdir()


def write_csv(out: Path, rows: list[Row]) -> Path:
    path = out / "grades.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row.csv_row())
    return path
