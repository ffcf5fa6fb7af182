"""`export`: OUT's grades in an LMS's own import format, with the late policy and the LMS's points applied.

The grades are the class's rows as grades.csv holds them, built the same way from OUT's results
(lms/grades.py: OUT/overrides.csv, the collect manifest and OUT/policy.json applied once). Only the
assignments graded into OUT are written; the course's others are left out of the file, and said so. A
student's score for an assignment is the sum over its notebooks. Before it writes, export records its
choices (the late policy, how points meet the LMS's) in OUT/policy.json and brings grades.csv and every
feedback page's grade block up to date with them: the page says what the LMS gets. Formats:
- `canvas`: Canvas's gradebook import, built from the gradebook export given as the roster: its
  identity columns (`Student, ID, SIS User ID, SIS Login ID, Section`), one column per assignment with
  the title Canvas gave it (`<title> (<assignment id>)`: from `--map`, or the one column whose title
  reads as the assignment's name), the `    Points Possible` row, scores with two decimals; a student
  with no grade is left blank (Canvas leaves that cell as it was).
- `moodle`: Moodle's grading worksheet for one assignment, the worksheet itself given as the roster:
  every column kept as Moodle wrote it, `Grade` filled in and `Feedback comments` the page's grade, in
  the same words.
- `nbgrader`: nbgrader's own CSV (`assignment,duedate,timestamp,student_id,last_name,first_name,email,
  raw_score,late_submission_penalty,score,max_score`), names and emails from the roster when given.
Beside the grade file, `<name>.details.csv` keeps, for every score written, the raw score, the late
penalty and why. `--feedback-zip` lays the pages out for the LMS's own upload (`feedback_zip`).

Written answers still to grade (grader/manual/) make a score incomplete: by default export refuses and
names them, before it records or writes anything; `ungraded="blank"` leaves those students' assignments blank
(an LMS keeps what it has) and says whose. A notebook whose score an override sets is complete.
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from grader import results
from grader.course import layout
from grader.errors import LmsError
from grader.lms import formats, manifest
from grader.lms import policy as policies
from grader.lms.grades import Grades, Total, bring_up_to_date, class_grades
from grader.lms.late import Policy
from grader.lms.roster import (CANVAS_ASSIGNMENT, CANVAS_IDENTITY, FORMAT_NAMES, POINTS_POSSIBLE, Roster, Student,
                               read_roster)
from grader.lms.times import iso, parse_time
from grader.pages.summary import standing
from grader.results import Row

FORMATS = ("canvas", "moodle", "nbgrader")
UNGRADED = ("refuse", "blank")  # what export does while written answers are left to grade
NBGRADER_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score"]
DETAIL_COLUMNS = ["student_id", "lms_id", "assignment", "column", "raw_score", "late", "submitted_at", "due",
                  "late_penalty", "score", "max_score", "lms_score", "lms_max", "notebooks", "note"]


@dataclass
class Exported:
    """What export wrote and what the instructor should know."""

    path: Path
    details: Path
    written: int = 0
    feedback: list[Path] = field(default_factory=list)
    columns: dict = field(default_factory=dict)  # assignment -> LMS column
    warnings: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # course assignments without grades: not in the file
    pages: int = 0  # feedback pages whose grade was brought up to date


def graded_rows(out: Path) -> Grades:
    """The class's grades; an error that says what to do when OUT holds no graded rows."""
    grades = class_grades(out)
    if not grades.rows:
        raise LmsError(f"{results.results_dir(out)}: no graded rows; "
                       f"run `python -m grader autograde SUBMISSIONS --out {out}` first")
    return grades


def left_to_grade(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    """{(student, assignment): its rows with written answers still to grade}, rows an override set apart."""
    found: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        if r.to_grade and not r.override:
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


def student_dues(roster: Roster | None, extensions: dict[str, datetime]) -> dict[str, datetime]:
    """Each student's own deadline: the extensions file, else the roster's."""
    dues = {s.student_id: parse_time(s.due) for s in (roster.students if roster else ()) if s.due}
    return {**dues, **extensions}


def comment(total: Total) -> str:
    """The one line an LMS shows as feedback: each notebook's grade in the words of its page's grade block."""
    one = len(total.rows) == 1
    return " | ".join(("" if one else f"{r.notebook}: ") + " ".join(standing(r)) for r in total.rows)


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
                 every: dict[tuple[str, str], Total] | None = None) -> list[list[str]]:
    """Canvas's import CSV as rows: header, the Points Possible row (from `every` total, those left blank
    included), one row per gradebook student."""
    identity = [c for c in gradebook.columns if c in CANVAS_IDENTITY]
    header = identity + list(columns.values())
    points = [f"{most(every or found, assignment):.2f}" for assignment in columns]
    table = [header, [f"    {POINTS_POSSIBLE}"] + [""] * (len(identity) - 1) + points]
    for s in gradebook.students:
        cells = [s.row.get(c, "") for c in identity]
        for assignment in columns:
            t = found.get((s.student_id, assignment))
            cells.append(f"{t.lms_score:.2f}" if t else "")
        table.append(cells)
    return table


