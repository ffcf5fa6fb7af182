"""A small class built by hand, for testing the feedback summary and the class report without grading.

`toy_notebooks()` is a two-exercise notebook as its source (with a hidden test) and as nbgrader leaves
it after autograde (outputs of passing and failing tests, one failure's message quoting a hidden
line); `feedback_page()` renders it as nbgrader's feedback does and opens it with the summary.
`class_rows()` is a class of every status for one course notebook, with a deliberately broken test.
"""

from __future__ import annotations

import copy
import os
import re

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.course import answers, cells, layout
from grader.results import CellResult, Row

# A secret line (12+ characters, inside the hidden region, nowhere public) and the message that quotes it.
HIDDEN_LINE = 'assert square(-3) == 9, f"square(-3) should be 9, got {square(-3)}"'
LONG_WORD = "x" * 400  # one unbreakable word: the summary must still fit a phone's width
TESTS = {  # grade id -> (exercise, points, source)
    "test_square_visible": ("square", 1, "# Visible tests: squares of small positive integers.\nassert square(2) == 4"),
    "test_square_hidden": ("square", 2, "# Hidden tests: negative numbers and zero,\n# each on its own.\n"
                                        f"### BEGIN HIDDEN TESTS\n{HIDDEN_LINE}\nassert square(0) == 0\n"
                                        "### END HIDDEN TESTS"),
    "test_cube_visible": ("cube", 1, "# Visible tests: cube(2) is 8, quietly.\nassert cube(2) == 8"),
    "test_cube_hidden": ("cube", 1, "# Hidden tests: large inputs.\n### BEGIN HIDDEN TESTS\n"
                                    "assert cube(10**6) == 10**18, 'cube of a million'\n### END HIDDEN TESTS"),
}
ANSWERS = {"square": "def square(x):\n    return x * x if x > 0 else 0",
           "cube": "import sys\n\ndef cube(x):\n    print('computing', file=sys.stderr)\n    return x ** 3"}


def _meta(gid: str, points: float = 0, solution: bool = False, grade: bool = False) -> dict:
    return {"nbgrader": {"grade_id": gid, "grade": grade, "solution": solution, "locked": not solution,
                         "points": points, "schema_version": 3}}


def toy_notebooks() -> tuple[nbformat.NotebookNode, nbformat.NotebookNode, list[CellResult]]:
    """(source, graded, per-cell results) of the toy notebook: 1 of 5 points."""
    cells = [new_markdown_cell("# Squares and cubes")]
    for exercise in ("square", "cube"):
        cells.append(new_code_cell(f"### BEGIN SOLUTION\n{ANSWERS[exercise]}\n### END SOLUTION",
                                   metadata=_meta(exercise, solution=True)))
        for gid, (ex, points, source) in TESTS.items():
            if ex == exercise:
                cells.append(new_code_cell(source, metadata=_meta(gid, points, grade=True)))
    source = new_notebook(cells=cells, metadata={"language_info": {"name": "python"}})
    graded = copy.deepcopy(source)
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in graded.cells}
    for exercise in ("square", "cube"):
        by_id[exercise].source = ANSWERS[exercise]
    quoted = f"the check failed at: {HIDDEN_LINE}"
    by_id["test_square_hidden"].outputs = [new_output(
        "error", ename="AssertionError", evalue=quoted,
        traceback=["\x1b[0;31mAssertionError\x1b[0m Traceback (most recent call last)",
                   f"Cell In[4], line 4\n----> 4 {HIDDEN_LINE}", f"AssertionError: {quoted}"])]
    by_id["test_cube_visible"].outputs = [new_output("stream", name="stderr", text=f"computing {LONG_WORD}\n")]
    by_id["test_cube_hidden"].outputs = [new_output(
        "error", ename="ValueError", evalue=f"cube overflowed: {LONG_WORD}", traceback=[f"ValueError: cube overflowed: {LONG_WORD}"])]
    results = [CellResult(gid, ex, float(points) if gid == "test_square_visible" else 0.0, float(points), "hidden" in gid)
               for gid, (ex, points, _) in TESTS.items()]
    return source, graded, results


def secret_lines(source: nbformat.NotebookNode) -> frozenset[str]:
    return cells.secrets_of(source).hidden


def nbgrader_page(graded: nbformat.NotebookNode, results: list[CellResult], secrets: frozenset[str],
                  hidden_cells: list[str], sanitize: bool = True, in_words: bool = True) -> str:
    """The feedback page nbgrader's GenerateFeedback would write (its template, our scrubbing)."""
    import nbgrader
    from traitlets.config import Config

    from grader.pages.feedback import FeedbackExporter, ScrubHidden

    nb = copy.deepcopy(graded)
    scores = {r.grade_id: r.score for r in results}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") in scores:
            meta["score"] = scores[meta["grade_id"]]
        if meta.get("grade_id") in hidden_cells:  # as nbgrader's ClearHiddenTests does
            cell.source = "\n".join(cells.split_regions(cell.source)[0])
    nb, _ = ScrubHidden(lines=sorted(secrets), hidden_cells=hidden_cells, in_words=in_words).preprocess(nb, {})
    templates = os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader")
    c = Config()
    c.HTMLExporter.template_name = "feedback"
    c.HTMLExporter.extra_template_basedirs = [os.path.join(templates, "templates")]
    c.HTMLExporter.extra_template_paths = [os.path.join(templates, "static", "node_modules", "bootstrap", "dist", "css")]
    score = sum(r.score for r in results)
    c.FeedbackExporter.sanitize_html = sanitize
    page, _ = FeedbackExporter(config=c).from_notebook_node(
        nb, resources={"nbgrader": {"notebook": "toy", "score": score, "max_score": sum(r.max_score for r in results),
                                    "late_penalty": 0}})
    return page


