"""The collect manifest: SUBMISSIONS/collect-manifest.json, what a folder layout cannot say.

`collect` writes it (one file directly in SUBMISSIONS, never a student folder); `autograde` reads it
when present (roster students without a folder, the unplaced files, late flags and submission times)
and keeps, in OUT's own copy, the section of each assignment it graded (`keep_in`): OUT's copy holds
every assignment of the term, each as its last collect left it, and `export` reads it. A hand-laid
SUBMISSIONS without one grades as before.

This module owns the format: the others see a `Manifest` (a `Section` per assignment, a `Submitter` per
student, a `matching.Filed` for every file laid out or left out), and only `to_json`/`from_json` know
the file's keys. Format (version 1):

    {"version": 1,
     "roster": null | {"source", "format", "id_column",
                       "students": [{"student_id", "lms_id", "name", "email", "due"}]},
     "assignments": {"<assignment>": {
         "lms": "canvas|moodle|nbgrader", "export": "<path>", "collected_at": "<ISO time>",
         "submissions": {"<student_id>": {"lms_id", "name", "on_roster": true|false|null (no roster),
                                          "late": true|false|null, "submitted_at": "<ISO time>|''",
                                          "notebooks": {"<notebook>": {"entry", "file", "how"}},
                                          "beside_feedback": {"<file name>": "<text>"} (optional)}},
         "not_submitted": ["<student_id>", ...],
         "not_on_roster": ["<student_id>", ...],
         "unplaced": [{"student": "<student_id>|''", "entry", "reason"}],
         "skipped": <number of debris entries ignored>}}}
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from grader.course.matching import Filed
from grader.errors import LmsError
from grader.lms.roster import Roster, Student
from grader.results import Row

MANIFEST_NAME = "collect-manifest.json"
VERSION = 1
NO_STUDENT = "(no student)"  # how the report lists what belongs to nobody known


@dataclass(frozen=True)
class Submitter:
    """One student's submission of one assignment, as collect found it."""

    lms_id: str
    name: str = ""
    on_roster: bool | None = None  # None: collected without a roster
    late: bool | None = None  # None: the LMS did not say
    submitted_at: str = ""  # ISO 8601, '' when the LMS did not say
    notebooks: dict[str, Filed] = field(default_factory=dict)  # notebook -> the file laid out as it
    # Files the LMS wants back beside the feedback, by name, as submitted (nbgrader's exchange:
    # timestamp.txt and submission_secret.txt, without which `nbgrader release_feedback` cannot hand it back).
    beside_feedback: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """One assignment's collect: from which export, who submitted what, who did not, what went nowhere."""

    lms: str = ""
    export: str = ""
    collected_at: str = ""
    submissions: dict[str, Submitter] = field(default_factory=dict)
    not_submitted: list[str] = field(default_factory=list)
    not_on_roster: list[str] = field(default_factory=list)
    unplaced: list[Filed] = field(default_factory=list)
    skipped: int = 0  # debris entries ignored


@dataclass(frozen=True)
class Manifest:
    """The whole file: the roster collect was given (or remembered) and one section per assignment."""

    roster: Roster | None = None
    assignments: dict[str, Section] = field(default_factory=dict)

    def with_assignment(self, assignment: str, section: Section, roster: Roster | None) -> Manifest:
        """This manifest with `assignment`'s section replaced (and the roster, when one was given)."""
        return Manifest(roster if roster is not None else self.roster, {**self.assignments, assignment: section})


def manifest_path(folder: Path) -> Path:
    return folder / MANIFEST_NAME


# --- the format: written and read here only --------------------------------------------------------

def to_json(manifest: Manifest) -> dict:
    """The manifest as the file holds it (see the module's docstring)."""
    roster = None
    if manifest.roster is not None:
        r = manifest.roster
        roster = {"source": r.source, "format": r.format, "id_column": r.id_column,
                  "students": [{"student_id": s.student_id, "lms_id": s.lms_id, "name": s.name, "email": s.email,
                                "due": s.due} for s in r.students]}
    return {"version": VERSION, "roster": roster, "assignments": {
        assignment: {
            "lms": section.lms, "export": section.export, "collected_at": section.collected_at,
            "submissions": {student: {
                "lms_id": sub.lms_id, "name": sub.name, "on_roster": sub.on_roster, "late": sub.late,
                "submitted_at": sub.submitted_at,
                "notebooks": {nb: {"entry": f.entry, "file": f.file, "how": f.why} for nb, f in sub.notebooks.items()},
                **({"beside_feedback": dict(sub.beside_feedback)} if sub.beside_feedback else {}),
            } for student, sub in section.submissions.items()},
            "not_submitted": list(section.not_submitted), "not_on_roster": list(section.not_on_roster),
            "unplaced": [{"student": u.student, "entry": u.entry, "reason": u.why} for u in section.unplaced],
            "skipped": section.skipped,
        } for assignment, section in manifest.assignments.items()}}


