"""Feedback shows a student their work and their points, and never a hidden test's source."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from conftest import sampled
from helpers import write_submission

from devtools.stock import stock_autograde, stock_course, stock_feedback
from grader import results
from grader.course import answers, layout
from grader.course.cells import secrets_of
from grader.course.hidden import html_text, leaks

pytestmark = pytest.mark.slow


def unseen_hidden_lines(nb: layout.Notebook) -> frozenset[str]:
    """Hidden-test lines, minus any line a catalogued answer itself contains (a student may see their own code)."""
    hidden = secrets_of(nbformat.read(nb.source, as_version=4)).hidden
    written = {line.strip() for a in answers.catalogue(nb) for line in a.source.splitlines()}
    return frozenset(hidden - written)


def feedback_text(out, student: str, nb: layout.Notebook) -> str:
    return html_text(results.feedback_path(out, student, nb.assignment, nb.name).read_text())


def test_feedback_never_shows_a_hidden_test(catalogue_run, notebook):
    lines = unseen_hidden_lines(notebook)
    assert lines
    students = [row.student_id for (name, _), row in catalogue_run.rows.items() if name == notebook.name]
    assert len(students) >= 5
    for student in students:
        assert leaks(feedback_text(catalogue_run.out, student, notebook), lines) == [], student


def test_feedback_shows_points_and_why_a_hidden_test_failed(catalogue_run, notebook):
    row = catalogue_run[(notebook.name, "untouched")]
    text = feedback_text(catalogue_run.out, row.student_id, notebook)
    assert f"Score: 0 / {row.max_score:g}" in text
    hidden = [c for c in row.cells if c.hidden]
    assert hidden and all(c.grade_id in text for c in hidden)
    assert text.count("NotImplementedError") >= len(hidden), "each failed hidden test shows its error type"


def test_feedback_says_why_each_hidden_test_of_a_wrong_answer_failed(catalogue_run, notebook):
    """Every hidden test a wrong answer fails shows an error (type and message) right below its points."""
    for answer in (a for a in sampled(notebook) if not a.correct):
        row = catalogue_run[(notebook.name, answer.name)]
        text = feedback_text(catalogue_run.out, row.student_id, notebook)
        failed = [c for c in row.cells if c.hidden and c.score < c.max_score]
        assert failed, answer.name
        for cell in failed:
            after = text[text.index(cell.grade_id):][:3000]
            assert re.search(r"\b\w+(Error|Exception)\b|wrong value|the same error as above", after), (
                answer.name, cell.grade_id)


def test_a_hidden_test_s_message_stays_in_the_row_and_off_the_page(catalogue_run, notebook):
    """A hidden test's message may hold its expected values: the row and the report keep it, the page never
    shows it (neither in the summary nor in the cell's output). Checked on the test's own checks (assertions):
    an error the student's code raised is theirs, and a visible test may show the same one."""
    checked = 0
    for answer in (a for a in sampled(notebook) if not a.correct):
        row = catalogue_run[(notebook.name, answer.name)]
        page = feedback_text(catalogue_run.out, row.student_id, notebook)
        for cell in row.cells:
            if cell.hidden and cell.score < cell.max_score:
                assert cell.message, (answer.name, cell.grade_id)
                said = cell.message.split(": ", 1)[-1].strip()
                if cell.message.startswith("AssertionError") and len(said) >= 15:
                    assert said not in page, (answer.name, cell.grade_id, said)
                    checked += 1
    report = html_text((catalogue_run.out / "report.html").read_text())
    assert checked == 0 or any(c.message.split(": ", 1)[-1].strip() in report
                               for (name, _), row in catalogue_run.rows.items() if name == notebook.name for c in row.cells
                               if c.hidden and c.message)


def stock_feedback_page(root, nb: layout.Notebook) -> str:
    """Stock nbgrader's feedback for the untouched release of `nb`, from a stock course of its own."""
    subs = root / "submissions"
    write_submission(subs, "student", nb, nbformat.read(nb.released, as_version=4))
    course = stock_course(root, [nb], subs)
    assert stock_autograde(course, nb.assignment, timeout=600).returncode == 0
    assert stock_feedback(course, nb.assignment).returncode == 0
    return html_text((course / "feedback" / "student" / nb.assignment / f"{nb.name}.html").read_text())


@pytest.fixture(scope="module")
def stock_feedback_pages(tmp_path_factory):
    """Stock nbgrader's feedback for every notebook; a course each, so two are built at once (each
    `nbgrader` command spends most of its time starting up, on one core)."""
    with ThreadPoolExecutor(2) as pool:
        pages = {nb: pool.submit(stock_feedback_page, tmp_path_factory.mktemp(f"stock-{nb.name}"), nb)
                 for nb in layout.available()}
    return {nb: page.result() for nb, page in pages.items()}


def test_control_the_same_check_catches_stock_feedback(stock_feedback_pages):
    for nb, page in stock_feedback_pages.items():
        assert leaks(page, unseen_hidden_lines(nb)), f"stock nbgrader shows {nb.key}'s hidden tests"