def most(found: dict[tuple[str, str], Total], assignment: str) -> float:
    """The points an assignment is out of, as the LMS gets them."""
    return max((t.lms_max for (s, a), t in found.items() if a == assignment), default=0.0)


def grader_maximum(found: dict[tuple[str, str], Total], assignment: str) -> float:
    return max((t.max_score for (s, a), t in found.items() if a == assignment), default=0.0)


def lms_points(fmt: str, roster: Roster | None, columns: dict[str, str]) -> dict[str, float]:
    """{assignment: the LMS's points possible}, where the roster says (Canvas: the Points Possible row;
    Moodle: the worksheet's Maximum Grade)."""
    found = {}
    for assignment, column in columns.items():
        if fmt == "canvas":
            theirs = roster.points_possible.get(column, "")
        else:
            theirs = next((s.row.get("Maximum Grade", "") for s in roster.students if s.row.get("Maximum Grade")), "")
        try:
            found[assignment] = float(theirs)
        except ValueError:
            continue
    return found


# --- Moodle ------------------------------------------------------------------------------------

def moodle_table(worksheet: Roster, found: dict[tuple[str, str], Total], assignment: str) -> list[list[str]]:
    """The worksheet as Moodle wrote it, with Grade and Feedback comments filled in for graded students."""
    header = list(worksheet.columns) + ([] if "Feedback comments" in worksheet.columns else ["Feedback comments"])
    table = [header]
    for s in worksheet.students:
        line = dict(s.row)
        t = found.get((s.student_id, assignment))
        if t:
            line["Grade"] = f"{t.lms_score:.2f}"
            line["Feedback comments"] = comment(t)
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


def canvas_feedback_name(submitter: manifest.Submitter | None, section: manifest.Section | None, student: str,
                         page: str) -> str | None:
    """`<lastfirst>_<user id>_<attachment id>_feedback_<page>`, the name under which Canvas's "Re-Upload
    Submissions" attaches `page` (`<notebook>.html`) to the student's submission as a comment. Canvas reads
    the name so (canvas-lms, Assignment#infer_comment_context_from_filename): split on `_`, the first two
    all-digit parts are the user id and the attachment id, which must be one of the attachments of that user's
    submission; a name starting `._`, or whose last part starts with `link`, carries none. The ids are those of
    the file collect placed as the page's notebook, else of any file that student submitted. None when there
    is none (nothing submitted, anonymous grading)."""
    if submitter is None or not submitter.lms_id.isdigit():
        return None
    notebook = page.removesuffix(".html")
    if page.rsplit("_", 1)[-1].startswith("link"):  # Canvas would take it for a submitted URL's page
        page = f"{notebook}_page.html"
    entries = [f.entry for nb, f in submitter.notebooks.items() if nb == notebook]
    entries += [f.entry for f in submitter.notebooks.values()]
    entries += [u.entry for u in (section.unplaced if section else ()) if u.student == student]
    for entry in entries:
        named = formats.canvas_ids(entry)
        if named and named[1] == submitter.lms_id:
            who, uid, attachment = named
            if who.isdigit() or who.startswith("."):  # read as the user id, or a name Canvas skips
                who = "student"
            return f"{who}_{uid}_{attachment}_feedback_{page}"
    return None


