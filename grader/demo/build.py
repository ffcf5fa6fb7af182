"""Sample submissions for `make demo`: a complete class member, a partial one, a broken one.

Built from the released notebooks, the reference solutions and the catalogues of wrong answers, and
committed under demo/submissions so an instructor can open them; `python -m grader demo --rebuild`
writes them again after the notebooks change. Their written answers: ada's are the model answers, ben's
their first sentence, and cat wrote HTML with a script into one of them (formgrader and the page show it as
text). demo/manual_grades.csv grades some of them as an instructor would have in formgrader: all of ada's,
one of ben's; the rest is left to grade.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from grader.course import answers, cells, layout
from grader.course.layout import Notebook
from grader.course.written import answer_hash
from grader.manual.store import MARKS_FILE, Mark, marks_path, write_marks

# cat's answer to the first written question: markup that would run as the instructor if formgrader rendered it
HOSTILE_ANSWER = ('Packing <img src="x" onerror="window.graderXss = (window.graderXss || 0) + 1"> keeps the '
                  'state right.\n\n<script>window.graderXss = (window.graderXss || 0) + 1</script>')


def wrong_answer(notebook: Notebook) -> dict[str, str]:
    """The first catalogued wrong answer of `notebook`, as {cell: source}."""
    answer = next(a for a in answers.catalogue(notebook) if not a.correct)
    return {answer.cell: answer.source}


def broken(notebook: Notebook, kind: str):
    """A submission of `notebook` that breaks in one of three ways: loop, crash, not JSON."""
    if kind == "not_json":
        return '{"cells": [{"cell_type": "code", "source": "print(1)"'  # cut off mid-upload
    sub = answers.submission(notebook, written_answers(notebook, "cat"))
    code = {"loop": "# keeps training forever\nwhile True:\n    pass",
            "crash": "import os\nos._exit(1)  # the kernel dies here"}[kind]
    sub.cells.append(new_code_cell(code, id=f"broken-{kind}"))  # a fixed id: the rebuild is reproducible
    return sub


def written_answers(notebook: Notebook, student: str) -> dict[str, str]:
    """{grade id: answer} for the written questions of `notebook`: ada's model answers, ben's first sentences,
    cat's first answer HTML with a script."""
    import nbformat

    from grader.course.cells import facts_of

    questions = facts_of(nbformat.read(notebook.source, as_version=4)).written
    if student == "ben":
        return {q.grade_id: re.split(r"(?<=[.!?])\s+", q.model_answer)[0] for q in questions}
    if student == "cat":
        return {q.grade_id: HOSTILE_ANSWER for q in questions[:1]}
    return {}


def sample_class() -> dict[tuple[str, Notebook], object]:
    """{(student, notebook): submission}: ada complete, ben partial, cat broken."""
    series = layout.available()
    subs: dict[tuple[str, Notebook], object] = {}
    for notebook in series:
        subs[("ada", notebook)] = answers.submission(notebook)
    subs[("ben", series[0])] = answers.submission(series[0], written_answers(series[0], "ben"))
    for notebook in series[1:-1] or series[:1]:
        subs[("ben", notebook)] = answers.submission(notebook, {**wrong_answer(notebook),
                                                                **written_answers(notebook, "ben")})
    for notebook, kind in zip(series, ["loop", "crash", "not_json"]):
        subs[("cat", notebook)] = broken(notebook, kind)
    return subs


def demo_marks(subs: dict[tuple[str, Notebook], object]) -> list[Mark]:
    """What an instructor graded in formgrader: every answer of ada's (full marks, a comment on the first), the
    first answer of ben's first notebook (half marks, a comment)."""
    marks = []
    for (student, notebook), nb in subs.items():
        if isinstance(nb, str) or student not in ("ada", "ben"):
            continue
        written = [c for c in nb.cells if cells.is_written(c)]
        if student == "ben":
            written = written[:1] if notebook == layout.available()[0] else []
        for i, cell in enumerate(written):
            points = cells.points(cell)
            comment = {("ada", 0): "Clear and complete.",
                       ("ben", 0): "Right about the forget gate, but why does the RNN's gradient shrink? "
                                   "And clipping is not mentioned."}.get((student, i), "")
            score = points if student == "ada" else points / 2
            marks.append(Mark(student, notebook.assignment, notebook.name, cells.grade_id(cell),
                              answer_hash(cell.source), score, comment))
    return marks


def demo_marks_file() -> Path:
    """demo/manual_grades.csv of the course: the grades the demo's written answers were given in formgrader."""
    return layout.course().root / "demo" / MARKS_FILE


def seed_marks(out: Path) -> None:
    """Give OUT the demo's manual grades (demo/manual_grades.csv), unless it has grades of its own."""
    if not marks_path(out).exists():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(demo_marks_file(), marks_path(out))


def rebuild(dest: Path | None = None, marks: Path | None = None) -> None:
    """Write the sample class as an LMS would export it (default: the course's demo/submissions), and the grades
    its written answers were given (default: demo/manual_grades.csv)."""
    dest = dest or layout.course().demo_submissions
    marks = marks or demo_marks_file()
    if dest.exists():
        shutil.rmtree(dest)
    subs = sample_class()
    write_marks(marks.parent, {m.key: m for m in demo_marks(subs)})
    for (student, notebook), content in subs.items():
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
