"""Shared fixtures: the course's notebooks, and one autograde run over every catalogued answer; and how the suite
is spread over processes (pytest-xdist, `make test`): an expensive session fixture is built once per run, on disk,
by whichever process needs it first (`built_once`); the tests that share a module-scoped fixture run in one process.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import shutil
import traceback
from collections.abc import Callable
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
# Module-scoped fixtures that hold an event loop running in the test process's thread (Playwright's sync API): every
# test of a module that uses one runs in that module's group, so no other test of the module runs while it is open.
LOOP_HOLDERS = {"chromium"}
# The longest groups, longest first: each starts as soon as a process is free, so that none of them is left to
# run alone at the end (`make test` passes --no-loadscope-reorder: the order here is the order of the run).
# The browser's group (one JupyterLab, one Chromium, the notebooks typed in and run) is the longest by far, then
# the notebooks' full runs.
LONGEST_FIRST = ["test_browser.browser", "test_notebooks.full_runs"]


def pytest_sessionstart(session) -> None:
    """Prepare the course and the clean kernel's picture once, before any test process reads them."""
    if not hasattr(session.config, "workerinput"):  # the main process (or the only one)
        from grader.course.prepared import cached_course
        from grader.grading.integrity import reference_objects

        cached_course(layout.course().private_cache(), layout.available())
        reference_objects(layout.course().private_cache())


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder `name`, filled by `build(folder)` once per test run: the first test process that asks builds it,
    any other that asks meanwhile waits for it (a session fixture is per process; the folder is the run's). A build
    that failed is not tried again: every later ask fails at once with its error."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, above each test process's own
    folder, done, failed = base / f"once-{name}", base / f"once-{name}.done", base / f"once-{name}.failed"
    with open(base / f"once-{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            raise RuntimeError(f"building {name} failed earlier in this run:\n{failed.read_text()}")
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            try:
                build(folder)
            except BaseException:
                failed.write_text(traceback.format_exc()[-5000:])
                raise
            done.touch()
    return folder


def module_fixtures(item) -> set[str]:
    """The module-scoped fixtures `item` uses (directly or through another fixture), as `module.fixture`."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return set()
    found = set()
    for name in info.names_closure:
        defs = info.name2fixturedefs.get(name) or []
        if defs and defs[-1].scope == "module" and defs[-1].baseid:
            found.add(f"{item.module.__name__}.{name}")
    return found


def pytest_collection_modifyitems(config, items) -> None:
    """Put tests that share a module-scoped fixture in one xdist group (groups that share a fixture merge; every
    test of a module that uses a LOOP_HOLDERS fixture joins it), unless a test names its group itself
    (`@pytest.mark.xdist_group("name")`)."""
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    uses = {}
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        shared = sorted(module_fixtures(item))
        uses[item] = shared
        for other in shared[1:]:
            parent[root(other)] = root(shared[0])
    holders = {item.module.__name__: f"{item.module.__name__}.{name}" for item, shared in uses.items()
               for name in LOOP_HOLDERS if f"{item.module.__name__}.{name}" in shared}
    for item, shared in uses.items():
        group = holders.get(item.module.__name__) or (shared[0] if shared else None)
        if group:
            item.add_marker(pytest.mark.xdist_group(root(group)))
    items.sort(key=run_order)


def run_order(item) -> tuple[int, int]:
    """Where `item` goes in the run: the longest groups first, then the other slow tests, the fast ones last (they
    fill the gaps at the end)."""
    marker = item.get_closest_marker("xdist_group")
    group = marker.args[0] if marker else ""
    if group in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(group))
    return (1 if item.get_closest_marker("slow") else 2, 0)


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


def grade_catalogue(root: Path) -> None:
    """Write and grade (in one run, into root/out) every notebook's reference, untouched release, release with its
    tests edited to `pass`, and sample of the catalogued answers, at the default time limits (measured from each
    reference, once per change of the source notebooks): each submission is its own student, `<notebook>--<answer>`."""
    subs = root / "submissions"
    for nb in NOTEBOOKS:
        write_submission(subs, f"{nb.name}--reference", nb, answers.submission(nb))
        untouched = nbformat.read(nb.released, as_version=4)
        write_submission(subs, f"{nb.name}--untouched", nb, untouched)
        write_submission(subs, f"{nb.name}--tests_edited_to_pass", nb, with_tests_replaced(untouched, "pass"))
        for answer in sampled(nb):
            write_submission(subs, f"{nb.name}--{answer.name}", nb, answers.submission(nb, {answer.cell: answer.source}))
    autograde(subs, root / "out", workers=2)


@pytest.fixture(scope="session")
def catalogue_run(tmp_path_factory) -> CatalogueRun:
    """Grade through the real autograder, in one run per test run (`grade_catalogue`)."""
    out = built_once(tmp_path_factory, "catalogue", grade_catalogue) / "out"
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

    def grade_demo(folder: Path) -> None:
        seed_marks(folder / "out")
        autograde(layout.course().demo_submissions, folder / "out", timeout=20)

    return built_once(tmp_path_factory, "demo", grade_demo) / "out"


def catalogue_fills(notebook: layout.Notebook) -> dict[str, dict[str, str]]:
    """The reference, the untouched release and every catalogued answer, as {name: {solution cell: source}}."""
    from quick import BLANK, blank_answers

    return {"reference": {}, BLANK: blank_answers(notebook)} | {a.name: {a.cell: a.source} for a in answers.catalogue(notebook)}


def grade_both_ways(notebook: layout.Notebook, folder: Path) -> None:
    """folder/scores.json: every catalogued answer of `notebook` graded with the tests in a trusted kernel and in
    the student's (tests/quick.py), at once: the two runs are serial, so two cores halve the wait."""
    from concurrent.futures import ThreadPoolExecutor

    from quick import grade_answers

    fills = catalogue_fills(notebook)
    answers.reference(notebook)  # parsed here once: ast.parse in two threads at once trips CPython 3.11
    with ThreadPoolExecutor(2) as both:
        split = both.submit(grade_answers, notebook, fills, True)
        single = both.submit(grade_answers, notebook, fills, False)
        (folder / "scores.json").write_text(json.dumps([split.result(), single.result()]))


@pytest.fixture(scope="session")
def catalogue_scores(tmp_path_factory):
    """{notebook name: (trusted-kernel scores, one-kernel scores)}, each {answer: {test cell: points}}, graded
    once per test run on first use (`grade_both_ways`)."""
    cache: dict[str, tuple[dict, dict]] = {}

    def scores(notebook: layout.Notebook) -> tuple[dict, dict]:
        if notebook.name not in cache:
            folder = built_once(tmp_path_factory, f"scores-{notebook.name}", lambda f: grade_both_ways(notebook, f))
            split, single = json.loads((folder / "scores.json").read_text())
            cache[notebook.name] = (split, single)
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