def feedback_zip(out: Path, fmt: str, target: Path, students: list[Student], assignment: str,
                 collected: manifest.Manifest | None) -> tuple[int, list[str]]:
    """One assignment's feedback pages laid out for the LMS's upload; (students in it, students left out
    with why).

    Canvas ("Re-Upload Submissions" on the assignment's page): `<lastfirst>_<user id>_<attachment id>_feedback_<notebook>.html`,
    flat (canvas_feedback_name). Moodle ("Upload multiple feedback files in a zip"): `<Full name>_<participant id>_assignsubmission_file_/feedback.html`
    (one page per notebook, named after it, when an assignment has several). nbgrader's exchange:
    `feedback/<student>/<assignment>/<notebook>.html` beside the `timestamp.txt` and `submission_secret.txt`
    the student submitted, as `nbgrader release_feedback` reads them in the course folder."""
    section = collected.assignments.get(assignment) if collected else None
    count, missed = 0, []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for s in students:
            pages = feedback_files(out, s.student_id, assignment)
            if not pages:
                continue
            submitter = section.submissions.get(s.student_id) if section else None
            names = {}
            for page in pages:
                if fmt == "canvas":
                    name = canvas_feedback_name(submitter, section, s.student_id, page.name)
                    if name is None:
                        break
                    names[page] = name
                elif fmt == "moodle":
                    who = s.name or f"Participant {s.lms_id}"
                    names[page] = f"{who}_{s.lms_id}_assignsubmission_file_/" + ("feedback.html" if len(pages) == 1 else page.name)
                else:
                    names[page] = f"feedback/{s.student_id}/{assignment}/{page.name}"
            if fmt == "canvas" and len(names) < len(pages):
                missed.append(f"{s.student_id} (no file of theirs in the Canvas export collect read: Canvas attaches "
                              f"feedback only to a file the student submitted)")
                continue
            for page, arcname in names.items():
                z.writestr(arcname, page.read_bytes())
            if fmt == "nbgrader":
                beside = submitter.beside_feedback if submitter else {}
                for name, text in sorted(beside.items()):
                    z.writestr(f"feedback/{s.student_id}/{assignment}/{name}", text)
                if not {"timestamp.txt", "submission_secret.txt"} <= set(beside):
                    missed.append(f"{s.student_id} (pages written, but no timestamp.txt and submission_secret.txt from "
                                  f"nbgrader's exchange: nbgrader release_feedback needs them)")
            count += 1
    return count, missed


def feedback_targets(target: Path, assignments: list[str]) -> dict[str, Path]:
    """One zip per assignment (an LMS takes feedback one assignment at a time): FILE itself for one,
    FILE-<assignment>.zip for several."""
    if len(assignments) == 1:
        return {assignments[0]: target}
    return {a: target.with_name(f"{target.stem}-{a}{target.suffix or '.zip'}") for a in assignments}


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
           id_column: str | None = None, tz=None, points: str | None = None, ungraded: str = "refuse") -> Exported:
    """Write OUT's grades as `fmt` to `to` (see the module's docstring), after recording the export's
    choices in OUT/policy.json and bringing grades.csv and the feedback pages up to date with them.

    `policy` (None: the one recorded for each assignment, if any; kind `none`: remove it) with `due` and
    `extensions`; `points` (`scale` or `as_graded`) when the LMS's points possible differ from the grader's;
    `ungraded` (`refuse` or `blank`) while written answers are left to grade."""
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
            raise LmsError(f"{roster_path}: a {FORMAT_NAMES[roster.format]}, but --format {fmt} needs "
                           f"{'the gradebook exported from Canvas' if fmt == 'canvas' else 'the grading worksheet downloaded from Moodle'}")
    grades = graded_rows(out)
    graded = grades.assignments
    result = Exported(Path(to), details_path(Path(to)), warnings=list(grades.unmatched))
    if assignments:
        unknown = [a for a in assignments if a not in graded]
        if unknown:
            raise LmsError(f"{out}: no grades for {', '.join(unknown)} (graded: {', '.join(graded)})")
    if fmt == "moodle":
        if not assignments and len(graded) > 1:
            raise LmsError(f"--format moodle: a worksheet holds one assignment; choose it with --assignment "
                           f"({', '.join(graded)})")
        assignments = (assignments or graded)[:1]
    mapping = dict(mapping or {})
    for assignment in [a for a in mapping if a not in graded]:
        result.warnings.append(f"--map {assignment}: skipped, no grades for it in {out} yet (graded: {', '.join(graded)})")
        del mapping[assignment]
    wanted = assignments or graded
    pending = left_to_grade([r for r in grades.rows if r.assignment in wanted])
    if pending and ungraded == "refuse":
        raise LmsError(f"{ungraded_message(pending, out)}; or pass --ungraded blank to leave those students' "
                       f"assignments blank in the file (the LMS keeps what it has); nothing was written")
    result.left_out = [a for a in layout.assignments() if a not in graded]
    if fmt == "canvas":
        result.columns = canvas_columns(roster, wanted, mapping)
    elif fmt == "moodle":
        result.columns = {wanted[0]: "Grade"}
    if roster is not None and fmt != "nbgrader":
        listed = roster.by_student_id()
        graded_students = sorted({r.student_id for r in grades.rows if r.assignment in wanted})
        if not any(s in listed for s in graded_students):
            raise LmsError(f"{roster_path}: none of the graded students ({', '.join(graded_students[:5])}...) "
                           f"is on it under {roster.id_column!r}; choose the column that holds their ids with --id-column")
    chosen = choose(out, grades, wanted, policy, due, extensions or {}, roster,
                    lms_points(fmt, roster, result.columns) if fmt != "nbgrader" else {}, points, fmt, result.columns)
    if chosen != policies.load(out):
        policies.save(out, chosen)
        grades = graded_rows(out)
    result.pages = len(bring_up_to_date(out, grades))
    every = {k: t for k, t in grades.totals.items() if k[1] in wanted}
    pending = left_to_grade([r for r in grades.rows if r.assignment in wanted])
    if pending:
        result.warnings.append("left blank: " + ungraded_message(pending, out))
    found = {k: t for k, t in every.items() if k not in pending}
    if fmt == "canvas":
        table = canvas_table(roster, found, result.columns, every)
    elif fmt == "moodle":
        table = moodle_table(roster, found, wanted[0])
    else:
        table = nbgrader_table(found, roster)
    if roster is not None:
        listed = roster.by_student_id()
        missing = sorted({s for (s, a) in found if s not in listed})
        if missing:
            result.warnings.append(f"not in {roster_path.name}, so not exported: {', '.join(missing)}")
        result.written = sum(1 for (s, a) in found if s in listed)
    else:
        result.written = len(found)
    write_csv(result.path, table)
    people = roster.by_student_id() if roster else {}
    details = [DETAIL_COLUMNS] + [
        [t.student, people[t.student].lms_id if t.student in people else "", t.assignment,
         result.columns.get(t.assignment, ""), f"{t.raw:g}",
         "" if t.late_flag is None else str(t.late_flag).lower(), t.submitted_at, t.due, f"{t.penalty:g}",
         f"{t.score:g}", f"{t.max_score:g}", f"{t.lms_score:g}", f"{t.lms_max:g}", "; ".join(t.notebooks), t.note]
        for t in sorted(found.values(), key=lambda t: (t.assignment, t.student))]
    write_csv(result.details, details)
    if feedback is not None:
        students = list(roster.students) if roster else [Student(s, s) for s in sorted({s for s, a in found})]
        for assignment, target in feedback_targets(Path(feedback), wanted).items():
            count, missed = feedback_zip(out, fmt, target, students, assignment, collected.manifest)
            result.feedback.append(target)
            if missed:
                result.warnings.append(f"{target.name}: {len(missed)} student(s) without feedback in it: "
                                       + "; ".join(missed))
    return result


