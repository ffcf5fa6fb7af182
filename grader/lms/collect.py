"""`collect`: lay out what an LMS exported as SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb.

`plan` decides everything from the export's entry names, the roster and the released notebooks, and
touches nothing; `collect` opens the export read-only, writes the planned files under `into` (and
nowhere else) and records the manifest.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from grader.course import layout
from grader.course.matching import Filed, place
from grader.errors import LmsError
from grader.lms import archive, formats, manifest
from grader.lms.archive import Export, Limits
from grader.lms.formats import Submitted
from grader.lms.roster import FORMAT_NAMES, Roster, Student
from grader.lms.times import iso, parse_time

MOODLE_LATE_WORDS = ("late",)  # Moodle's worksheet Status: "Submitted for grading - ... submitted 2 days late"


@dataclass
class Plan:
    """What collect does with one export for one assignment."""

    assignment: str
    lms: str
    placed: list[Filed] = field(default_factory=list)  # `index`: which of `submitted` it is
    unplaced: list[Filed] = field(default_factory=list)
    students: dict[str, manifest.Submitter] = field(default_factory=dict)  # their notebooks are in `placed`
    not_submitted: list[str] = field(default_factory=list)
    not_on_roster: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    other_assignments: int = 0
    submitted: list[Submitted] = field(default_factory=list)  # what the export said, as plan() was given it

    def source(self, placed: Filed) -> Submitted:
        """The export's entry behind a placed file."""
        return self.submitted[placed.index]

    def section(self, export: str) -> manifest.Section:
        """This plan as the manifest's section for its assignment."""
        submissions = {student: replace(sub, notebooks={p.notebook: p for p in self.placed if p.student == student})
                       for student, sub in self.students.items()}
        return manifest.Section(self.lms, export, iso(datetime.now(timezone.utc).astimezone()), submissions,
                                self.not_submitted, self.not_on_roster, list(self.unplaced), len(self.skipped))


def safe_folder_name(name: str) -> str | None:
    """Why `name` cannot be a student folder (None when it can)."""
    if not name or name in {".", ".."} or any(c in name for c in "/\\\x00") or name.startswith("."):
        return f"the student id {name!r} cannot be a folder name"
    if name in archive.DEBRIS or len(name.encode()) > 200:
        return f"the student id {name!r} cannot be a folder name"
    return None


def moodle_times(student: Student | None, tz=None) -> tuple[bool | None, str]:
    """(late, submitted at) from a Moodle worksheet line, when the roster is one."""
    if student is None or "Last modified (submission)" not in student.row:
        return None, ""
    try:
        when = parse_time(student.row.get("Last modified (submission)"), tz)
    except ValueError:
        when = None
    status = student.row.get("Status", "").lower()
    late = any(f" {w}" in f" {status}" for w in MOODLE_LATE_WORDS) if when or status else None
    return late, iso(when)


def nowhere(student: str, entry: str, why: str) -> Filed:
    """An entry of the export that is not laid out, and why (`student` is '' when nobody can be told)."""
    return Filed(entry, why=why, student=student, entry=entry)


