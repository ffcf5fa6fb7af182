"""OUT/manual_grades.csv: every score and comment a person gave a written answer, keyed by the answer's text.

One line per answer as it was graded: `student_id, assignment, notebook, grade_id, answer_sha256` (the hash of
the answer's text, course/written.answer_hash) and the `score` and `comment` given to it. Formgrader writes
into OUT/course's gradebook; what a person changes there is read back into this file (manual/course.harvest)
before anything uses the grades, so the file is the one record that survives regrading, a rebuilt course and
a new term folder. A score stays with the text it was given to: a regraded notebook whose answer did not change
keeps it, one whose answer changed is flagged and graded again. Old lines are kept (an answer changed back
gets its score back). The file may be edited by hand or written by a script; a blank score is "not graded".
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError
from grader.results import write_whole

MARKS_FILE = "manual_grades.csv"
COLUMNS = ["student_id", "assignment", "notebook", "grade_id", "answer_sha256", "score", "comment"]

Key = tuple[str, str, str, str, str]  # student, assignment, notebook, grade id, answer hash


@dataclass(frozen=True)
class Mark:
    """A person's score (None: not given) and comment for one written answer, as its text was."""

    student_id: str
    assignment: str
    notebook: str
    grade_id: str
    answer_sha256: str
    score: float | None
    comment: str = ""

    @property
    def key(self) -> Key:
        return (self.student_id, self.assignment, self.notebook, self.grade_id, self.answer_sha256)

    @property
    def empty(self) -> bool:
        return self.score is None and not self.comment


def marks_path(out: Path) -> Path:
    """OUT/manual_grades.csv."""
    return out / MARKS_FILE


def parse_marks(text: str, source: str = MARKS_FILE) -> dict[Key, Mark]:
    """The marks in a manual grades file's text, by key (a later line for the same answer wins)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise GraderError(f"{source}: missing the column(s) {', '.join(missing)} (expected {','.join(COLUMNS)})")
    found: dict[Key, Mark] = {}
    for line, r in enumerate(reader, start=2):
        r = {k: (v or "") for k, v in r.items() if k is not None}
        if not any(v.strip() for v in r.values()):
            continue
        try:
            score = float(r["score"]) if r["score"].strip() else None
        except ValueError:
            raise GraderError(f"{source}, line {line}: score {r['score']!r} is not a number") from None
        mark = Mark(*(r[c].strip() for c in COLUMNS[:5]), score, r["comment"])
        found[mark.key] = mark
    return found


def read_marks(out: Path) -> dict[Key, Mark]:
    """OUT/manual_grades.csv by key; nothing when there is none."""
    path = marks_path(out)
    return parse_marks(path.read_text(encoding="utf-8-sig"), str(path)) if path.exists() else {}


def write_marks(out: Path, marks: dict[Key, Mark]) -> Path:
    """OUT/manual_grades.csv, sorted, written whole; empty marks are left out."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for key in sorted(marks):
        m = marks[key]
        if not m.empty:
            writer.writerow([*m.key, "" if m.score is None else f"{m.score:g}", m.comment])
    path = marks_path(out)
    write_whole(path, buf.getvalue())
    return path
