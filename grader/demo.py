"""Sample submissions for `make demo`: a complete class member, a partial one, a broken one.

Built from the released notebooks, the reference solutions and the catalogues of wrong answers, and
committed under demo/submissions so an instructor can open them; `python -m grader demo --rebuild`
writes them again after the notebooks change.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from . import answers, layout
from .layout import Notebook


def wrong_answer(nb: Notebook) -> dict[str, str]:
    """The first catalogued wrong answer of `nb`, as {cell: source}."""
    answer = next(a for a in answers.catalogue(nb) if not a.correct)
    return {answer.cell: answer.source}


def broken(nb: Notebook, kind: str):
    """A submission of `nb` that breaks in one of three ways: loop, crash, not JSON."""
    if kind == "not_json":
        return '{"cells": [{"cell_type": "code", "source": "print(1)"'  # cut off mid-upload
    sub = answers.submission(nb)
    code = {"loop": "# keeps training forever\nwhile True:\n    pass",
            "crash": "import os\nos._exit(1)  # the kernel dies here"}[kind]
    sub.cells.append(new_code_cell(code, id=f"broken-{kind}"))  # a fixed id: the rebuild is reproducible
    return sub


def sample_class() -> dict[tuple[str, Notebook], object]:
    """{(student, notebook): submission}: ada complete, ben partial, cat broken."""
    course = layout.available()
    subs: dict[tuple[str, Notebook], object] = {}
    for nb in course:
        subs[("ada", nb)] = answers.submission(nb)
    subs[("ben", course[0])] = answers.submission(course[0])
    for nb in course[1:-1] or course[:1]:
        subs[("ben", nb)] = answers.submission(nb, wrong_answer(nb))
    for nb, kind in zip(course, ["loop", "crash", "not_json"]):
        subs[("cat", nb)] = broken(nb, kind)
    return subs


def rebuild(dest: Path = layout.DEMO_SUBMISSIONS) -> None:
    """Write the sample class as an LMS would export it."""
    if dest.exists():
        shutil.rmtree(dest)
    for (student, nb), content in sample_class().items():
        path = dest / student / nb.assignment / nb.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(nbformat.writes(content) + "\n")
    # ben also uploaded his last notebook under the name the LMS gave it
    last = layout.available()[-1]
    stray = dest / "ben" / last.assignment / f"{last.name} (1).ipynb"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text(nbformat.writes(answers.submission(last)) + "\n")
