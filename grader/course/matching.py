"""Which submitted file is which released notebook, tolerating the renames browsers and LMSs make.

A file is placed when that is unambiguous, and the placement says how it was made:
- its exact name (`seq2seq.ipynb`);
- the same name up to case, separators and a copy mark: `Seq2Seq.ipynb`, `seq2seq (1).ipynb`
  (a browser's second download), `seq2seq-1.ipynb` (Canvas's duplicate), `seq2seq - Copy.ipynb`,
  `Copy of seq2seq.ipynb`, `seq2seq.ipynb.json` (a browser saving the JSON);
- the only notebook left, under any name, when exactly one of the assignment's notebooks is still
  without a file.
Where several files claim one notebook, the newest wins (the caller says what newest means: Canvas's
attachment id, a timestamp); without that, the exactly named file, then the highest copy number.
Every other file is unplaced, with its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any, Callable, Iterable, Sequence

NOTEBOOK_SUFFIXES = (".ipynb", ".ipynb.json", ".ipynb.txt")
COPY_MARK = re.compile(r"(?:\s*\((\d+)\)|-(\d+)|\s+-\s+copy(?:\s*\((\d+)\))?|\s+copy)$", re.IGNORECASE)
COPY_OF = re.compile(r"^copy\s+of\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Filed:
    """A submitted file and where it went: the notebook it was taken as (and how), or nowhere (and why).

    The one shape of that fact, from matching a name to a notebook through collect's plan, the manifest it
    writes, an export's refused entries and autograde's renamed files."""

    file: str  # the name it was submitted under (a path in the student's folder, a name inside an export)
    notebook: str = ""  # the notebook it was taken as; '' when it went nowhere
    why: str = ""  # how it was taken ('' for its exact name), or why it went nowhere
    student: str = ""  # whose it is ('' when nobody can be told)
    entry: str = ""  # where it lies in an LMS's export ('' when it came from none)
    index: int = field(default=-1, compare=False)  # its position among the files it was sorted with

    @property
    def placed(self) -> bool:
        return bool(self.notebook)


@dataclass(frozen=True)
class Placement:
    """One student's files for one assignment, sorted into notebooks and the rest."""

    placed: tuple[Filed, ...]
    unplaced: tuple[Filed, ...]


def notebook_stem(filename: str) -> str | None:
    """The name before `.ipynb` (or a browser's `.ipynb.json`), None for a file that is not a notebook."""
    base = PurePosixPath(filename).name
    for suffix in NOTEBOOK_SUFFIXES:
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return None


def copy_number(stem: str) -> int:
    """The copy mark's number (`seq2seq (2)` -> 2, `seq2seq - Copy` -> 1), 0 without one."""
    found = COPY_MARK.search(stem)
    if not found:
        return 0
    number = next((g for g in found.groups() if g), None)
    return int(number) if number else 1


def canonical(stem: str) -> str:
    """A name with case, separators and copy marks taken away: `Copy of Seq2Seq (1)` -> `seq2seq`."""
    name = COPY_OF.sub("", stem.strip())
    while True:
        stripped = COPY_MARK.sub("", name).strip()
        if stripped == name or not stripped:
            break
        name = stripped
    return re.sub(r"[\s\-_.]+", "_", name.lower()).strip("_")


def explain(filename: str, notebook: str) -> str:
    """Why `filename` was taken for `notebook` (empty when the names are equal)."""
    stem = notebook_stem(filename) or filename
    if PurePosixPath(filename).name == f"{notebook}.ipynb":
        return ""
    if copy_number(stem) or COPY_OF.match(stem):
        kind = "renamed with a copy mark"
    elif stem.lower() == notebook.lower():
        same = PurePosixPath(filename).name.lower() == f"{notebook}.ipynb".lower()
        kind = "another case" if same else "saved with another extension"
    else:
        kind = "another spelling"
    return f"{PurePosixPath(filename).name!r} taken as {notebook}.ipynb ({kind})"


