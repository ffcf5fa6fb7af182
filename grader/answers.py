"""Answers to the exercises: the reference solution and each notebook's catalogue of other answers.

Each source notebook has a catalogue next to it, `solutions/<assignment>/answers.py`, listing
realistic wrong answers (each must lose points) and other correct ones (each must get full marks).
Tests grade the whole catalogue; the demo and the benchmark build submissions from it.
"""

from __future__ import annotations

import copy
import importlib.util
import textwrap
from dataclasses import dataclass
from functools import cache

import nbformat

from .layout import Notebook


@dataclass(frozen=True)
class Answer:
    """What a student might write in one solution cell, and whether it deserves full marks."""

    name: str
    cell: str  # grade id of the solution cell it fills
    source: str
    correct: bool
    why: str = ""

    def __post_init__(self):
        object.__setattr__(self, "source", textwrap.dedent(self.source).strip("\n"))


def catalogue(nb: Notebook) -> list[Answer]:
    """The answers listed in `solutions/<assignment>/answers.py`."""
    path = nb.source.parent / "answers.py"
    spec = importlib.util.spec_from_file_location(f"answers_{nb.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.ANSWERS)


@cache
def reference(nb: Notebook) -> dict[str, str]:
    """The reference solution of each solution cell: the source with its markers removed."""
    source = nbformat.read(nb.source, as_version=4)
    answers = {}
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            text = "\n".join(line for line in cell.source.splitlines()
                             if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
            answers[meta["grade_id"]] = text
    return answers


def submission(nb: Notebook, answers: dict[str, str] | None = None,
               released: nbformat.NotebookNode | None = None) -> nbformat.NotebookNode:
    """The released notebook with every solution cell filled: the reference, unless `answers` says otherwise."""
    fill = {**reference(nb), **(answers or {})}
    out = copy.deepcopy(released if released is not None else nbformat.read(nb.released, as_version=4))
    for cell in out.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and gid in fill:
            cell.source = fill[gid]
    return out

