"""The student's side in a real JupyterLab and a real Chromium: open, run, fill in, validate; then read
the feedback and the class report as pages.

JupyterLab runs as `python -m grader lab` starts it (grader.lab) on a copy of notebooks/ in a tmp
folder, so nothing a test types reaches the repository. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from helpers import tree_digest
from student_lab import VIEWPORT, NotebookPage, copy_notebooks, running_lab

from grader.course import answers, cells, hidden, layout
from grader.course.cells import is_hidden_in_release as is_hidden

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = layout.course().root / "test-artifacts" / "browser"
INSTRUCTOR_PLUGINS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:assignment-list",
                      "@jupyter/nbgrader:menu"]
INSTRUCTOR_COMMANDS = ["nbgrader:open-formgrader", "nbgrader:open-formgrader-local",
                       "nbgrader:open-create-assignment", "nbgrader:open-assignment-list",
                       "nbgrader:open-course-list"]
# What a student waits for, at most, on a laptop; these machines are slower and shared.
OPEN_LIMIT_S = 60
VALIDATE_LIMIT_S = 120
SUCCESS = "Success! Your notebook passes all the tests."


def kind(cell: nbformat.NotebookNode) -> str:
    """`solution`, `test`, `hidden test` (released with its code removed) or `given` (locked code)."""
    meta = cell.metadata.get("nbgrader", {})
    if meta.get("solution"):
        return "solution"
    if meta.get("grade"):
        return "hidden test" if is_hidden(cell.source) else "test"
    return "given"


def relpath(nb: layout.Notebook) -> str:
    return f"{nb.assignment}/{nb.filename}"


def screenshot(page, name: str, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=full_page)
    return path


# --- fixtures: one Chromium, one JupyterLab for the module ------------------------------------

@pytest.fixture(scope="module")
def browser(chromium):
    return chromium


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a copy of notebooks/; the repository's notebooks are checked untouched at the end."""
    before = tree_digest(layout.course().notebooks)
    tmp = tmp_path_factory.mktemp("lab")
    home = tmp / "home"
    home.mkdir()
    root = copy_notebooks(layout.course().notebooks, tmp / "notebooks")
    with running_lab(root, home) as running:
        yield running
    assert tree_digest(layout.course().notebooks) == before, "a browser test changed notebooks/ in the repository"


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


# --- 1. JupyterLab as the student meets it, TODOs unfilled ------------------------------------

