"""Finding submissions in an LMS export and reading one submitted notebook safely."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import layout
from .layout import IGNORED_NAMES, Notebook
from .integrity import scan_source
from .matching import tolerant_matches

MAX_NOTEBOOK_BYTES = 50 * 2**20


@dataclass(frozen=True)
class Job:
    """One row to produce: a student's notebook, or the reason there is none."""

    student: str
    notebook: Notebook
    path: Path | None
    absent: str = ""  # `missing` or `not_submitted` when path is None
    detail: str = ""


def ignored(path: Path) -> bool:
    """Hidden files, OS and LMS debris."""
    return path.name.startswith(".") or path.name in IGNORED_NAMES


def students_in(submissions: Path) -> list[str]:
    """Every student folder directly under `submissions`, sorted."""
    return sorted(p.name for p in submissions.iterdir() if p.is_dir() and not ignored(p))


def files_under(folder: Path) -> list[Path]:
    """Every file below `folder`, skipping ignored names at any depth."""
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(ignored(Path(part)) for part in rel.parts):
            found.append(path)
    return found


def collect(submissions: Path, notebooks: list[Notebook], students: list[str]) -> tuple[list[Job], dict[str, list[str]]]:
    """The jobs for `students` x `notebooks`, and each student's files that match no notebook."""
    jobs, unplaced = [], {}
    expected = {f"{nb.assignment}/{nb.filename}" for nb in notebooks}
    # Files of assignments not graded in this run are neither placed nor unplaced.
    others = tuple(f"{a}/" for a in layout.assignments() if a not in {nb.assignment for nb in notebooks})
    for student in students:
        folder = submissions / student
        files = files_under(folder) if folder.is_dir() else []
        rels = {str(p.relative_to(folder)): p for p in files}
        renamed = tolerant_matches(rels, notebooks)  # `seq2seq (1).ipynb` and such, placed with a detail
        for nb in notebooks:
            key = f"{nb.assignment}/{nb.filename}"
            if key in rels:
                jobs.append(Job(student, nb, rels[key]))
                continue
            if nb.key in renamed:
                jobs.append(Job(student, nb, rels[renamed[nb.key][0]], detail=renamed[nb.key][1]))
                continue
            found = sorted(r.split("/", 1)[1] for r in rels if r.startswith(nb.assignment + "/"))
            if (folder / nb.assignment).is_dir():
                listing = f" (found: {', '.join(found)})" if found else " (the folder is empty)"
                jobs.append(Job(student, nb, None, "missing", f"{student}/{nb.assignment}: no notebook named {nb.filename}{listing}"))
            else:
                jobs.append(Job(student, nb, None, "not_submitted", f"{student}: no folder {nb.assignment}/"))
        used = {rel for rel, _ in renamed.values()}
        strays = [r for r in rels if r not in expected and r not in used and not r.startswith(others)]
        if strays:
            unplaced[student] = sorted(strays)
    return jobs, unplaced


class InvalidNotebook(ValueError):
    """The file is not a notebook nbgrader can grade."""


def load(path: Path) -> nbformat.NotebookNode:
    """Read and validate a submitted notebook; InvalidNotebook says what is wrong."""
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise InvalidNotebook(f"{size / 2**20:.0f} MB is over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit")
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidNotebook(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or "cells" not in data:
        raise InvalidNotebook("JSON, but not a notebook (no cells)")
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidNotebook(f"not a valid notebook: {first}") from None
    return nb


def grade_id(cell) -> str | None:
    """The nbgrader grade id of a cell, if it has one."""
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta.get("grade_id") if isinstance(meta, dict) else None


def is_answer(meta: dict) -> bool:
    """A cell the student writes: a solution cell, or any cell without nbgrader metadata."""
    return bool(meta.get("solution")) or not meta.get("locked")


@dataclass
class Repaired:
    """A submission with its grade cells put back in shape, and what had to be done."""

    notebook: nbformat.NotebookNode
    tampering: list[str] = field(default_factory=list)
    cheats: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def repair(nb: nbformat.NotebookNode, source: nbformat.NotebookNode) -> Repaired:
    """Make `nb`'s nbgrader cells match `source`: drop copies, unmark renamed ids, reinsert deletions.

    nbgrader itself then restores the content of every locked and test cell (OverwriteCells). Done
    here because stock nbgrader aborts on a duplicated or renamed id, and silently scores a deleted
    test cell 0.
    """
    nb = copy.deepcopy(nb)
    known = {grade_id(c): c for c in source.cells if grade_id(c)}
    result = Repaired(nb)
    seen: set[str] = set()
    kept = []
    for cell in nb.cells:
        gid = grade_id(cell)
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if gid is None and meta:
            cell.metadata.pop("nbgrader")
        elif gid is not None and gid not in known:
            result.tampering.append(f"cell id {gid!r} is not in the assignment (renamed?); graded as plain code")
            cell.metadata.pop("nbgrader")
        elif gid in seen:
            result.tampering.append(f"cell {gid!r} appears more than once; extra copies ignored")
            if known[gid].metadata["nbgrader"].get("solution"):
                cell.metadata.pop("nbgrader")  # the student's code still runs, ungraded
            else:
                continue
        elif gid is not None:
            seen.add(gid)
            expected = known[gid].metadata["nbgrader"]
            changed = [k for k in ("grade", "solution", "locked", "points") if meta.get(k) != expected.get(k)]
            if changed:
                result.tampering.append(f"cell {gid!r} had its nbgrader metadata edited ({', '.join(changed)}); restored")
            cell.metadata["nbgrader"] = copy.deepcopy(expected)
        kept.append(cell)
    nb.cells = kept
    # Reinsert every deleted locked or test cell after the cell that precedes it in the source.
    order = [grade_id(c) for c in source.cells]
    for i, src in enumerate(source.cells):
        gid = grade_id(src)
        if gid is None or gid in seen or src.metadata["nbgrader"].get("solution"):
            continue
        result.tampering.append(f"cell {gid!r} was deleted; restored from the assignment")
        previous = next((order[j] for j in range(i - 1, -1, -1) if order[j] in seen), None)
        at = next((k + 1 for k, c in enumerate(nb.cells) if previous and grade_id(c) == previous), 0)
        nb.cells.insert(at, copy.deepcopy(src))
        seen.add(gid)
    missing_answers = [g for g, c in known.items() if c.metadata["nbgrader"].get("solution") and g not in seen]
    for gid in missing_answers:
        result.tampering.append(f"answer cell {gid!r} was deleted")
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and is_answer(meta):
            cheats, notes = scan_source(cell.source)
            result.cheats += cheats
            result.notes += notes
    result.cheats = list(dict.fromkeys(result.cheats))
    result.notes = list(dict.fromkeys(result.notes))
    return result
