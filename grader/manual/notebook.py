"""The formgrader's copy of an autograded notebook: what a grader reads, with nothing a student wrote able to run.

Formgrader renders a notebook in the instructor's Jupyter origin without sanitising it (markdown through
mistune, outputs as they are): a written answer holding `<img src=x onerror=...>` or `<script>` would run
there as the instructor, with their token. So the copy keeps, as they are, only the instructor's own text
(markdown cells whose source is in the source notebook) and turns everything else into text:

- every other markdown or raw cell (written answers included) becomes a fenced block of its text, which
  mistune escapes (the fence is longer than any run of backticks in it);
- outputs keep plain text, PNG and JPEG (valid base64 only) and tracebacks; HTML, SVG, markdown, LaTeX,
  JavaScript and widgets are dropped, and so is their metadata;
- cell and notebook metadata are rebuilt: nbgrader's only for the grade ids the source notebook has (written
  answers keep their grade box and comment box; test cells and code answers lose theirs, so test points stay as
  autograded and no comment goes where the student would never see it), a kernelspec, nothing else.

After each written answer a locked cell holds its rubric and the model answer, for the grader only.
"""

from __future__ import annotations

import base64
import binascii
import re
from nbformat import NotebookNode

from grader.course import cells
from grader.course.cells import NotebookFacts
from grader.pages.written import as_text

KEPT_MIME = ("text/plain", "image/png", "image/jpeg")
# The copy's first cell: what it is, and long answer lines wrapped in their text blocks.
HEADER = ("<style>.rendered_html pre, .rendered_html pre code { white-space: pre-wrap; overflow-wrap: anywhere; }"
          "</style>\n\n*The grader's copy of this submission for formgrader: what the student wrote is shown as text; "
          "tests are scored by the autograder (their points are in the gradebook); grade the written answers, each "
          "followed by its rubric.*")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


def _image(data) -> str | None:
    text = "".join(data) if isinstance(data, list) else data
    if not isinstance(text, str) or not _BASE64.fullmatch(text):
        return None
    try:
        base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return text


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value if isinstance(value, str) else ""


# Cells and outputs are built as plain nodes: nbformat's constructors validate each one against the schema, which
# costs more than everything else here for a class's notebooks (the tests validate the result instead).

def _markdown(source: str, metadata: dict | None = None) -> NotebookNode:
    return NotebookNode(cell_type="markdown", metadata=NotebookNode(metadata or {}), source=source)


def _code(source: str, execution_count, outputs: list) -> NotebookNode:
    return NotebookNode(cell_type="code", metadata=NotebookNode(), source=source, outputs=outputs,
                        execution_count=execution_count if isinstance(execution_count, int) else None)


def safe_outputs(outputs: list) -> list:
    """Outputs reduced to what renders as text or a raster image."""
    kept = []
    for output in outputs or []:
        kind = output.get("output_type")
        if kind == "stream":
            kept.append(NotebookNode(output_type="stream", name="stderr" if output.get("name") == "stderr" else "stdout",
                                     text=_text(output.get("text", ""))))
        elif kind == "error":
            kept.append(NotebookNode(output_type="error", ename=_text(output.get("ename", "")),
                                     evalue=_text(output.get("evalue", "")),
                                     traceback=[_text(t) for t in output.get("traceback", [])]))
        elif kind in ("execute_result", "display_data"):
            data = {}
            for mime, value in (output.get("data") or {}).items():
                if mime == "text/plain":
                    data[mime] = _text(value)
                elif mime in ("image/png", "image/jpeg") and _image(value) is not None:
                    data[mime] = _image(value)
            if data:
                kept.append(NotebookNode(output_type="display_data", data=NotebookNode(data), metadata=NotebookNode()))
    return kept


def _nbgrader(gid: str, points: float = 0.0, grade: bool = False, solution: bool = False,
              locked: bool = False) -> dict:
    return {"nbgrader": NotebookNode(grade=grade, grade_id=gid, locked=locked, points=points, schema_version=3,
                                     solution=solution, task=False)}


def guide(question, note: str = "") -> str:
    """The locked cell after a written answer: the rubric and a full-marks answer, for graders only (and what the
    grader noticed about the answer: that it changed since it was graded)."""
    rubric = question.rubric or "(no rubric: add one to the assignment's rubrics.toml)"
    noticed = f"**This answer {note}**: grade it again.\n\n" if note.startswith("changed") else ""
    return (f"{noticed}**For graders only** (never on the student's page): `{question.grade_id}`, "
            f"{question.points:g} points.\n\n**Rubric.**\n\n{rubric}\n\n**A full-marks answer.**\n\n"
            f"{question.model_answer}")


def formgrader_copy(graded: NotebookNode, source: NotebookNode, facts: NotebookFacts,
                    scores: dict[str, float] | None = None, notes: dict[str, str] | None = None) -> NotebookNode:
    """The notebook formgrader shows for `graded` (nbgrader's autograded notebook), from its `source` notebook;
    `scores` are the row's test scores and `notes` what the grader noticed about its written answers, by grade id."""
    scores, notes = scores or {}, notes or {}
    trusted = {c.source for c in source.cells if c.cell_type == "markdown" and not cells.is_written(c)}
    written = {q.grade_id: q for q in facts.written}
    tests = {t.grade_id: t for t in facts.tests}
    copy = NotebookNode(nbformat=4, nbformat_minor=5, cells=[_markdown(HEADER)],
                        metadata=NotebookNode(kernelspec=NotebookNode(source.metadata.get("kernelspec", {})),
                                              language_info=NotebookNode(name="python")))
    for cell in graded.cells:
        gid = cells.grade_id(cell)
        text = _text(cell.get("source", ""))
        if gid in written and cells.is_written(cell):
            q = written[gid]
            copy.cells.append(_markdown(as_text(text), _nbgrader(gid, q.points, grade=True, solution=True)))
            copy.cells.append(_markdown(guide(q, notes.get(gid, "")), _nbgrader(f"{gid}-guide", locked=True)))
        elif cell.get("cell_type") == "code":
            if gid in tests:
                got = f"{scores[gid]:g} / " if gid in scores else ""
                note = f"Test `{gid}`: {got}{tests[gid].points:g} points, autograded."
                copy.cells.append(_markdown(note))
            copy.cells.append(_code(text, cell.get("execution_count"), safe_outputs(cell.get("outputs", []))))
        elif cell.get("cell_type") == "markdown" and text in trusted:
            copy.cells.append(_markdown(text))
        else:
            copy.cells.append(_markdown(as_text(text)))
    for i, cell in enumerate(copy.cells):
        cell.id = f"cell-{i}"
    return copy
