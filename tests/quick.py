"""The whole catalogue of answers, graded on one kernel pair per notebook: seconds instead of minutes.

The source notebook (hidden tests included) runs once in grading mode with the reference solution,
through the grader's own Execute step (`GradedExecute`): every non-test cell in a student kernel, every
test cell in a trusted kernel that calls the student's code across the bridge, exactly as in grading.
Then, for each answer, its solution cell is run again with the answer's code and every test cell runs
again; each test cell is scored by nbgrader's own rule (`determine_grade`) on the outputs the grader
settled. `split=False` grades the same answers with the test cells in the student's kernel, as stock
nbgrader would: the tests check that both give every cell the same verdict. The real autograder grades
a sample of the same answers (tests/conftest.py), and the tests check that it agrees too.
"""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell
from nbgrader.utils import determine_grade

from grader.bridge.trusted import TrustedKernel
from grader.course import answers, cells
from grader.course.layout import Notebook
from grader.grading.execution import GradedExecute
from grader.grading.pipeline import STDERR_IGNORED
from grader.grading.settings import Settings
from grader.kernel.sandbox import SandboxedKernelManager

BLANK = "blank"  # the released notebook's own solution cells: `raise NotImplementedError()`


def _score(cell: nbformat.NotebookNode) -> float:
    cell = copy.deepcopy(cell)
    cell.outputs = [o for o in cell.outputs
                    if not (o.output_type == "stream" and o.name == "stderr" and re.search(STDERR_IGNORED, o.text))]
    return float(determine_grade(cell)[0])


def blank_answers(notebook: Notebook) -> dict[str, str]:
    """{solution cell: the code the released notebook gives the student there}."""
    released = nbformat.read(notebook.released, as_version=4)
    return {cells.grade_id(c): c.source for c in released.cells if cells.is_code_solution(c)}


def grade_answers(notebook: Notebook, fills: dict[str, dict[str, str]], split: bool = True,
                  timeout: int = 120) -> dict[str, dict[str, float]]:
    """{name: {test grade id: points}} for each named set of answers ({solution cell: source})."""
    source = nbformat.read(notebook.source, as_version=4)
    facts = cells.facts_of(source)
    reference = answers.reference(notebook)
    for cell in source.cells:
        if cells.is_code_solution(cell):
            cell.source = reference[cells.grade_id(cell)]
    tests = [(i, c) for i, c in enumerate(source.cells) if cells.is_test(c)]
    at = {cells.grade_id(c): i for i, c in enumerate(source.cells) if cells.is_code_solution(c)}
    with tempfile.TemporaryDirectory(prefix="quick-") as folder:
        km = SandboxedKernelManager(kernel_name="python3", mode="none", run_dir=str(Path(folder, "run")),
                                    data_dir=str(notebook.data or ""))
        Path(folder, "run").mkdir()
        trusted = TrustedKernel(Path(folder, "trusted"), "none", -1, 1) if split else None
        executor = GradedExecute(km=km, trusted=trusted, exercises=dict(facts.exercise_kinds),
                                 trusted_setup=list(facts.trusted_setup), settings=Settings(timeout))
        executor.nb = source
        executor.start_record(source, audit=False)
        scores = {}
        try:
            with executor.setup_kernel():
                for index, cell in enumerate(source.cells):
                    if not cells.is_test(cell):
                        executor.preprocess_cell(cell, {}, index)
                for name, fill in fills.items():
                    for gid, text in fill.items():
                        executor.preprocess_cell(new_code_cell(text), {}, at[gid])
                    result = {}
                    for index, cell in tests:
                        ran, _ = executor.preprocess_cell(copy.deepcopy(cell), {}, index)
                        result[cells.grade_id(cell)] = _score(ran)
                    for gid in fill:
                        executor.preprocess_cell(new_code_cell(reference[gid]), {}, at[gid])
                    scores[name] = result
                executor._end_pair()
        finally:
            from jupyter_core.utils import run_sync

            if km.has_kernel:  # nbclient stops only the kernels it started itself
                run_sync(km.shutdown_kernel)(now=True)
            if trusted is not None:
                run_sync(trusted.stop)()
        assert not executor._stopped, f"{notebook.key}: the catalogue run stopped: {executor.record()['events']}"
    return scores