def plan(submitted: list[Submitted], refused: list[Filed], assignment: str, notebooks: list[str], lms_name: str,
         roster: Roster | None = None, due: datetime | None = None, extensions: dict | None = None, tz=None) -> Plan:
    """Decide where every entry goes. Pure: names in, a plan out.

    Students are the roster's when their LMS id is on it (else their LMS id, and listed); the newest of
    several files for one notebook wins; with `due` (moved per student by the roster's or `extensions`'
    dates), a submission time decides lateness."""
    extensions = extensions or {}
    result = Plan(assignment, lms_name, submitted=list(submitted))
    by_lms = roster.by_lms_id() if roster else {}
    groups: dict[str, list[int]] = {}  # LMS id -> positions in `submitted` of its usable files
    result.unplaced += [replace(r, why=f"refused: {r.why}") for r in refused]
    known = {}
    for i, sub in enumerate(submitted):
        if not sub.unusable:
            groups.setdefault(sub.lms_id, []).append(i)
            continue
        student = (by_lms[sub.lms_id].student_id if sub.lms_id in by_lms else sub.lms_id) if sub.lms_id else ""
        result.unplaced.append(nowhere(student, sub.entry.name, sub.unusable))
        if student:
            known[student] = sub
    for lms_id, positions in sorted(groups.items()):
        subs = [submitted[i] for i in positions]
        entry = by_lms.get(lms_id)
        student = entry.student_id if entry else lms_id
        unsafe = safe_folder_name(student)
        if unsafe:
            result.unplaced += [nowhere("", s.entry.name, unsafe) for s in subs]
            continue
        placement = place([s.file for s in subs], notebooks, lambda f: (subs[f.index].newness, f.why == "", f.index),
                          assignment, "the newest")
        for f in placement.placed:
            result.placed.append(replace(f, student=student, entry=subs[f.index].entry.name, index=positions[f.index]))
        result.unplaced += [nowhere(student, subs[u.index].entry.name, u.why) for u in placement.unplaced]
        flags = [subs[f.index].late for f in placement.placed] or [s.late for s in subs]
        late = True if any(flags) else (False if any(f is False for f in flags) else None)
        times = [t for t in (subs[f.index].submitted_at for f in placement.placed) if t] or \
                [s.submitted_at for s in subs if s.submitted_at]
        when = max(times, key=lambda t: parse_time(t)) if times else ""
        if lms_name == "moodle" and entry is not None:
            sheet_late, sheet_when = moodle_times(entry, tz)
            late, when = (sheet_late if sheet_late is not None else late), (sheet_when or when)
        deadline = extensions.get(student) or (parse_time(entry.due) if entry and entry.due else None) or due
        if deadline is not None and when:
            late = parse_time(when) > deadline
        result.students[student] = manifest.Submitter(lms_id, (entry.name if entry else "") or subs[0].name,
                                                      None if roster is None else entry is not None, late, when)
        if roster is not None and entry is None:
            result.not_on_roster.append(student)
    for student, u in known.items():  # someone whose only entries could not be used
        if student not in result.students:
            entry = by_lms.get(u.lms_id)
            result.students[student] = manifest.Submitter(u.lms_id, (entry.name if entry else "") or u.name,
                                                          None if roster is None else entry is not None)
            if roster is not None and entry is None:
                result.not_on_roster.append(student)
    if roster is not None:
        result.not_submitted = sorted(s.student_id for s in roster.students if s.student_id not in result.students)
    result.not_on_roster.sort()
    return result


def collect(export_path: Path, assignment: str, into: Path, roster: Roster | None = None, lms_name: str | None = None,
            due: datetime | None = None, extensions: dict | None = None, limits: Limits = Limits(), tz=None) -> Plan:
    """Lay out `export_path` (zip or folder) for `assignment` under `into`; the plan, as carried out.

    Raises LmsError, before writing anything, when the layout cannot be told, when `into` would hold
    the export, or when a folder it must write was laid out by hand."""
    notebooks = [nb.name for nb in layout.notebooks_of(assignment)]
    export_path, into = Path(export_path).resolve(), Path(into).resolve()
    if export_path.is_dir() and (into == export_path or export_path in into.parents):
        raise LmsError(f"--into {into} is inside the export {export_path}; choose a folder outside it")
    with archive.open_export(export_path, limits) as export:
        top = export.common_folder()
        if top and formats.detect(export.entries) is None:
            export.within(top)  # the LMS's files, unzipped or zipped again inside one folder
        kind = lms_name or formats.detect(export.entries)
        if kind is None:
            raise LmsError(f"{export_path}: cannot tell which LMS exported this (no Canvas file names, Moodle "
                           f"folders or nbgrader timestamp.txt found); name it with --lms canvas|moodle|nbgrader")
        others, beside = 0, {}
        if kind == "canvas":
            submitted = formats.canvas(export.entries)
        elif kind == "moodle":
            submitted = formats.moodle(export.entries)
        elif kind == "nbgrader":
            submitted, others = formats.nbgrader(export.entries, assignment,
                                                 lambda e: export.read(e, 4096).decode("utf-8", "replace"), beside)
        else:
            raise LmsError(f"--lms {kind}: expected one of {', '.join(formats.LMS_NAMES)}")
        previous = (manifest.load(into) if into.is_dir() else None) or manifest.Manifest()
        if roster is None:
            roster = previous.roster  # the one an earlier collect recorded: not named again
        check_roster(roster, kind, export_path)
        result = plan(submitted, export.refused, assignment, notebooks, kind, roster, due, extensions, tz)
        for student, sub in result.students.items():
            files = beside.get(sub.lms_id)
            if files:
                result.students[student] = replace(sub, beside_feedback=files)
        result.skipped, result.other_assignments = list(export.skipped), others
        verify(export, result)
        if not result.placed:
            return result  # nothing written, not even the manifest
        prepare(into, assignment, result, previous)
        write(export, into, assignment, result)
    manifest.save(into, previous.with_assignment(assignment, result.section(str(export_path)), roster))
    return result