def from_json(data: dict) -> Manifest:
    """The manifest a file holds; KeyError, TypeError or AttributeError when it is not one."""
    roster = None
    if data.get("roster"):
        r = data["roster"]
        roster = Roster(r.get("source", "manifest"), r.get("format", "plain"), r.get("id_column", ""),
                        tuple(Student(s["student_id"], s["lms_id"], s.get("name", ""), s.get("email", ""),
                                      s.get("due", "")) for s in r.get("students", [])))
    assignments = {}
    for assignment, section in data.get("assignments", {}).items():
        submissions = {student: Submitter(
            sub.get("lms_id", ""), sub.get("name", ""), sub.get("on_roster"), sub.get("late"),
            sub.get("submitted_at", "") or "",
            {nb: Filed(f.get("file", ""), nb, f.get("how", ""), student, f.get("entry", ""))
             for nb, f in sub.get("notebooks", {}).items()},
            {str(k): str(v) for k, v in (sub.get("beside_feedback") or {}).items()},
        ) for student, sub in section.get("submissions", {}).items()}
        unplaced = [Filed(u["entry"], why=u["reason"], student=u.get("student") or "", entry=u["entry"])
                    for u in section.get("unplaced", [])]
        assignments[assignment] = Section(section.get("lms", ""), section.get("export", ""),
                                          section.get("collected_at", ""), submissions,
                                          list(section.get("not_submitted", [])), list(section.get("not_on_roster", [])),
                                          unplaced, int(section.get("skipped", 0)))
    return Manifest(roster, assignments)


def load(folder: Path) -> Manifest | None:
    """The manifest in `folder` (SUBMISSIONS, or OUT's copy), None when there is none."""
    path = manifest_path(folder)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LmsError(f"{path}: unreadable ({exc}); run collect again, or remove it to grade the folder as laid out") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise LmsError(f"{path}: not a version-{VERSION} collect manifest; run collect again")
    try:
        return from_json(data)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise LmsError(f"{path}: a version-{VERSION} collect manifest with a broken entry ({type(exc).__name__}: "
                       f"{exc}); run collect again") from None


def save(folder: Path, manifest: Manifest) -> Path:
    """Write the manifest whole, then rename, so a reader never sees half of it."""
    path = manifest_path(folder)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(to_json(manifest), f, indent=1, ensure_ascii=False, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)
    return path


def merged(kept: Manifest | None, graded: Manifest | None, assignments: Iterable[str],
           students: Iterable[str] | None = None) -> Manifest | None:
    """OUT's manifest after a run over `assignments` (and `students`; None: all) graded from a folder whose
    manifest is `graded` (None: a folder laid out by hand): each graded assignment's section (only those
    students' entries, for a `--student` run) as `graded` says, or gone when it says nothing of it; every
    other assignment's section as `kept` had it. None when nothing is left."""
    sections = dict(kept.assignments) if kept else {}
    for assignment in assignments:
        new = graded.assignments.get(assignment) if graded else None
        if students is None:
            if new is None:
                sections.pop(assignment, None)
            else:
                sections[assignment] = new
            continue
        old = sections.get(assignment) or new or Section()
        chosen = set(students)
        subs = {s: sub for s, sub in old.submissions.items() if s not in chosen}
        subs.update({s: sub for s, sub in (new.submissions.items() if new else ()) if s in chosen})
        sections[assignment] = dataclasses.replace(
            old, submissions=dict(sorted(subs.items())),
            not_submitted=sorted({s for s in old.not_submitted if s not in chosen} |
                                 {s for s in (new.not_submitted if new else ()) if s in chosen}),
            unplaced=[u for u in old.unplaced if u.student not in chosen] +
                     [u for u in (new.unplaced if new else ()) if u.student in chosen])
    roster = (graded.roster if graded and graded.roster is not None else None) or (kept.roster if kept else None)
    if not sections and roster is None:
        return None
    return Manifest(roster, sections)


