"""Finding submissions in a folder laid out by an LMS export, reading them safely, and repairing their grade cells.

Repairing puts the grade cells back as released and says what had to be done; reading the student's own
code for cheats is integrity.py's (`scan_answers`, on the repaired notebook).
"""

from __future__ import annotations

import copy
import errno
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader.course import cells, layout
from grader.course.layout import IGNORED_NAMES, Notebook
from grader.course.matching import tolerant_matches

MAX_NOTEBOOK_BYTES = 50 * 2**20


@dataclass(frozen=True)
class Found:
    """Where one row's notebook is under SUBMISSIONS, or why there is none."""

    student: str
    notebook: Notebook
    path: Path | None
    absent: str = ""  # `missing` or `not_submitted` when path is None
    detail: str = ""


def ignored(path: Path) -> bool:
    """Hidden files, OS and LMS debris."""
    return path.name.startswith(".") or path.name in IGNORED_NAMES


def students_in(submissions: Path) -> list[str]:
    """Every student folder directly under `submissions`, sorted (links are not followed)."""
    return sorted(p.name for p in submissions.iterdir()
                  if p.is_dir() and not p.is_symlink() and not ignored(p))


def files_under(folder: Path) -> list[Path]:
    """Every entry below `folder` that is not a folder, skipping ignored names at any depth; links not followed."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not ignored(Path(d)) and not Path(root, d).is_symlink())
        found += [Path(root, f) for f in sorted(files) if not ignored(Path(f))]
        found += [Path(root, d) for d in os.listdir(root) if Path(root, d).is_symlink() and Path(root, d).is_dir()]
    return sorted(found)


def locate(submissions: Path, notebooks: list[Notebook], students: list[str]) -> tuple[list[Found], dict[str, list[str]]]:
    """Where each of `students` x `notebooks` is, and each student's files that match no notebook."""
    found, unplaced = [], {}
    expected = {f"{notebook.assignment}/{notebook.filename}" for notebook in notebooks}
    # Files of assignments not graded in this run are neither placed nor unplaced.
    others = tuple(f"{a}/" for a in layout.assignments() if a not in {notebook.assignment for notebook in notebooks})
    for student in students:
        folder = submissions / student
        files = files_under(folder) if folder.is_dir() else []
        rels = {str(p.relative_to(folder)): p for p in files}
        renamed = tolerant_matches(rels, notebooks)  # `seq2seq (1).ipynb` and such, placed with a detail
        for notebook in notebooks:
            key = f"{notebook.assignment}/{notebook.filename}"
            if key in rels:
                found.append(Found(student, notebook, rels[key]))
                continue
            if notebook.key in renamed:
                filed = renamed[notebook.key]
                found.append(Found(student, notebook, rels[filed.file], detail=filed.why))
                continue
            listed = sorted(r.split("/", 1)[1] for r in rels if r.startswith(notebook.assignment + "/"))
            if (folder / notebook.assignment).is_dir():
                listing = f" (found: {', '.join(listed)})" if listed else " (the folder is empty)"
                found.append(Found(student, notebook, None, "missing",
                                   f"{student}/{notebook.assignment}: no notebook named {notebook.filename}{listing}"))
            else:
                found.append(Found(student, notebook, None, "not_submitted", f"{student}: no folder {notebook.assignment}/"))
        used = {filed.file for filed in renamed.values()}
        strays = [r for r in rels if r not in expected and r not in used and not r.startswith(others)]
        if strays:
            unplaced[student] = sorted(strays)
    return found, unplaced


class InvalidNotebook(ValueError):
    """The file is not a notebook nbgrader can grade."""


