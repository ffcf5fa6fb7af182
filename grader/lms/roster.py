"""Rosters: who is in the class, under the course's student id and under the LMS's own id.

Three files are read as they come, told apart by their header:
- Canvas's gradebook export (`Student, ID, SIS User ID, SIS Login ID, Section, ...`, a `Points
  Possible` row): the LMS id is `ID` (the user id in Canvas's file names);
- Moodle's grading worksheet (`Identifier, Full name, ...`): the LMS id is the number in
  `Identifier` (`Participant 123456`, the number in Moodle's folder names);
- a plain CSV `student_id,lms_id[,name][,email][,due]`.
The course's student id is the first of DEFAULT_ID_COLUMNS[format] that the file has and fills for
someone (Canvas: `SIS User ID`, then `SIS Login ID`, then `ID`; Moodle: `ID number`, then `Email
address`, then the participant number; plain: `student_id`); `--id-column` chooses another. A student
whose cell is blank keeps the LMS id, and the roster says so. Canvas's own Test Student is left out.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

from grader.errors import LmsError
from grader.lms.times import iso, parse_time

CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Root Account", "Section")
POINTS_POSSIBLE = "Points Possible"
CANVAS_TEST_STUDENT = ("Student, Test", "Test Student")  # the student view's account, in every export
CANVAS_ASSIGNMENT = re.compile(r"^(.*)\s\((\d+)\)$")
MOODLE_PARTICIPANT = re.compile(r"^\s*Participant\s+(\d+)\s*$", re.IGNORECASE)
DEFAULT_ID_COLUMNS = {
    "canvas": ("SIS User ID", "SIS Login ID", "ID"),
    "moodle": ("ID number", "Email address", "Identifier"),
    "plain": ("student_id",),
}
LMS_ID_COLUMNS = {"canvas": "ID", "moodle": "Identifier", "plain": "lms_id"}
FORMAT_NAMES = {"canvas": "Canvas gradebook export", "moodle": "Moodle grading worksheet",
                "plain": "plain roster (student_id,lms_id)"}


@dataclass(frozen=True)
class Student:
    """One roster line: the course's id, the LMS's id, and what the LMS knows about them."""

    student_id: str
    lms_id: str
    name: str = ""
    email: str = ""
    due: str = ""  # this student's own deadline (an extension), ISO 8601
    row: dict = field(default_factory=dict, compare=False, hash=False, repr=False)  # the file's own line

    @property
    def first_last(self) -> tuple[str, str]:
        """(first name, last name): `Last, First` as Canvas writes it, else the last word is the last name."""
        first, last = self.row.get("first_name", ""), self.row.get("last_name", "")
        if first or last:
            return first, last
        if "," in self.name:
            last, first = (p.strip() for p in self.name.split(",", 1))
            return first, last
        words = self.name.split()
        return (" ".join(words[:-1]), words[-1]) if len(words) > 1 else ("", self.name)


@dataclass(frozen=True)
class Roster:
    """A roster as read: its format, the column giving student ids, the students, the file's header."""

    source: str
    format: str  # canvas | moodle | plain
    id_column: str
    students: tuple[Student, ...]
    columns: tuple[str, ...] = ()
    points_possible: dict = field(default_factory=dict, compare=False, hash=False)  # Canvas: column -> points
    notes: tuple[str, ...] = ()

    def by_lms_id(self) -> dict[str, Student]:
        return {s.lms_id: s for s in self.students}

    def by_student_id(self) -> dict[str, Student]:
        return {s.student_id: s for s in self.students}

    def assignment_columns(self) -> list[str]:
        """Canvas: the gradebook's assignment columns, `<title> (<assignment id>)`."""
        return [c for c in self.columns if c not in CANVAS_IDENTITY and CANVAS_ASSIGNMENT.match(c)]


def format_of(columns: list[str]) -> str | None:
    """`canvas`, `moodle` or `plain` from a header; None when it is none of them."""
    names = {c.strip() for c in columns}
    if {"Student", "ID"} <= names:
        return "canvas"
    if "Identifier" in names:
        return "moodle"
    if {"student_id", "lms_id"} <= names:
        return "plain"
    return None