@pytest.mark.parametrize("nb", layout.available(), ids=lambda nb: nb.name)
def test_unfilled_notebook_runs_cell_by_cell(nb, browser, lab, page, record_property):
    """Open the released notebook, run it one Shift+Enter at a time without filling anything in.

    Every visible test must fail with NotImplementedError (the readable failure the notebook
    promises: 'run the test cell after each exercise: no error means that part works'), and no
    given cell may fail: the notebook must run top to bottom before the student has written a line.
    """
    released = nbformat.read(lab.root / relpath(nb), as_version=4)
    assert released == nbformat.read(nb.released, as_version=4), "the tmp copy is not the release"
    student = NotebookPage(page, lab, relpath(nb))
    opened = student.open(OPEN_LIMIT_S)
    record_property("open_s", round(opened, 1))

    # nbgrader's Validate button in the notebook's toolbar; none of the instructor's tools anywhere
    button = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar .validate-button")
    assert button.is_visible() and button.inner_text().strip() == "Validate"
    app = page.evaluate("""(ids) => ({
        plugins: ids.plugins.filter((id) => window.jupyterapp.hasPlugin(id)),
        commands: ids.commands.filter((id) => window.jupyterapp.commands.hasCommand(id)),
        validate: window.jupyterapp.isPluginActivated('@jupyter/nbgrader:validate-assignment'),
        menus: Array.from(document.querySelectorAll('#jp-menu-panel .lm-MenuBar-itemLabel')).map((e) => e.textContent),
        tabs: Array.from(document.querySelectorAll('.jp-SideBar .lm-TabBar-tab'))
                .map((e) => (e.getAttribute('title') || '') + ' ' + e.textContent),
        toasts: Array.from(document.querySelectorAll('.Toastify__toast')).map((e) => e.innerText)})""",
        {"plugins": INSTRUCTOR_PLUGINS, "commands": INSTRUCTOR_COMMANDS})
    assert app["validate"], "nbgrader's validate-assignment plugin is not active"
    assert app["plugins"] == [] and app["commands"] == [], f"instructor extensions loaded: {app}"
    assert "Nbgrader" not in app["menus"], f"the nbgrader menu is in the menu bar: {app['menus']}"
    assert not [t for t in app["tabs"] if "assignment" in t.lower() or "grader" in t.lower()], app["tabs"]
    assert app["toasts"] == [], f"notifications in the student's way: {app['toasts']}"
    for route in ("formgrader", "assignments", "courses"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{lab.url}/{route}", timeout=10)
        assert refused.value.code == 404, f"/{route} answers {refused.value.code}: an instructor server extension is on"

    count = len(released.cells)
    start = time.monotonic()
    shown = student.run_one_by_one()[:count]  # Shift+Enter on the last cell appends an empty one
    record_property("run_unfilled_s", round(time.monotonic() - start, 1))
    screenshot(page, f"lab-{nb.name}-unfilled")

    assert [c.grade_id for c in shown] == [c.metadata.get("nbgrader", {}).get("grade_id", "") for c in released.cells]
    code = [(c, shown[i]) for i, c in enumerate(released.cells) if c.cell_type == "code"]
    unrun = [s.index for c, s in code if s.execution_count is None]
    assert not unrun, f"cells that did not run: {unrun}"
    for cell, seen in code:
        if kind(cell) == "test":
            assert [o["ename"] for o in seen.outputs if o["type"] == "error"] == ["NotImplementedError"], \
                f"{seen.grade_id}: expected one NotImplementedError with the TODOs unfilled, got {seen.outputs}"
            assert "NotImplementedError" in student.shown_text(seen.index), f"{seen.grade_id}: the error is not on the page"
        elif kind(cell) in ("hidden test", "solution"):
            assert seen.outputs == [], f"{seen.grade_id} ({kind(cell)}) printed {seen.outputs}"
    given_errors = {s.grade_id: s.errors for c, s in code if kind(c) == "given" and s.errors}
    record_property("given_cells_with_errors", json.dumps(given_errors))
    assert not given_errors, (
        f"{nb.key}: given cells fail before the student has filled in the TODOs (guard them, e.g. skip "
        f"with a message while an exercise still raises NotImplementedError): {given_errors}")


# --- 2. The reference typed in, run, validated ----------------------------------------------

@pytest.mark.parametrize("nb", layout.available(), ids=lambda nb: nb.name)
def test_reference_typed_in_runs_and_validates(nb, browser, lab, page, record_property):
    """Type the reference answers (and a model answer to each written question) into the TODO cells, run
    everything, see the figures, press Validate."""
    student = NotebookPage(page, lab, relpath(nb))
    student.open(OPEN_LIMIT_S)
    reference = answers.reference(nb)
    written = answers.model_answers(nb)  # Validate wants every written question answered too
    fill = {**reference, **written}
    todo = [c for c in student.cells() if c.grade_id in fill]
    assert {c.grade_id for c in todo} == set(fill), "solution cells missing from the page"
    assert {c.type for c in todo if c.grade_id in written} <= {"markdown"}
    for cell in todo:
        student.type_into(cell.index, fill[cell.grade_id])
    typed = {c.grade_id: c.source for c in student.cells() if c.grade_id in fill}
    assert typed == fill, "the editor changed the typed answers"

    start = time.monotonic()
    shown = student.restart_and_run_all()
    record_property("run_all_s", round(time.monotonic() - start, 1))
    errors = {c.grade_id or c.index: c.errors for c in shown if c.errors}
    assert not errors, f"errors with the reference answers: {errors}"
    assert [c.index for c in shown if c.type == "code" and c.execution_count is None] == []

    figures = sum(c.image_outputs for c in shown)
    images = student.images()
    assert figures >= 1, "no figure in the notebook"
    assert len(images) == figures, f"{figures} image outputs, {len(images)} <img> on the page"
    broken = [img for img in images if not img["complete"] or img["width"] == 0]
    assert not broken, f"images that did not render: {broken}"
    student.cell_node(images[0]["cell"]).scroll_into_view_if_needed()
    screenshot(page, f"lab-{nb.name}-reference")

    title, body, took = student.validate(VALIDATE_LIMIT_S)
    record_property("validate_s", round(took, 1))
    print(f"{nb.key}: Validate answered in {took:.1f} s")
    assert title == "Validation Results" and SUCCESS in body, f"{title}: {body}"
    student.close_dialog()
    student.shut_down_kernel()

    saved = nbformat.read(lab.root / relpath(nb), as_version=4)  # Validate saves first
    assert {cells.grade_id(c): c.source for c in saved.cells if cells.is_solution(c)} == fill


# --- 3. The demo's feedback and class report, as pages --------------------------------------------------

def open_file_page(page, path: Path) -> tuple[str, list[dict], list[str]]:
    """Open a file:// page offline; its readable text, its images and the outside URLs it asked for."""
    asked: list[str] = []
    page.route(lambda url: not url.startswith(("file:", "data:")),
               lambda route: (asked.append(route.request.url), route.abort()))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("() => Array.from(document.images).every((img) => img.complete)")
    images = page.evaluate("() => Array.from(document.images).map((img) => "
                           "({src: img.src.slice(0, 40), width: img.naturalWidth, height: img.naturalHeight}))")
    return page.evaluate("() => document.body.innerText"), images, asked


def test_feedback_pages_of_the_demo(browser, demo_run, page):
    """Every feedback page `make demo` writes: images load, and no hidden test line shows."""
    pages = sorted((demo_run / "feedback").glob("*/*/*.html"))
    assert len(pages) == 3 * len(layout.available())
    for path in pages:
        student, assignment = path.parent.parent.name, path.parent.name
        nb = next(nb for nb in layout.available() if nb.assignment == assignment)
        text, images, asked = open_file_page(page, path)
        screenshot(page, f"feedback-{student}-{nb.name}", full_page=True)
        assert not [img for img in images if img["width"] == 0], f"{path}: images that did not load: {images}"
        secrets = cells.secrets_of(nbformat.read(nb.source, as_version=4))
        # A hidden test's line that the student wrote in their own answer is theirs to see.
        written = set()
        for upload in (layout.course().demo_submissions / student / assignment).glob("*.ipynb"):  # renamed ones too
            try:
                written |= {line.strip() for cell in nbformat.read(upload, as_version=4).cells
                            for line in cell.source.splitlines()}
            except ValueError:  # not a notebook: its page is a notice
                continue
        assert hidden.leaks(text, frozenset(secrets.hidden - written)) == [], f"hidden test lines on {path}"
        print(f"{student}/{nb.key}: {len(images)} images; outside requests (blocked): {asked}")


def test_class_report_page_of_the_demo(browser, demo_run, page):
    text, images, asked = open_file_page(page, demo_run / "report.html")
    screenshot(page, "report", full_page=True)
    assert images, "the report has no score plot"
    assert not [img for img in images if img["width"] == 0], f"images that did not load: {images}"
    assert asked == [], f"the report asks the network for {asked}"
    for nb in layout.available():
        assert nb.key in text
        secrets = cells.secrets_of(nbformat.read(nb.source, as_version=4))
        assert hidden.leaks(text, secrets.hidden) == [], f"hidden test lines of {nb.key} in the report"