def keep_in(out: Path, graded: Manifest | None, assignments: Iterable[str], students: Iterable[str] | None = None) -> None:
    """Update OUT's copy of the manifest after a run (see `merged`); the file goes when nothing is left."""
    kept = merged(load(out), graded, list(assignments), None if students is None else list(students))
    if kept is not None:
        out.mkdir(parents=True, exist_ok=True)
        save(out, kept)
    elif manifest_path(out).exists():
        manifest_path(out).unlink()


# --- what autograde and export take from it ----------------------------------------------------------

@dataclass(frozen=True)
class Collected:
    """What autograde takes from a manifest; empty when SUBMISSIONS has none."""

    roster_students: tuple[str, ...] = ()
    id_column: str = ""
    unplaced: dict = field(default_factory=dict)  # student (or NO_STUDENT) -> ["entry: reason"]
    late: dict = field(default_factory=dict)  # (student, assignment) -> True | False | None
    submitted_at: dict = field(default_factory=dict)  # (student, assignment) -> ISO time
    notes: dict = field(default_factory=dict)  # (student, assignment, notebook) -> how the file was placed
    submitted_unplaced: dict = field(default_factory=dict)  # (student, assignment) -> what they sent instead
    manifest: Manifest | None = field(default=None, compare=False, repr=False)  # the whole file, as read

    @property
    def present(self) -> bool:
        return bool(self.roster_students or self.late or self.unplaced or self.notes)


def read(folder: Path, assignments: Iterable[str] | None = None) -> Collected:
    """What the manifest in `folder` (SUBMISSIONS, or OUT's copy) says of the given assignments (all when None)."""
    return collected_from(load(folder), assignments)


def collected_from(manifest: Manifest | None, assignments: Iterable[str] | None = None) -> Collected:
    """What autograde and export take from `manifest`, for the given assignments (all when None)."""
    if manifest is None:
        return Collected()
    wanted = set(assignments) if assignments is not None else None
    unplaced: dict[str, list[str]] = {}
    late, times, notes, sent = {}, {}, {}, {}
    for assignment, section in manifest.assignments.items():
        if wanted is not None and assignment not in wanted:
            continue
        for student, sub in section.submissions.items():
            late[(student, assignment)] = sub.late
            times[(student, assignment)] = sub.submitted_at
            for notebook, placed in sub.notebooks.items():
                if placed.why:
                    notes[(student, assignment, notebook)] = placed.why
        for item in section.unplaced:
            unplaced.setdefault(item.student or NO_STUDENT, []).append(f"{assignment}: {item.entry}: {item.why}")
            if item.student:
                sent.setdefault((item.student, assignment), []).append(
                    f"{item.entry.rsplit('/', 1)[-1]} ({item.why})")
    roster = manifest.roster
    students = tuple(s.student_id for s in roster.students) if roster else ()
    return Collected(students, roster.id_column if roster else "", unplaced, late, times, notes,
                     {k: "; ".join(v) for k, v in sent.items()}, manifest)


def students_to_grade(found: list[str], collected: Collected, only: list[str] | None = None) -> list[str]:
    """The student folders found, plus roster students without one (they get `not_submitted` rows)."""
    everyone = sorted(set(found) | set(collected.roster_students))
    return [s for s in everyone if only is None or s in only]


def annotate(rows: list[Row], collected: Collected) -> list[Row]:
    """`rows` (as graded) with `late`, `submitted_at` and how collect placed each file (in the detail)."""
    if not collected.present:
        return list(rows)
    result = []
    for row in rows:
        key = (row.student_id, row.assignment)
        flag = collected.late.get(key)
        changes = {"late": "" if flag is None else ("true" if flag else "false"),
                   "submitted_at": collected.submitted_at.get(key, "") or ""}
        extra = collected.notes.get((row.student_id, row.assignment, row.notebook))
        if not extra and row.status == "missing" and key in collected.submitted_unplaced:
            extra = f"submitted instead: {collected.submitted_unplaced[key]}"
        if extra:
            changes["detail"] = "; ".join(filter(None, [extra, row.detail]))
        result.append(dataclasses.replace(row, **changes))
    return result


def merge_unplaced(*parts: dict) -> dict[str, list[str]]:
    """One {student: [lines]} from several (autograde's own and the manifest's)."""
    merged: dict[str, list[str]] = {}
    for part in parts:
        for student, lines in part.items():
            merged.setdefault(student, [])
            merged[student] += [line for line in lines if line not in merged[student]]
    return merged
