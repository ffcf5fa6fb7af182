"""Grading results: one JSON per row under OUT/results, from which grades.csv and the report are built.

OUT is the course's record for the term: every assignment graded into it keeps its rows until that
assignment is graded again. Keeping every row as its own file makes a regrade (an assignment, a
`--student`) a matter of replacing some files as each is graded and, once the run is over, removing
those of its scope it did not write again (`remove_stale`); the CSV and the report are always rebuilt
from all of them. `Row` is the one shape of a grade row, and this module is the one that reads and
writes it, as JSON and as grades.csv.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

CSV_COLUMNS = ["student_id", "assignment", "notebook", "score", "max_score", "status", "manual_score", "to_grade",
               "detail", "late", "submitted_at", "raw_score", "late_penalty", "final_score"]


@dataclass
class CellResult:
    """One test cell's outcome."""

    grade_id: str
    exercise: str
    score: float
    max_score: float
    hidden: bool
    message: str = ""  # why it failed, whole (hidden tests too): for the instructor, never on the student's page


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
    the tests plus `manual_score`, and `to_grade` the points of the answers nobody has graded yet. An override
    replaces that sum; the late penalty is taken off what the override left.
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
    limits: str = ""  # the time limits it was graded with, in words ('' when nothing ran)
    written: list[WrittenAnswer] = field(default_factory=list)
    manual_score: float = 0.0  # the points people gave the written answers
    to_grade: float = 0.0  # the points of the written answers still to grade
    # Set where the class's grades are built (lms/grades.py), never saved with the row as graded:
    raw_score: float | None = None  # the score as graded, when an override replaced `score`
    override: str = ""  # the instructor's override of `score`, in words
    late_penalty: float = 0.0  # points taken off `score` by the assignment's late policy
    late_note: str = ""  # why, in words: the rule and the days charged
    lms_points: float | None = None  # the LMS's points possible for the assignment, when scores are scaled to it
    assignment_max: float | None = None  # the assignment's maximum over all its notebooks (for the scaling)

    @property
    def graded_score(self) -> float:
        """The score the autograder gave, before any override."""
        return self.score if self.raw_score is None else self.raw_score

    @property
    def final_score(self) -> float:
        """The score after the override and the late penalty: what the LMS gets (before any scaling)."""
        return round(self.score - self.late_penalty, 2)

    @property
    def lms_score(self) -> float:
        """The final score in the LMS's points: scaled when the instructor chose --scale-to-lms."""
        if self.lms_points is None or not self.assignment_max:
            return self.final_score
        return round(self.final_score * self.lms_points / self.assignment_max, 2)

    def csv_row(self) -> dict[str, str]:
        values = asdict(self)
        values.update(score=f"{self.score:g}", max_score=f"{self.max_score:g}", raw_score=f"{self.graded_score:g}",
                      late_penalty=f"{self.late_penalty:g}", final_score=f"{self.final_score:g}",
                      manual_score=f"{self.manual_score:g}", to_grade=f"{self.to_grade:g}")
        return {k: values[k] for k in CSV_COLUMNS}

    @classmethod
    def from_csv(cls, line: dict[str, str]) -> Row:
        """A row as grades.csv wrote it (columns it lacks are left empty)."""
        values = {k: line.get(k) or "" for k in CSV_COLUMNS if k != "final_score"}
        score = float(values["score"] or 0)
        raw = float(values["raw_score"]) if values["raw_score"] else None
        numbers = {k: float(values[k] or 0) for k in ("max_score", "late_penalty", "manual_score", "to_grade")}
        return cls(**{**values, **numbers, "score": score, "raw_score": None if raw == score else raw})


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


# What the class's grades add to a row; a row is saved as graded, without them.
DERIVED = ("raw_score", "override", "late_penalty", "late_note", "lms_points", "assignment_max")


def graded_path(out: Path, student: str, assignment: str, notebook: str) -> Path:
    """OUT/results/<student>/<assignment>/<notebook>.ipynb: the notebook as nbgrader autograded it (hidden tests,
    outputs), kept for formgrader (grader/manual/); OUT is private."""
    return results_dir(out) / student / assignment / f"{notebook}.ipynb"


