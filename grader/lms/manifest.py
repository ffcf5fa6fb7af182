"""The collect manifest: SUBMISSIONS/collect-manifest.json, what a folder layout cannot say.

`collect` writes it (one file directly in SUBMISSIONS, never a student folder); `autograde` reads it
when present (roster students without a folder, the unplaced files, late flags and submission times),
and `export` reads the copy autograde keeps in OUT. A hand-laid SUBMISSIONS without one grades as before.

Format (version 1):

    {"version": 1,
     "roster": null | {"source", "format", "id_column",
                       "students": [{"student_id", "lms_id", "name", "email", "due"}]},
     "assignments": {"<assignment>": {
         "lms": "canvas|moodle|nbgrader", "export": "<path>", "collected_at": "<ISO time>",
         "submissions": {"<student_id>": {"lms_id", "name", "on_roster": true|false|null (no roster),
                                          "late": true|false|null, "submitted_at": "<ISO time>|''",
                                          "notebooks": {"<notebook>": {"entry", "file", "how"}}}},
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

from grader.errors import LmsError
from grader.results import Row

MANIFEST_NAME = "collect-manifest.json"
VERSION = 1
NO_STUDENT = "(no student)"  # how the report lists what belongs to nobody known


def manifest_path(folder: Path) -> Path:
    return folder / MANIFEST_NAME


def empty() -> dict:
    return {"version": VERSION, "roster": None, "assignments": {}}


def load(folder: Path) -> dict | None:
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
    return data


def save(folder: Path, data: dict) -> Path:
    """Write the manifest whole, then rename, so a reader never sees half of it."""
    path = manifest_path(folder)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)
    return path


def with_assignment(data: dict | None, assignment: str, section: dict, roster: dict | None) -> dict:
    """`data` with `assignment`'s section replaced (and the roster, when one was given)."""
    data = json.loads(json.dumps(data)) if data else empty()
    data["assignments"][assignment] = section
    if roster is not None:
        data["roster"] = roster
    return data


def copy_into(out: Path, collected: Collected) -> None:
    """Keep a copy in OUT, for `export`, of the manifest the run graded with (and remove a stale one)."""
    data = collected.manifest
    if data is not None:
        out.mkdir(parents=True, exist_ok=True)
        save(out, data)
    elif manifest_path(out).exists():
        manifest_path(out).unlink()


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
    manifest: dict | None = field(default=None, compare=False, repr=False)  # the whole file, as read

    @property
    def present(self) -> bool:
        return bool(self.roster_students or self.late or self.unplaced or self.notes)


def for_autograde(submissions: Path, assignments: Iterable[str] | None = None) -> Collected:
    """Read SUBMISSIONS' manifest for the assignments being graded (all when None)."""
    return from_data(load(submissions), assignments)


def from_data(data: dict | None, assignments: Iterable[str] | None = None) -> Collected:
    if not data:
        return Collected()
    wanted = set(assignments) if assignments is not None else None
    roster = data.get("roster") or {}
    unplaced: dict[str, list[str]] = {}
    late, times, notes, sent = {}, {}, {}, {}
    for assignment, section in data.get("assignments", {}).items():
        if wanted is not None and assignment not in wanted:
            continue
        for student, sub in section.get("submissions", {}).items():
            late[(student, assignment)] = sub.get("late")
            times[(student, assignment)] = sub.get("submitted_at", "")
            for notebook, placed in sub.get("notebooks", {}).items():
                if placed.get("how"):
                    notes[(student, assignment, notebook)] = placed["how"]
        for item in section.get("unplaced", []):
            who = item.get("student") or NO_STUDENT
            unplaced.setdefault(who, []).append(f"{assignment}: {item['entry']}: {item['reason']}")
            if item.get("student"):
                sent.setdefault((item["student"], assignment), []).append(
                    f"{item['entry'].rsplit('/', 1)[-1]} ({item['reason']})")
    students = tuple(s["student_id"] for s in roster.get("students", []))
    return Collected(students, roster.get("id_column", ""), unplaced, late, times, notes,
                     {k: "; ".join(v) for k, v in sent.items()}, data)


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
