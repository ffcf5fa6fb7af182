"""Shared fixtures: the course's notebooks, and one autograde run over every catalogued answer."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from helpers import require, write_submission

from grader.course import answers, layout
from grader.results import Row, load_all
from grader.run.autograde import autograde

# The course folder of every test: this repository's, wherever pytest was started.
layout.use_course(Path(__file__).resolve().parents[1])
NOTEBOOKS = layout.available()


@pytest.fixture(scope="session", params=NOTEBOOKS, ids=[nb.name for nb in NOTEBOOKS])
def notebook(request) -> layout.Notebook:
    return request.param


def with_tests_replaced(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """A copy of `nb` whose test cells all read `source` (a student 'fixing' the tests)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = source
    return nb


@dataclass
class CatalogueRun:
    """The rows of one autograde run, by (notebook, answer), and its OUT folder."""

    out: Path
    rows: dict[tuple[str, str], Row]

    def __getitem__(self, key: tuple[str, str]) -> Row:
        return self.rows[key]


def sampled(nb: layout.Notebook) -> list[answers.Answer]:
    """The catalogued answers also graded end to end: the tailored one, a correct one, the first wrong one."""
    catalogue = answers.catalogue(nb)
    picks = [a for a in catalogue if a.name == "visible_tests_only"]
    picks += [next(a for a in catalogue if a.correct), next(a for a in catalogue if not a.correct)]
    return list({a.name: a for a in picks}.values())


@pytest.fixture(scope="session")
def catalogue_run(tmp_path_factory) -> CatalogueRun:
    """Grade through the real autograder, in one run: for every notebook the reference, the untouched
    release, the release with its tests edited to `pass`, and a sample of the catalogued answers, at the
    default time limits (measured from each reference, once per change of the source notebooks).

    Each submission is its own student, `<notebook>--<answer>`.
    """
    root = tmp_path_factory.mktemp("catalogue")
    subs, out = root / "submissions", root / "out"
    for nb in NOTEBOOKS:
        write_submission(subs, f"{nb.name}--reference", nb, answers.submission(nb))
        untouched = nbformat.read(nb.released, as_version=4)
        write_submission(subs, f"{nb.name}--untouched", nb, untouched)
        write_submission(subs, f"{nb.name}--tests_edited_to_pass", nb, with_tests_replaced(untouched, "pass"))
        for answer in sampled(nb):
            write_submission(subs, f"{nb.name}--{answer.name}", nb, answers.submission(nb, {answer.cell: answer.source}))
    autograde(subs, out, workers=2)
    found = {}
    for row in load_all(out):
        name, answer = row.student_id.split("--", 1)
        if name == row.notebook:
            found[(name, answer)] = row
    return CatalogueRun(out, found)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """OUT of grading the bundled demo class (complete, partial and broken submissions), as `make demo` does, with
    the written answers its instructor graded (demo/manual_grades.csv)."""
    from grader.demo.build import seed_marks

    out = tmp_path_factory.mktemp("demo") / "out"
    seed_marks(out)
    autograde(layout.course().demo_submissions, out, timeout=20)
    return out


def catalogue_fills(notebook: layout.Notebook) -> dict[str, dict[str, str]]:
    """The reference, the untouched release and every catalogued answer, as {name: {solution cell: source}}."""
    from quick import BLANK, blank_answers

    return {"reference": {}, BLANK: blank_answers(notebook)} | {a.name: {a.cell: a.source} for a in answers.catalogue(notebook)}


@pytest.fixture(scope="session")
def catalogue_scores():
    """{notebook name: (trusted-kernel scores, one-kernel scores)}, each {answer: {test cell: points}}, graded
    on first use, both ways at once (tests/quick.py): the two runs are serial, so two cores halve the wait."""
    from concurrent.futures import ThreadPoolExecutor

    from quick import grade_answers

    cache: dict[str, tuple[dict, dict]] = {}

    def scores(notebook: layout.Notebook) -> tuple[dict, dict]:
        if notebook.name not in cache:
            fills = catalogue_fills(notebook)
            answers.reference(notebook)  # parsed here once: ast.parse in two threads at once trips CPython 3.11
            with ThreadPoolExecutor(2) as both:
                split = both.submit(grade_answers, notebook, fills, True)
                single = both.submit(grade_answers, notebook, fills, False)
                cache[notebook.name] = (split.result(), single.result())
        return cache[notebook.name]

    return scores


@pytest.fixture(scope="session")
def quick_scores(catalogue_scores):
    """Every catalogued answer graded as the grader grades: test cells in a trusted kernel."""
    return lambda notebook: catalogue_scores(notebook)[0]


@pytest.fixture(scope="session")
def single_kernel_scores(catalogue_scores):
    """The same answers with the test cells in the student's kernel, as stock nbgrader runs them."""
    return lambda notebook: catalogue_scores(notebook)[1]


@pytest.fixture(scope="session")
def prepared_course():
    """The course prepared for every released notebook (cached across runs in .cache)."""
    from grader.course.prepared import cached_course

    return cached_course(layout.course().private_cache(), layout.available())


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium under Playwright, headless (never a browser Playwright downloads).

    Module-scoped: Playwright's sync API keeps an event loop running in this thread while it is open, so a
    session-wide browser would make every later `asyncio.run` in the suite fail."""
    from devtools.screenshots import CHROMIUM, launch

    require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        browser = launch(p)
        yield browser
        browser.close()
