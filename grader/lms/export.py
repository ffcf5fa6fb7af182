"""`export`: OUT's grades in an LMS's own import format, with the late policy applied.

The grades are the class's rows as grades.csv holds them, built the same way from OUT's results
(lms/grades.py: OUT/overrides.csv and the collect manifest applied once). A student's score for an
assignment is the sum over its notebooks. Formats:
- `canvas`: Canvas's gradebook import, built from the gradebook export given as the roster: its
  identity columns (`Student, ID, SIS User ID, SIS Login ID, Section`), one column per assignment with
  the title Canvas gave it (`<title> (<assignment id>)`: from `--map`, or the one column whose title
  reads as the assignment's name), the `    Points Possible` row, scores with two decimals; a student
  with no grade is left blank (Canvas leaves that cell as it was).
- `moodle`: Moodle's grading worksheet for one assignment, the worksheet itself given as the roster:
  every column kept as Moodle wrote it, `Grade` filled in and `Feedback comments` a one-line summary.
- `nbgrader`: nbgrader's own CSV (`assignment,duedate,timestamp,student_id,last_name,first_name,email,
  raw_score,late_submission_penalty,score,max_score`), names and emails from the roster when given.
Beside the grade file, `<name>.details.csv` keeps, for every score written, the raw score, the late
penalty and why.

Written answers still to grade (grader/manual/) make a score incomplete: by default export refuses and
names them; `ungraded="blank"` leaves those students' assignments blank (an LMS keeps what it has) and says
whose. A notebook whose score an override sets is complete.
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from grader.errors import LmsError
from grader import results
from grader.lms import manifest
from grader.lms.grades import Grades, class_grades, write_grades
from grader.lms.late import Policy, lateness, penalise
from grader.lms.roster import CANVAS_ASSIGNMENT, CANVAS_IDENTITY, POINTS_POSSIBLE, Roster, Student, read_roster
from grader.lms.times import iso, parse_time
from grader.results import Row

FORMATS = ("canvas", "moodle", "nbgrader")
UNGRADED = ("refuse", "blank")  # what export does while written answers are left to grade
NBGRADER_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score"]
DETAIL_COLUMNS = ["student_id", "lms_id", "assignment", "column", "raw_score", "late", "submitted_at", "due",
                  "late_penalty", "score", "max_score", "notebooks", "note"]


@dataclass
class Total:
    """One student's result for one assignment: raw sum, late penalty, score."""

    student: str
    assignment: str
    raw: float = 0.0
    max_score: float = 0.0
    notebooks: list[str] = field(default_factory=list)  # `seq2seq 7/10 graded`
    late_flag: bool | None = None
    submitted_at: str = ""
    due: str = ""
    penalty: float = 0.0
    score: float = 0.0
    note: str = ""

    def summary(self) -> str:
        """The one line an LMS shows as feedback."""
        head = f"{self.score:.2f}/{self.max_score:g}"
        parts = [head + ": " + ", ".join(self.notebooks)]
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


@dataclass
class Exported:
    """What export wrote and what the instructor should know."""

    path: Path
    details: Path
    written: int = 0
    feedback: Path | None = None
    columns: dict = field(default_factory=dict)  # assignment -> LMS column
    warnings: list[str] = field(default_factory=list)


def graded_rows(out: Path, collected: manifest.Collected) -> Grades:
    """The class's grades (rows as grades.csv holds them, the overrides that name none); an error that says what
    to do when OUT holds no graded rows."""
    grades = class_grades(out, collected)
    if not grades.rows:
        raise LmsError(f"{results.results_dir(out)}: no graded rows; "
                       f"run `python -m grader autograde SUBMISSIONS --out {out}` first")
    return grades