def default_newer(filed: Filed) -> tuple:
    """Without times: the exactly named file, then the highest copy number, then the name."""
    stem = notebook_stem(filed.file) or filed.file
    return (filed.why == "", copy_number(stem), filed.file)


def place(files: Sequence[str], notebooks: Sequence[str], newer: Callable[[Filed], Any] | None = None,
          assignment: str = "", rule: str = "exact name first") -> Placement:
    """Place `files` (names as submitted; one name may come twice) on `notebooks` (released stems, e.g.
    `seq2seq`).

    `newer(filed)` orders the files that claim one notebook, the largest winning (`filed.index` says
    which of `files` it is) and `rule` says in words how; `assignment` only names the assignment in
    reasons.
    """
    newer = newer or default_newer
    where = f" of {assignment}" if assignment else ""
    exact = {f"{nb}.ipynb": nb for nb in notebooks}
    by_canonical: dict[str, list[str]] = {}
    for nb in notebooks:
        by_canonical.setdefault(canonical(nb), []).append(nb)
    claims: dict[str, list[Filed]] = {nb: [] for nb in notebooks}
    unplaced: list[Filed] = []
    leftovers: list[tuple[int, str]] = []
    for i, file in enumerate(files):
        stem, base = notebook_stem(file), PurePosixPath(file).name
        same = by_canonical.get(canonical(stem), []) if stem is not None else []
        if stem is None:
            unplaced.append(Filed(file, why="not a notebook (.ipynb)", index=i))
        elif base in exact:
            claims[exact[base]].append(Filed(file, exact[base], index=i))
        elif len(same) == 1:
            claims[same[0]].append(Filed(file, same[0], explain(file, same[0]), index=i))
        elif same:
            names = ", ".join(f"{nb}.ipynb" for nb in same)
            unplaced.append(Filed(file, why=f"could be any of {names}", index=i))
        else:
            leftovers.append((i, file))
    empty = [nb for nb in notebooks if not claims[nb]]
    if len(leftovers) == 1 and len(empty) == 1:
        (i, file), nb = leftovers[0], empty[0]
        claims[nb].append(Filed(file, nb, f"{PurePosixPath(file).name!r} taken as {nb}.ipynb (the only "
                                          f"notebook left{where})", index=i))
    else:
        expected = ", ".join(f"{nb}.ipynb" for nb in notebooks)
        unplaced += [Filed(f, why=f"matches no notebook{where} (expected {expected})", index=i) for i, f in leftovers]
    placed = []
    for nb in notebooks:
        if not claims[nb]:
            continue
        ranked = sorted(claims[nb], key=newer, reverse=True)
        placed.append(ranked[0])
        unplaced += [Filed(m.file, why=f"another file for {nb}.ipynb: {PurePosixPath(ranked[0].file).name!r} was "
                                       f"taken ({rule})", index=m.index) for m in ranked[1:]]
    return Placement(tuple(placed), tuple(sorted(unplaced, key=lambda u: u.index)))


def tolerant_matches(rels: Iterable[str], notebooks: Sequence) -> dict[str, Filed]:
    """For autograde reading SUBMISSIONS/<student> directly: {notebook key: the file taken for it} for the
    notebooks that have no exactly named file but a tolerantly matched one (`file` is its path in the
    student's folder, `why` says how).

    `rels` are paths relative to the student's folder (`02_seq2seq/Seq2Seq (1).ipynb`); `notebooks` are
    layout.Notebook objects. Only files directly in an assignment's folder are considered.
    """
    by_assignment: dict[str, list[str]] = {}
    for rel in rels:
        parts = PurePosixPath(rel).parts
        if len(parts) == 2:
            by_assignment.setdefault(parts[0], []).append(parts[1])
    found = {}
    for assignment in dict.fromkeys(nb.assignment for nb in notebooks):
        names = [nb.name for nb in notebooks if nb.assignment == assignment]
        placement = place(sorted(by_assignment.get(assignment, [])), names, assignment=assignment)
        for filed in placement.placed:
            if filed.why:
                found[f"{assignment}/{filed.notebook}"] = replace(filed, file=f"{assignment}/{filed.file}")
    return found