def read_submitted(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of a submitted file, never following a link and never blocking; InvalidNotebook otherwise.

    Opened with O_NOFOLLOW and O_NONBLOCK, then checked to be a regular file before anything is read, and
    read with a bound: a link to /proc, a FIFO or a device is refused without being read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidNotebook("a symbolic link, not a notebook file: submit the file itself") from None
        raise InvalidNotebook(f"cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidNotebook("not a regular file (a device, a pipe or a socket): submit the notebook file itself")
        if info.st_size > limit:
            raise InvalidNotebook(f"{info.st_size / 2**20:.0f} MB is over the {limit // 2**20} MB limit")
        chunks, size = [], 0
        while chunk := os.read(fd, min(2**20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise InvalidNotebook(f"over the {limit // 2**20} MB limit")
        return b"".join(chunks)
    finally:
        os.close(fd)


def load(raw: bytes) -> nbformat.NotebookNode:
    """Parse and validate a submitted notebook; InvalidNotebook says what is wrong."""
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise InvalidNotebook(f"{len(raw) / 2**20:.0f} MB is over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidNotebook(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or not ("cells" in data or "worksheets" in data):  # worksheets: nbformat 3
        raise InvalidNotebook("JSON, but not a notebook (no cells)")
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidNotebook(f"not a valid notebook: {first}") from None
    return nb


@dataclass
class Repaired:
    """A submission with its grade cells put back in shape, and what had to be done."""

    nb: nbformat.NotebookNode
    tampering: list[str] = field(default_factory=list)


def repair(nb: nbformat.NotebookNode, released: nbformat.NotebookNode) -> Repaired:
    """Make `nb`'s nbgrader cells match the `released` notebook: drop copies, unmark renamed ids, reinsert deletions.

    nbgrader itself then restores the content of every locked and test cell (OverwriteCells). Done
    here because stock nbgrader aborts on a duplicated or renamed id, and silently scores a deleted
    test cell 0.
    """
    nb = copy.deepcopy(nb)
    known = {cells.grade_id(c): c for c in released.cells if cells.grade_id(c)}
    result = Repaired(nb)
    seen: set[str] = set()
    kept = []
    for cell in nb.cells:
        gid = cells.grade_id(cell)
        meta = cells.nbgrader_meta(cell)
        if gid is None and "nbgrader" in cell.get("metadata", {}):
            cell.metadata.pop("nbgrader")
        elif gid is not None and gid not in known:
            result.tampering.append(f"cell id {gid!r} is not in the assignment (renamed?); graded as plain code")
            cell.metadata.pop("nbgrader")
        elif gid in seen:
            result.tampering.append(f"cell {gid!r} appears more than once; extra copies ignored")
            if cells.is_solution(known[gid]):
                cell.metadata.pop("nbgrader")  # the student's code still runs, ungraded
            else:
                continue
        elif gid is not None:
            seen.add(gid)
            expected = cells.nbgrader_meta(known[gid])
            changed = [k for k in ("grade", "solution", "locked", "points") if meta.get(k) != expected.get(k)]
            if changed:
                result.tampering.append(f"cell {gid!r} had its nbgrader metadata edited ({', '.join(changed)}); restored")
            cell.metadata["nbgrader"] = copy.deepcopy(expected)
        kept.append(cell)
    nb.cells = kept
    # Reinsert every deleted locked or test cell after the cell that precedes it in the release.
    order = [cells.grade_id(c) for c in released.cells]
    for i, src in enumerate(released.cells):
        gid = cells.grade_id(src)
        if gid is None or gid in seen or cells.is_solution(src):
            continue
        result.tampering.append(f"cell {gid!r} was deleted; restored from the assignment")
        previous = next((order[j] for j in range(i - 1, -1, -1) if order[j] in seen), None)
        at = next((k + 1 for k, c in enumerate(nb.cells) if previous and cells.grade_id(c) == previous), 0)
        nb.cells.insert(at, copy.deepcopy(src))
        seen.add(gid)
    missing_answers = [g for g, c in known.items() if cells.is_solution(c) and g not in seen]
    for gid in missing_answers:
        result.tampering.append(f"answer cell {gid!r} was deleted")
    return result


def assignments_in(submissions: Path) -> set[str]:
    """The course's assignments that have a folder under some student in `submissions` (links not followed)."""
    known = set(layout.assignments())
    return {p.name for student in students_in(submissions) for p in (submissions / student).iterdir()
            if p.name in known and p.is_dir() and not p.is_symlink()}