def read_roster(path: Path, id_column: str | None = None, tz: tzinfo | None = None) -> Roster:
    """Read a roster file (see the module's docstring for formats and the default id column)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LmsError(f"{path}: cannot read the roster ({exc})") from None
    return parse_roster(text, id_column, str(path), tz)


def parse_roster(text: str, id_column: str | None = None, source: str = "roster", tz: tzinfo | None = None) -> Roster:
    """A roster from its CSV text."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    kind = format_of(columns)
    if kind is None:
        raise LmsError(f"{source}: not a roster this grader reads; expected Canvas's gradebook export "
                       f"(Student, ID, SIS User ID, ...), Moodle's grading worksheet (Identifier, Full name, ...) "
                       f"or a CSV with the columns student_id,lms_id[,name] (found: {', '.join(columns) or 'nothing'})")
    rows = [{k: (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    points = {}
    if kind == "canvas":
        special = [r for r in rows if r.get("Student", "") == POINTS_POSSIBLE]
        points = {k: v for k, v in special[0].items() if v and k not in CANVAS_IDENTITY} if special else {}
        rows = [r for r in rows if r.get("ID", "").isdigit()]  # drops Points Possible, Manual Posting, blank lines
        rows = [r for r in rows if r.get("Student") not in CANVAS_TEST_STUDENT]
    elif kind == "moodle":
        rows = [r for r in rows if MOODLE_PARTICIPANT.match(r.get("Identifier", ""))]
    else:
        rows = [r for r in rows if r.get("lms_id") or r.get("student_id")]
    column = choose_id_column(kind, columns, rows, id_column, source)
    students, notes = [], []
    for r in rows:
        lms_id = lms_id_of(kind, r)
        student_id = (r.get(column, "") if column != "Identifier" else lms_id) or lms_id
        if not r.get(column, ""):
            notes.append(f"{r.get('Student') or r.get('Full name') or r.get('name') or lms_id}: no {column}; "
                         f"the LMS id {lms_id} is their student id")
        name = r.get("Student") or r.get("Full name") or r.get("name", "")
        email = r.get("Email address") or r.get("email", "")
        due_text = r.get("due") or r.get("Due date", "")
        try:
            due = iso(parse_time(due_text, tz)) if due_text else ""
        except ValueError as exc:
            raise LmsError(f"{source}: {name or lms_id}: due date {exc}") from None
        students.append(Student(student_id, lms_id, name, email, due, r))
    check_unique(students, source, column)
    return Roster(source, kind, column, tuple(students), tuple(columns), points, tuple(notes))


def lms_id_of(kind: str, row: dict) -> str:
    if kind == "moodle":
        found = MOODLE_PARTICIPANT.match(row.get("Identifier", ""))
        return found.group(1) if found else ""
    return row.get(LMS_ID_COLUMNS[kind], "") or row.get("student_id", "")


def choose_id_column(kind: str, columns: list[str], rows: list[dict], wanted: str | None, source: str) -> str:
    """The column that holds the course's student ids: `wanted`, or the first default that anyone fills."""
    if wanted:
        if wanted not in columns:
            raise LmsError(f"{source}: no column {wanted!r} for --id-column (columns: {', '.join(columns)})")
        return wanted
    for column in DEFAULT_ID_COLUMNS[kind]:
        if column in columns and any(r.get(column) for r in rows):
            return column
    return DEFAULT_ID_COLUMNS[kind][-1]


def check_unique(students: list[Student], source: str, column: str) -> None:
    for attr, label in (("student_id", column), ("lms_id", "LMS id")):
        seen: dict[str, int] = {}
        for s in students:
            seen[getattr(s, attr)] = seen.get(getattr(s, attr), 0) + 1
        twice = sorted(k for k, n in seen.items() if n > 1)
        if twice:
            raise LmsError(f"{source}: {label} {', '.join(twice)} appears more than once; "
                           f"fix the roster or choose another --id-column")


def read_extensions(path: Path, tz: tzinfo | None = None) -> dict[str, datetime]:
    """A CSV `student_id,due`: each student's own deadline."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LmsError(f"{path}: cannot read the extensions ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    if not {"student_id", "due"} <= set(reader.fieldnames or []):
        raise LmsError(f"{path}: expected the columns student_id,due (found: {', '.join(reader.fieldnames or [])})")
    found = {}
    for r in reader:
        try:
            due = parse_time(r["due"], tz)
        except ValueError as exc:
            raise LmsError(f"{path}: {r['student_id']}: {exc}") from None
        if r["student_id"].strip() and due is not None:
            found[r["student_id"].strip()] = due
    return found