def left_to_grade(grades: Grades, rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    """{(student, assignment): its rows with written answers still to grade}, overridden rows apart."""
    found: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        if r.to_grade and (r.student_id, r.assignment, r.notebook) not in grades.overridden:
            found.setdefault((r.student_id, r.assignment), []).append(r)
    return found


def ungraded_message(pending: dict[tuple[str, str], list[Row]], out: Path) -> str:
    """Whose written answers are left to grade, in one line (the first few named)."""
    named = [f"{r.student_id}/{r.assignment}/{r.notebook} ({r.to_grade:g} points)"
             for key in sorted(pending) for r in pending[key]]
    more = f" and {len(named) - 5} more" if len(named) > 5 else ""
    return (f"written answers left to grade in {len(named)} notebook{'s' if len(named) != 1 else ''}: "
            f"{', '.join(named[:5])}{more} (grade them with `python -m grader formgrader {out}`)")


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0


def _flag(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text.strip().lower())


def totals(rows: list[Row]) -> dict[tuple[str, str], Total]:
    """{(student, assignment): Total}: scores summed over notebooks, late flag and latest time per assignment."""
    found: dict[tuple[str, str], Total] = {}
    flags: dict[tuple[str, str], list[bool]] = {}
    for r in rows:
        key = (r.student_id, r.assignment)
        t = found.setdefault(key, Total(*key))
        t.raw += r.score
        t.max_score += r.max_score
        t.notebooks.append(f"{r.notebook} {r.score:g}/{r.max_score:g} {r.status}")
        flag = _flag(r.late)
        if flag is not None:
            flags.setdefault(key, []).append(flag)
        if r.submitted_at and (not t.submitted_at or parse_time(r.submitted_at) > parse_time(t.submitted_at)):
            t.submitted_at = r.submitted_at
    for key, t in found.items():
        t.late_flag = any(flags[key]) if key in flags else None
        t.raw, t.max_score = round(t.raw, 2), round(t.max_score, 2)
        t.score = t.raw
    return found


def apply_policy(found: dict[tuple[str, str], Total], policy: Policy | None, due: datetime | None,
                 dues: dict[str, datetime]) -> None:
    """Fill in each total's deadline, penalty, score and note (in place); with a deadline and a
    submission time, the time decides whether it is late."""
    for t in found.values():
        deadline = dues.get(t.student) or due
        t.due = iso(deadline)
        late = lateness(parse_time(t.submitted_at) if t.submitted_at else None, t.late_flag, deadline)
        if late.days is not None:
            t.late_flag = late.late
        t.score, t.penalty, t.note = penalise(policy, t.raw, late)


def student_dues(roster: Roster | None, extensions: dict[str, datetime]) -> dict[str, datetime]:
    """Each student's own deadline: the extensions file, else the roster's."""
    dues = {s.student_id: parse_time(s.due) for s in (roster.students if roster else ()) if s.due}
    return {**dues, **extensions}


# --- Canvas ------------------------------------------------------------------------------------

def _words(text: str) -> str:
    """A title compared loosely: `01_packed_sequences` and `Packed sequences` read the same."""
    text = re.sub(r"^\s*\d+[\s_.\-:]*", "", text.lower())
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


def canvas_columns(gradebook: Roster, assignments: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """{assignment: gradebook column}: `mapping` (a whole column, its id or its title), else the one column
    whose title reads as the assignment's name. An error lists the columns when that fails."""
    columns = gradebook.assignment_columns()
    listing = "; ".join(columns) or "none"
    chosen = {}
    for assignment in assignments:
        wanted = mapping.get(assignment)
        if wanted is not None:
            hits = [c for c in columns if c == wanted] or \
                   [c for c in columns if CANVAS_ASSIGNMENT.match(c).group(2) == wanted] or \
                   [c for c in columns if CANVAS_ASSIGNMENT.match(c).group(1).strip() == wanted.strip()]
            if len(hits) != 1:
                raise LmsError(f"--map {assignment}={wanted!r}: {'no' if not hits else 'more than one'} such column in "
                               f"{gradebook.source} (assignment columns: {listing})")
        else:
            hits = [c for c in columns if _words(CANVAS_ASSIGNMENT.match(c).group(1)) == _words(assignment)]
            if len(hits) != 1:
                raise LmsError(f"{gradebook.source}: no single column for {assignment}; pass "
                               f'--map {assignment}="<title> (<id>)", or name the assignments to export with '
                               f"--assignment (assignment columns: {listing})")
        chosen[assignment] = hits[0]
    return chosen


def canvas_table(gradebook: Roster, found: dict[tuple[str, str], Total], columns: dict[str, str],
                 warnings: list[str]) -> list[list[str]]:
    """Canvas's import CSV as rows: header, the Points Possible row, one row per gradebook student."""
    identity = [c for c in gradebook.columns if c in CANVAS_IDENTITY]
    header = identity + list(columns.values())
    points = []
    for assignment, column in columns.items():
        best = max((t.max_score for (s, a), t in found.items() if a == assignment), default=0.0)
        theirs = gradebook.points_possible.get(column, "")
        if theirs and abs(_float(theirs) - best) > 1e-9:
            warnings.append(f"{column}: Canvas says {theirs} points possible, the grader's maximum is {best:g}; "
                            f"scores are written as graded")
        points.append(f"{best:.2f}")
    table = [header, [f"    {POINTS_POSSIBLE}"] + [""] * (len(identity) - 1) + points]
    for s in gradebook.students:
        cells = [s.row.get(c, "") for c in identity]
        for assignment in columns:
            t = found.get((s.student_id, assignment))
            cells.append(f"{t.score:.2f}" if t else "")
        table.append(cells)
    return table


# --- Moodle ------------------------------------------------------------------------------------

def moodle_table(worksheet: Roster, found: dict[tuple[str, str], Total], assignment: str,
                 warnings: list[str]) -> list[list[str]]:
    """The worksheet as Moodle wrote it, with Grade and Feedback comments filled in for graded students."""
    header = list(worksheet.columns) + ([] if "Feedback comments" in worksheet.columns else ["Feedback comments"])
    table = [header]
    for s in worksheet.students:
        line = dict(s.row)
        t = found.get((s.student_id, assignment))
        if t:
            line["Grade"] = f"{t.score:.2f}"
            line["Feedback comments"] = t.summary()
            most = _float(line.get("Maximum Grade", "")) if line.get("Maximum Grade") else None
            if most is not None and abs(most - t.max_score) > 1e-9:
                warnings.append(f"{s.name or s.student_id}: Moodle's Maximum Grade is {line['Maximum Grade']}, "
                                f"the grader's maximum is {t.max_score:g}")
        table.append([line.get(c, "") for c in header])
    return table


# --- nbgrader ----------------------------------------------------------------------------------

def nbgrader_table(found: dict[tuple[str, str], Total], roster: Roster | None) -> list[list[str]]:
    """nbgrader's CSV export: one row per student x assignment."""
    people = roster.by_student_id() if roster else {}
    table = [NBGRADER_COLUMNS]
    for (student, assignment), t in sorted(found.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        who = people.get(student)
        first, last = who.first_last if who else ("", "")
        table.append([assignment, t.due, t.submitted_at, student, last, first, who.email if who else "",
                      f"{t.raw:g}", f"{t.penalty:g}", f"{t.score:g}", f"{t.max_score:g}"])
    return table


# --- feedback ----------------------------------------------------------------------------------

def feedback_files(out: Path, student: str, assignment: str) -> list[Path]:
    folder = out / "feedback" / student / assignment
    return sorted(folder.glob("*.html")) if folder.is_dir() else []


def feedback_zip(out: Path, fmt: str, target: Path, students: list[Student], assignments: list[str]) -> int:
    """The feedback pages laid out for the LMS's upload; the number of students in it.

    Moodle: `<Full name>_<participant id>_assignsubmission_file_/feedback.html` (one page per notebook,
    named after it, when an assignment has several); nbgrader: `<student>/<assignment>/<notebook>.html`."""
    if fmt == "canvas":
        raise LmsError("--feedback-zip: Canvas has no bulk upload of feedback files; students see their "
                       "feedback from OUT/feedback, or use --format moodle|nbgrader")
    count = 0
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for s in students:
            wrote = False
            for assignment in assignments:
                pages = feedback_files(out, s.student_id, assignment)
                for page in pages:
                    if fmt == "moodle":
                        name = "feedback.html" if len(pages) == 1 else page.name
                        who = s.name or f"Participant {s.lms_id}"
                        arcname = f"{who}_{s.lms_id}_assignsubmission_file_/{name}"
                    else:
                        arcname = f"{s.student_id}/{assignment}/{page.name}"
                    z.writestr(arcname, page.read_bytes())
                    wrote = True
            count += wrote
    return count


# --- the command -------------------------------------------------------------------------------

def write_csv(path: Path, table: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(table)


def details_path(target: Path) -> Path:
    return target.with_name(f"{target.stem}.details.csv")


def export(out: Path, fmt: str, to: Path, roster_path: Path | None = None, mapping: dict[str, str] | None = None,
           assignments: list[str] | None = None, policy: Policy | None = None, due: datetime | None = None,
           extensions: dict[str, datetime] | None = None, feedback: Path | None = None,
           id_column: str | None = None, tz=None, ungraded: str = "refuse") -> Exported:
    """Write OUT's grades as `fmt` to `to` (see the module's docstring)."""
    if fmt not in FORMATS:
        raise LmsError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if ungraded not in UNGRADED:
        raise LmsError(f"--ungraded {ungraded}: expected one of {', '.join(UNGRADED)}")
    if roster_path is None and fmt != "nbgrader":
        raise LmsError(f"--format {fmt} needs --roster: the {'gradebook export' if fmt == 'canvas' else 'grading worksheet'} "
                       f"downloaded from {fmt.capitalize()}")
    collected = manifest.read(out)
    roster = None
    if roster_path is not None:
        remembered = collected.id_column
        roster = read_roster(roster_path, id_column, tz)
        if not id_column and remembered and remembered in roster.columns and remembered != roster.id_column:
            roster = read_roster(roster_path, remembered, tz)  # the column collect used
        if fmt != "nbgrader" and roster.format != fmt:
            raise LmsError(f"{roster_path}: a {roster.format} roster; --format {fmt} needs "
                           f"{'the gradebook exported from Canvas' if fmt == 'canvas' else 'the grading worksheet downloaded from Moodle'}")
    grades = graded_rows(out, collected)
    write_grades(out, grades.rows)  # grades.csv and the pages, with what was graded since
    rows, warnings = grades.rows, list(grades.unmatched)
    graded = list(dict.fromkeys(r.assignment for r in rows))
    if assignments:
        unknown = [a for a in assignments if a not in graded]
        if unknown:
            raise LmsError(f"{out}: no grades for {', '.join(unknown)} (graded: {', '.join(graded)})")
    if fmt == "moodle":
        if not assignments and len(graded) > 1:
            raise LmsError(f"--format moodle: a worksheet holds one assignment; choose it with --assignment "
                           f"({', '.join(graded)})")
        assignments = (assignments or graded)[:1]
    unknown_maps = [a for a in (mapping or {}) if a not in graded]
    if unknown_maps:
        raise LmsError(f"--map {', '.join(unknown_maps)}: no grades for that assignment (graded: {', '.join(graded)})")
    wanted = assignments or graded
    rows = [r for r in rows if r.assignment in wanted]
    if policy is not None and policy.kind == "per_day" and due is None and not extensions and \
            not any(s.due for s in (roster.students if roster else ())):
        raise LmsError("--late-penalty per day needs --due (and submission times) to count the days")
    pending = left_to_grade(grades, rows)
    if pending and ungraded == "refuse":
        raise LmsError(f"{ungraded_message(pending, out)}; or pass --ungraded blank to leave those students' "
                       f"assignments blank in the file (the LMS keeps what it has); nothing was written")
    if pending:
        warnings.append("left blank: " + ungraded_message(pending, out))
    found = {key: t for key, t in totals(rows).items() if key not in pending}
    apply_policy(found, policy, due, student_dues(roster, extensions or {}))
    result = Exported(Path(to), details_path(Path(to)), warnings=warnings)
    if fmt == "canvas":
        result.columns = canvas_columns(roster, wanted, mapping or {})
        table = canvas_table(roster, found, result.columns, result.warnings)
    elif fmt == "moodle":
        result.columns = {wanted[0]: "Grade"}
        table = moodle_table(roster, found, wanted[0], result.warnings)
    else:
        table = nbgrader_table(found, roster)
    if roster is not None:
        listed = roster.by_student_id()
        missing = sorted({s for (s, a) in found if s not in listed})
        if missing:
            result.warnings.append(f"not in {roster_path.name}, so not exported: {', '.join(missing)}")
        if fmt != "nbgrader" and not any(s in listed for (s, a) in found):
            raise LmsError(f"{roster_path}: none of the graded students ({', '.join(sorted({s for s, a in found})[:5])}...) "
                           f"is on it under {roster.id_column!r}; choose the column that holds their ids with --id-column")
        result.written = sum(1 for (s, a) in found if s in listed)
    else:
        result.written = len(found)
    write_csv(result.path, table)
    people = roster.by_student_id() if roster else {}
    details = [DETAIL_COLUMNS] + [
        [t.student, people[t.student].lms_id if t.student in people else "", t.assignment,
         result.columns.get(t.assignment, ""), f"{t.raw:g}",
         "" if t.late_flag is None else str(t.late_flag).lower(), t.submitted_at, t.due, f"{t.penalty:g}",
         f"{t.score:g}", f"{t.max_score:g}", "; ".join(t.notebooks), t.note]
        for t in sorted(found.values(), key=lambda t: (t.assignment, t.student))]
    write_csv(result.details, details)
    if feedback is not None:
        students = list(roster.students) if roster else [Student(s, s) for s in sorted({s for s, a in found})]
        feedback_zip(out, fmt, Path(feedback), students, wanted)
        result.feedback = Path(feedback)
    return result


def parse_mapping(items: list[str] | None) -> dict[str, str]:
    """`--map ASSIGNMENT=COLUMN` (repeatable) as a dict."""
    mapping = {}
    for item in items or []:
        assignment, sep, column = item.partition("=")
        if not sep or not assignment.strip() or not column.strip():
            raise LmsError(f'--map {item!r}: expected ASSIGNMENT=COLUMN, e.g. --map 01_packed_sequences="Packed sequences (4242)"')
        mapping[assignment.strip()] = column.strip()
    return mapping
