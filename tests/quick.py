"""The whole catalogue of answers, graded in one kernel per notebook: seconds instead of minutes.

The source notebook (hidden tests included) runs once in grading mode with the reference solution;
then, for each answer, its solution cell is replaced, every test cell runs again, and each test
cell is scored by nbgrader's own rule (`determine_grade`, after the grader's stderr filter). The
real autograder grades a sample of the same answers (tests/conftest.py), and the tests check that
both agree on it.
"""

from __future__ import annotations

import copy
import os
import re

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell
from nbgrader.utils import determine_grade

from grader import answers
from grader.pipeline import STDERR_IGNORED
from grader.layout import Notebook


def _score(cell: nbformat.NotebookNode) -> float:
    cell = copy.deepcopy(cell)
    cell.outputs = [o for o in cell.outputs
                    if not (o.output_type == "stream" and o.name == "stderr" and re.search(STDERR_IGNORED, o.text))]
    return float(determine_grade(cell)[0])


def grade_answers(nb: Notebook, fills: dict[str, dict[str, str]]) -> dict[str, dict[str, float]]:
    """{name: {test grade id: points}} for each named set of answers ({solution cell: source})."""
    source = nbformat.read(nb.source, as_version=4)
    reference = answers.reference(nb)
    for cell in source.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = reference[cell.metadata.nbgrader.grade_id]
    tests = [(i, c) for i, c in enumerate(source.cells) if c.metadata.get("nbgrader", {}).get("grade")]
    at = {c.metadata.nbgrader.grade_id: i for i, c in enumerate(source.cells) if c.metadata.get("nbgrader", {}).get("solution")}
    client = NotebookClient(source, kernel_name="python3", timeout=120, allow_errors=True)
    scores = {}
    with client.setup_kernel(env={**os.environ, "NBGRADER_EXECUTION": "autograde"}):
        for index, cell in enumerate(source.cells):
            client.execute_cell(cell, index)
        for name, fill in fills.items():
            for gid, text in fill.items():
                client.execute_cell(new_code_cell(text), at[gid])
            result = {}
            for index, cell in tests:
                ran = client.execute_cell(copy.deepcopy(cell), index)
                result[cell.metadata.nbgrader.grade_id] = _score(ran)
            for gid in fill:
                client.execute_cell(new_code_cell(reference[gid]), at[gid])
            scores[name] = result
    return scores