def feedback_page(status: str = "graded", detail: str = "", status_words: str = "", markdown: str = "",
                  sanitize: bool = True, extra_cells: list | None = None, outputs: dict | None = None,
                  in_words: bool = True) -> tuple[str, dict]:
    """The toy notebook's feedback page, opened by the summary; and what went into it. `markdown` is a cell the
    student added after the first exercise; `extra_cells` more cells at the end; `sanitize=False` builds the
    page without the allow-list (for the tests' controls)."""
    from grader.pages.summary import summarised

    source, graded, results = toy_notebooks()
    if markdown:
        graded.cells.insert(3, new_markdown_cell(markdown))
    graded.cells += extra_cells or []
    for cell in graded.cells:  # outputs in place of the toy's own, by grade id
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in (outputs or {}):
            cell.outputs = outputs[gid]
    secrets = secret_lines(source)
    row = Row("ada", "00_toy", "toy", sum(r.score for r in results), sum(r.max_score for r in results), status,
              detail, results)
    page = nbgrader_page(graded, results, secrets, [g for g in TESTS if "hidden" in g], sanitize, in_words)
    return summarised(page, graded, row, secrets, status_words), {
        "source": source, "graded": graded, "row": row, "secrets": secrets}


# --- a class for the report ----------------------------------------------------------------------

NOTEBOOK = layout.SERIES[1]  # 02_seq2seq/seq2seq
BROKEN = "test_sequence_loss_visible"  # in class_rows, the strong students fail it and the weak pass


def points_of(nb: layout.Notebook = NOTEBOOK) -> dict[str, float]:
    """{grade id: points} of `nb`'s test cells, read from its source notebook."""
    source = nbformat.read(nb.source, as_version=4)
    found = {}
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            found[meta["grade_id"]] = float(meta["points"])
    return found


def row_of(student: str, passed: set[str], status: str = "graded", detail: str = "",
           nb: layout.Notebook = NOTEBOOK, voided: bool = False) -> Row:
    cells = [CellResult(gid, nb.exercise_of(gid), points if gid in passed else 0.0, points, "hidden" in gid)
             for gid, points in points_of(nb).items()]
    score = 0.0 if voided else sum(c.score for c in cells)
    return Row(student, nb.assignment, nb.name, score, sum(points_of(nb).values()), status, detail, cells)


def class_rows() -> list[Row]:
    """12 students who ran the notebook (strong to weak, BROKEN passed only by the weakest), plus one
    row of every other status."""
    ids = list(points_of())
    rows = []
    for k in range(12):
        passed = set(ids[: len(ids) - k])  # student k fails the last k tests
        passed.discard(BROKEN) if k < 6 else passed.add(BROKEN)
        status = {3: "timeout", 5: "kernel_died", 7: "output_limit"}.get(k, "graded")
        detail = {3: "cell test_greedy_decode_hidden_model ran past 20 s and was interrupted",
                  5: "the kernel died in cell greedy_decode (os._exit?)",
                  7: "cell train printed more than 2 MB"}.get(k, "")
        rows.append(row_of(f"s{k:02d}", passed, status, detail))
    max_score = sum(points_of().values())
    for student, status, detail in [("t_invalid", "invalid_notebook", "not JSON"),
                                    ("t_missing", "missing", "found: Seq2Seq (1).ipynb"),
                                    ("t_not_submitted", "not_submitted", ""),
                                    ("t_error", "error", "RuntimeError: a grader bug <script>alert(1)</script>")]:
        rows.append(Row(student, NOTEBOOK.assignment, NOTEBOOK.name, 0.0, max_score, status, detail))
    rows.append(row_of("t_tampered", set(ids), "tampered", "cheating detected: patched torch.allclose", voided=True))
    return sorted(rows, key=lambda r: r.student_id)


def renamed(source: str, names: dict[str, str]) -> str:
    """`source` with whole-word names replaced."""
    for old, new in names.items():
        source = re.sub(rf"\b{re.escape(old)}\b", new, source)
    return source


def copied_pair() -> dict[str, dict[str, str]]:
    """Two students with the same Seq2Seq (a catalogued correct one), the second renamed and reformatted."""
    original = next(a for a in answers.catalogue(NOTEBOOK) if a.name == "gru_cell_decoder").source
    copy_ = renamed(original, {"hidden": "h", "logits": "outs", "step_logits": "step_out", "packed": "pk",
                               "src_embedding": "enc_emb", "tgt_embedding": "dec_emb", "cell": "gru_cell"})
    copy_ = copy_.replace("return self.out(h), h", "out = self.out(h)  # the logits\n        return out, h")
    copy_ = "# my own work!\n" + copy_.replace(", ", " ,  ").replace("    ", "  ").replace('"cpu"', "'cpu'")
    return {"amy": {"Seq2Seq": original}, "bob": {"Seq2Seq": copy_}}
