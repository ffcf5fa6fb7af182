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

from grader.course import cells
from grader.course.cells import facts_of
from grader.course.layout import Notebook


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


def catalogue(notebook: Notebook) -> list[Answer]:
    """The answers listed in `solutions/<assignment>/answers.py`."""
    path = notebook.source.parent / "answers.py"
    spec = importlib.util.spec_from_file_location(f"answers_{notebook.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.ANSWERS)


@cache
def reference(notebook: Notebook) -> dict[str, str]:
    """The reference solution of each code solution cell: the source with its markers removed."""
    return facts_of(nbformat.read(notebook.source, as_version=4)).solutions


@cache
def model_answers(notebook: Notebook) -> dict[str, str]:
    """The model answer of each written question (the source's text, never released)."""
    return {q.grade_id: q.model_answer for q in facts_of(nbformat.read(notebook.source, as_version=4)).written}


def submission(notebook: Notebook, answers: dict[str, str] | None = None,
               released: nbformat.NotebookNode | None = None) -> nbformat.NotebookNode:
    """The released notebook with every solution cell filled: the reference (and the model answers), unless
    `answers` says otherwise."""
    fill = {**reference(notebook), **model_answers(notebook), **(answers or {})}
    nb = copy.deepcopy(released if released is not None else nbformat.read(notebook.released, as_version=4))
    for cell in nb.cells:
        if cells.is_solution(cell) and cells.grade_id(cell) in fill:
            cell.source = fill[cells.grade_id(cell)]
    return nb