def check_roster(roster: Roster | None, kind: str, export: Path) -> None:
    """A roster of another LMS than the export's matches nobody: an error naming both (a plain CSV fits any)."""
    if roster is not None and roster.format not in ("plain", kind):
        wanted = {"canvas": "Canvas's gradebook export", "moodle": "Moodle's grading worksheet",
                  "nbgrader": "a plain CSV student_id,lms_id"}[kind]
        raise LmsError(f"{roster.source}: a {FORMAT_NAMES[roster.format]}, but {export.name} is a {kind} export: "
                       f"give {wanted} (or a plain CSV student_id,lms_id)")


def prepare(into: Path, assignment: str, result: Plan, previous: manifest.Manifest) -> None:
    """Make room: remove what an earlier collect of this assignment wrote; refuse to touch hand-laid folders."""
    section = previous.assignments.get(assignment)
    earlier = set(section.submissions if section else ())
    targets = {p.student for p in result.placed} | set(result.students)
    clash = sorted(s for s in targets - earlier if (into / s / assignment).exists())
    if clash:
        raise LmsError(f"{into}: {', '.join(f'{s}/{assignment}' for s in clash)} already exist and were not "
                       f"written by collect; move them away, or collect into another folder")
    links = sorted(s for s in targets if not safe_folder_name(s) and
                   ((into / s).is_symlink() or (into / s / assignment).is_symlink()))
    if links:
        raise LmsError(f"{into}: {', '.join(links)} is a symbolic link; collect writes only real folders "
                       f"under --into: remove the link, or collect into another folder")
    into.mkdir(parents=True, exist_ok=True)
    for student in sorted(earlier):
        if safe_folder_name(student) or (into / student).is_symlink():
            continue  # never follow a link out of --into
        folder = into / student / assignment
        if folder.is_symlink():
            folder.unlink()
        elif folder.is_dir():
            shutil.rmtree(folder)
        parent = into / student
        if parent.is_dir() and not parent.is_symlink() and not any(parent.iterdir()):
            parent.rmdir()


def inside(root: Path, path: Path) -> bool:
    """True when `path`, every link resolved, is below `root`."""
    return root.resolve() in path.resolve().parents


READ_ERRORS = (archive.TooLarge, zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError)


def _unreadable(exc: Exception) -> str:
    return f"refused: {exc}" if isinstance(exc, archive.TooLarge) else f"refused: unreadable ({type(exc).__name__}: {exc})"


def verify(export: Export, result: Plan) -> None:
    """Read every placed entry once before anything is written (a size past the limit, a bad CRC: a zip
    bomb whose header lies); those that fail move to the unplaced list."""
    kept = []
    for p in result.placed:
        try:
            export.read(result.source(p).entry)
        except READ_ERRORS as exc:
            result.unplaced.append(nowhere(p.student, p.entry, _unreadable(exc)))
        else:
            kept.append(p)
    result.placed = kept


def write(export: Export, into: Path, assignment: str, result: Plan) -> None:
    """Write each placed file under `into`, and an empty assignment folder for someone whose files were
    all unplaced (autograde then says `missing`, not `not_submitted`)."""
    kept = []
    for p in result.placed:
        folder = into / p.student / assignment
        try:
            data = export.read(result.source(p).entry)
        except READ_ERRORS as exc:  # changed since verify()
            result.unplaced.append(nowhere(p.student, p.entry, _unreadable(exc)))
            continue
        _write_file(into, folder, folder / f"{p.notebook}.ipynb", data)
        kept.append(p)
    result.placed = kept
    for student in result.students:
        folder = into / student / assignment
        if not safe_folder_name(student) and not folder.exists():
            _make_dirs(into, folder)


def _make_dirs(into: Path, folder: Path) -> None:
    for part in (folder.parent, folder):
        if part.is_symlink():
            raise LmsError(f"{part} is a symbolic link; collect writes only real folders under {into}")
        part.mkdir(exist_ok=True)
    if not inside(into, folder):
        raise LmsError(f"{folder} resolves outside {into}; nothing more written")


def _write_file(into: Path, folder: Path, target: Path, data: bytes) -> None:
    _make_dirs(into, folder)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