def choose(out: Path, grades: Grades, wanted: list[str], policy: Policy | None, due: datetime | None,
           extensions: dict[str, datetime], roster: Roster | None, theirs: dict[str, float], points: str | None,
           fmt: str, columns: dict[str, str]) -> dict[str, policies.AssignmentPolicy]:
    """OUT's recorded choices with this export's: the late policy given (or kept), and how points meet the
    LMS's where they differ; an error that names both choices when they differ and none was ever made."""
    chosen = policies.load(out)
    dues = {s: iso(d) for s, d in student_dues(roster, extensions).items()}
    for assignment in wanted:
        old = chosen.get(assignment, policies.AssignmentPolicy())
        new = old
        if policy is not None:
            rule = "" if policy.kind == "none" else policy.text()
            new = replace(new, late_penalty=rule, due=iso(due) if due else (old.due if rule else ""),
                          dues=(dues or old.dues) if rule else {})
        elif due is not None or dues:
            new = replace(new, due=iso(due) if due else old.due, dues=dues or old.dues)
        rule = new.rule()
        if rule is not None and rule.kind == "per_day" and not (new.due or new.dues):
            raise LmsError("--late-penalty per day needs --due (and submission times) to count the days")
        if assignment in theirs:
            best = grader_maximum(grades.totals, assignment)
            differ = abs(theirs[assignment] - best) > 1e-9
            how = points or (old.points if differ and old.lms_points == theirs[assignment] else "")
            if differ and not how:
                lms = fmt.capitalize()
                raise LmsError(f"{columns.get(assignment, assignment)}: {lms} says {theirs[assignment]:g} points possible, "
                               f"the grader's maximum for {assignment} is {best:g}; choose --scale-to-lms (scores "
                               f"scaled to {theirs[assignment]:g}) or --points-as-graded (scores as graded: set the "
                               f"assignment's points to {best:g} in {lms})")
            new = replace(new, points=how if differ else "", lms_points=theirs[assignment])
        if new != policies.AssignmentPolicy():
            chosen[assignment] = new
        else:
            chosen.pop(assignment, None)
    return chosen


def parse_mapping(items: list[str] | None) -> dict[str, str]:
    """`--map ASSIGNMENT=COLUMN` (repeatable) as a dict."""
    mapping = {}
    for item in items or []:
        assignment, sep, column = item.partition("=")
        if not sep or not assignment.strip() or not column.strip():
            raise LmsError(f'--map {item!r}: expected ASSIGNMENT=COLUMN, e.g. --map 01_packed_sequences="Packed sequences (4242)"')
        mapping[assignment.strip()] = column.strip()
    return mapping
