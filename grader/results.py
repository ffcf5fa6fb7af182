"""Grading results: one JSON per row under OUT/results, from which grades.csv and the report are built.

Keeping every row as its own file makes a partial regrade (`--student`, `--assignment`) a matter of
replacing some files; the CSV and the report are always rebuilt from all of them. `Row` is the one
shape of a grade row, and this module is the one that reads and writes it, as JSON and as grades.csv.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

CSV_COLUMNS = ["student_id", "assignment", "notebook", "score", "max_score", "status", "manual_score", "to_grade",
               "detail", "late", "submitted_at"]


@dataclass
class CellResult:
    """One test cell's outcome."""

    grade_id: str
    exercise: str
    score: float
    max_score: float
    hidden: bool


@dataclass
class WrittenAnswer:
    """One written answer of a row: who wrote what (its hash), and what a person gave it, once they have."""

    grade_id: str
    question: str  # the question's title, as the notebook's heading gives it
    points: float
    answer_sha256: str = ""  # of the answer's text (course/written.answer_hash); "" when the cell is missing
    score: float | None = None  # None: still to grade
    comment: str = ""  # the grader's comment, for the student
    note: str = ""  # what the grader did on its own: "not answered", "changed since it was graded (...)"


@dataclass
class Row:
    """One student x notebook result.

    As graded (OUT/results), `score` counts the tests and `written` holds every written answer ungraded (or 0
    where it was left unanswered); the class's grades (lms/grades.py) put the manual scores in: `score` is then
    the tests plus `manual_score`, and `to_grade` the points of the answers nobody has graded yet.
    """

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
    traceback: str = ""  # the grader's own traceback, on an `error` row
    late: str = ""  # from the collect manifest: "true", "false", or "" when the LMS did not say
    submitted_at: str = ""  # ISO 8601, from the collect manifest
    written: list[WrittenAnswer] = field(default_factory=list)
    manual_score: float = 0.0  # the points people gave the written answers
    to_grade: float = 0.0  # the points of the written answers still to grade

    def csv_row(self) -> dict[str, str]:
        values = asdict(self)
        for number in ("score", "max_score", "manual_score", "to_grade"):
            values[number] = f"{getattr(self, number):g}"
        return {k: values[k] for k in CSV_COLUMNS}

    @classmethod
    def from_csv(cls, line: dict[str, str]) -> Row:
        """A row as grades.csv wrote it (columns it lacks are left empty)."""
        values = {k: line.get(k) or "" for k in CSV_COLUMNS}
        numbers = {k: float(values[k] or 0) for k in ("score", "max_score", "manual_score", "to_grade")}
        return cls(**{**values, **numbers})


def results_dir(out: Path) -> Path:
    """OUT/results: one JSON per row."""
    return out / "results"


def row_path(out: Path, student: str, assignment: str, notebook: str) -> Path:
    """OUT/results/<student>/<assignment>/<notebook>.json."""
    return results_dir(out) / student / assignment / f"{notebook}.json"


def feedback_path(out: Path, student: str, assignment: str, notebook: str) -> Path:
    """OUT/feedback/<student>/<assignment>/<notebook>.html: the page the student reads."""
    return out / "feedback" / student / assignment / f"{notebook}.html"


def write_whole(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def graded_path(out: Path, student: str, assignment: str, notebook: str) -> Path:
    """OUT/results/<student>/<assignment>/<notebook>.ipynb: the notebook as nbgrader autograded it (hidden tests,
    outputs), kept for formgrader (grader/manual/); OUT is private."""
    return results_dir(out) / student / assignment / f"{notebook}.ipynb"


def save(out: Path, row: Row, feedback: str | None = None, graded: str | None = None) -> None:
    """Save one row (and its feedback page and autograded notebook): each file written whole, the row last."""
    if feedback is not None:
        write_whole(feedback_path(out, row.student_id, row.assignment, row.notebook), feedback)
    if graded is not None:
        write_whole(graded_path(out, row.student_id, row.assignment, row.notebook), graded)
    write_whole(row_path(out, row.student_id, row.assignment, row.notebook), json.dumps(asdict(row), indent=1))


def row_of(data: dict) -> Row:
    """A row from its JSON."""
    data = dict(data)
    data["cells"] = [CellResult(**c) for c in data.get("cells", [])]
    data["written"] = [WrittenAnswer(**w) for w in data.get("written", [])]
    return Row(**data)


def load_all(out: Path) -> list[Row]:
    """Every row saved under OUT, sorted by student, assignment, notebook."""
    rows = [row_of(json.loads(path.read_text())) for path in results_dir(out).glob("*/*/*.json")]
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


def csv_path(out: Path) -> Path:
    """OUT/grades.csv."""
    return out / "grades.csv"


def write_csv(out: Path, rows: list[Row]) -> Path:
    """OUT/grades.csv, one line per row, written whole."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow(row.csv_row())
    path = csv_path(out)
    write_whole(path, buf.getvalue())
    return path


def read_csv(out: Path) -> list[Row]:
    """OUT/grades.csv read back as rows, in its order (without the cells and timings only the JSON keeps)."""
    with csv_path(out).open(newline="", encoding="utf-8") as f:
        return [Row.from_csv(line) for line in csv.DictReader(f)]