def save(out: Path, row: Row, feedback: str | None = None, graded: str | None = None) -> None:
    """Save one row as graded (and its feedback page and autograded notebook), replacing any earlier one: each
    file written whole, the row last; a row without an autograded notebook leaves none of an earlier one."""
    if feedback is not None:
        write_whole(feedback_path(out, row.student_id, row.assignment, row.notebook), feedback)
    notebook = graded_path(out, row.student_id, row.assignment, row.notebook)
    if graded is not None:
        write_whole(notebook, graded)
    else:
        notebook.unlink(missing_ok=True)
    data = {k: v for k, v in asdict(row).items() if k not in DERIVED}
    write_whole(row_path(out, row.student_id, row.assignment, row.notebook), json.dumps(data, indent=1))


def row_of(data: dict) -> Row:
    """A row from its JSON (what the class's grades add to it left out)."""
    data = {k: v for k, v in data.items() if k not in DERIVED}
    data["cells"] = [CellResult(**c) for c in data.get("cells", [])]
    data["written"] = [WrittenAnswer(**w) for w in data.get("written", [])]
    return Row(**data)


def load_all(out: Path) -> list[Row]:
    """Every row saved under OUT, sorted by student, assignment, notebook."""
    rows = [row_of(json.loads(path.read_text())) for path in results_dir(out).glob("*/*/*.json")]
    return sorted(rows, key=lambda r: (r.student_id, r.assignment, r.notebook))


def in_scope(student: str, assignment: str, students: list[str] | None, assignments: list[str]) -> bool:
    """Whether a row of (student, assignment) belongs to a run over `assignments` (and `students`, None: all)."""
    return assignment in assignments and (students is None or student in students)


def remove_stale(out: Path, written: set[tuple[str, str, str]], assignments: list[str],
                 students: list[str] | None) -> list[tuple[str, str, str]]:
    """After a run over `assignments` (and `students`; None: all), remove the rows and pages of its scope
    that it did not write (a student folder gone, a notebook no longer released); rows of other assignments
    and students are never touched. The (student, assignment, notebook) removed."""
    removed = []
    for path in sorted(results_dir(out).glob("*/*/*.json")):
        key = (path.parent.parent.name, path.parent.name, path.stem)
        if in_scope(key[0], key[1], students, assignments) and key not in written:
            path.unlink()
            feedback_path(out, *key).unlink(missing_ok=True)
            graded_path(out, *key).unlink(missing_ok=True)
            removed.append(key)
    for base in (results_dir(out), out / "feedback"):  # folders left empty
        for folder in sorted(base.glob("*/*"), reverse=True) + sorted(base.glob("*"), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return removed


def unplaced_path(out: Path) -> Path:
    """OUT/unplaced.json: {student: {assignment: [files of theirs that match no notebook]}}."""
    return out / "unplaced.json"


def save_unplaced(out: Path, unplaced: dict[str, list[str]], assignments: list[str],
                  students: list[str] | None = None) -> None:
    """Record the files that match no notebook (paths in each student's folder) found by a run over
    `assignments` (and `students`; None: all), replacing what OUT held for that scope; other assignments'
    entries are kept. A file outside every assignment folder is listed under each of the run's assignments."""
    kept = load_unplaced_by_assignment(out)
    for student in set(kept) | set(unplaced):
        if students is not None and student not in students:
            continue
        mine = {a: files for a, files in kept.get(student, {}).items() if a not in assignments}
        for rel in unplaced.get(student, []):
            first = rel.split("/", 1)[0]
            for assignment in ([first] if first in assignments else assignments):
                mine.setdefault(assignment, []).append(rel)
        if mine:
            kept[student] = mine
        else:
            kept.pop(student, None)
    write_whole(unplaced_path(out), json.dumps(kept, indent=1, sort_keys=True))


def load_unplaced_by_assignment(out: Path) -> dict[str, dict[str, list[str]]]:
    path = unplaced_path(out)
    return json.loads(path.read_text()) if path.exists() else {}


def load_unplaced(out: Path) -> dict[str, list[str]]:
    """Each student's files that match no notebook, over every assignment graded into OUT."""
    return {student: sorted({f for files in by.values() for f in files})
            for student, by in sorted(load_unplaced_by_assignment(out).items())}


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
