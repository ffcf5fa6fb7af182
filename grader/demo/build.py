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

from grader.course import answers, layout
from grader.course.layout import Notebook


def wrong_answer(notebook: Notebook) -> dict[str, str]:
    """The first catalogued wrong answer of `notebook`, as {cell: source}."""
    answer = next(a for a in answers.catalogue(notebook) if not a.correct)
    return {answer.cell: answer.source}


def broken(notebook: Notebook, kind: str):
    """A submission of `notebook` that breaks in one of three ways: loop, crash, not JSON."""
    if kind == "not_json":
        return '{"cells": [{"cell_type": "code", "source": "print(1)"'  # cut off mid-upload
    sub = answers.submission(notebook)
    code = {"loop": "# keeps training forever\nwhile True:\n    pass",
            "crash": "import os\nos._exit(1)  # the kernel dies here"}[kind]
    sub.cells.append(new_code_cell(code, id=f"broken-{kind}"))  # a fixed id: the rebuild is reproducible
    return sub


def sample_class() -> dict[tuple[str, Notebook], object]:
    """{(student, notebook): submission}: ada complete, ben partial, cat broken."""
    series = layout.available()
    subs: dict[tuple[str, Notebook], object] = {}
    for notebook in series:
        subs[("ada", notebook)] = answers.submission(notebook)
    subs[("ben", series[0])] = answers.submission(series[0])
    for notebook in series[1:-1] or series[:1]:
        subs[("ben", notebook)] = answers.submission(notebook, wrong_answer(notebook))
    for notebook, kind in zip(series, ["loop", "crash", "not_json"]):
        subs[("cat", notebook)] = broken(notebook, kind)
    return subs


def rebuild(dest: Path | None = None) -> None:
    """Write the sample class as an LMS would export it (default: the course's demo/submissions)."""
    dest = dest or layout.course().demo_submissions
    if dest.exists():
        shutil.rmtree(dest)
    for (student, notebook), content in sample_class().items():
        path = dest / student / notebook.assignment / notebook.filename
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
