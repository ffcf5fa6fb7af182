"""Written answers graded in nbgrader's formgrader, in Chromium, as an instructor does it.

`python -m grader formgrader OUT` on a copy of the demo's OUT: JupyterLab opens with formgrader; through its
pages the test gives ben's ungraded written answer points and a comment, then stops the command (which brings
OUT up to date), and finds the score and the comment in grades.csv, on ben's page and the score in a Canvas
import. Cat's answer holds an `<img onerror>` and a `<script>`: formgrader and cat's page show it as text and
nothing runs; the control puts nbgrader's own autograded notebook (what a stock course holds) in its place,
and the same formgrader runs it.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port, read_grades_csv, require

from grader import results
from grader.course import layout
from grader.course.hidden import html_text
from grader.demo.build import HOSTILE_ANSWER
from grader.demo.round_trip import COLUMNS, GRADEBOOK
from grader.manual.course import autograded_path, course_root

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NB = layout.available()[0]  # ben's first notebook: one written answer graded in demo/manual_grades.csv, one not
GID = "written_why_pack"  # ben's ungraded answer
HOSTILE = "written_gates_and_gradients"  # cat's answer with markup
COMMENT = "Right about the final state; what does padding do to the backward direction? <b>not bold</b>"
XSS_FLAG = "window.graderXss"


def start(out: Path, home: Path) -> tuple[subprocess.Popen, str, Path]:
    """`python -m grader formgrader OUT` on a free port, no token, until its JupyterLab answers."""
    port = free_port()
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    log = home / "formgrader.log"
    with log.open("w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "grader", "formgrader", str(out), "--no-browser",
                                 f"--port={port}", "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=",
                                 "--ServerApp.password="], cwd=layout.course().root, env=env, stdout=f,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"formgrader exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                return proc, url, log
        except OSError:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise RuntimeError(f"formgrader did not answer in 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)


def stop(proc: subprocess.Popen) -> int:
    """SIGTERM to the command (not its group): it stops JupyterLab, then brings OUT up to date."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def submission(page, frame, student: str) -> None:
    """From formgrader's Manual Grading page, open `student`'s submission of notebook NB (names shown), and wait
    until formgrader has bound its score and comment boxes: it does on the window's load event, after MathJax has
    loaded from its CDN or failed to, and a value typed before that is overwritten, unsaved."""
    frame.get_by_role("link", name="Manual Grading").click()
    frame.get_by_role("link", name=NB.assignment).click()
    frame.get_by_role("link", name=NB.name).click()
    frame.locator("td.name a.name-hidden").first.wait_for()
    frame.get_by_role("button", name="Show All Names").click()
    frame.locator("td.name a.name-shown", has_text=student).click()
    frame.locator("input.score").first.wait_for()
    real = next(f for f in page.frames if "/formgrader/submissions/" in f.url)
    real.wait_for_function("window.formgrader && formgrader.grades && formgrader.grades.loaded "
                           "&& formgrader.comments && formgrader.comments.loaded")


def saved_in_gradebook(out: Path, student: str) -> tuple[float | None, str | None]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_root(out) / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(NB.name, NB.assignment, student)
        grade = next(g for g in sub.grades if g.name == GID)
        comment = next(c for c in sub.comments if c.name == GID)
        return grade.manual_score, comment.manual_comment


@pytest.fixture(scope="module")
def graded_out(demo_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("formgrader") / "out"
    shutil.copytree(demo_run, out)
    return out


def test_grade_a_written_answer_in_formgrader(graded_out, chromium, tmp_path):
    """The demo's OUT (graded before the browser opens: Playwright's loop would stop autograde's asyncio.run)."""
    require(shutil.which("jupyter", path=str(Path(sys.executable).parent)) is not None, "no jupyter in the venv")
    out = graded_out
    before = read_grades_csv(out)[("ben", NB.key)]
    assert before.to_grade == 2.0 and before.manual_score == 1.0
    started = time.monotonic()
    proc, url, log = start(out, tmp_path)
    try:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        page.goto(f"{url}/lab?formgrader=true")
        frame = page.frame_locator("iframe").first
        frame.get_by_role("link", name="Manual Grading").wait_for()
        real = next(f for f in page.frames if "/formgrader" in f.url)

        # ben: the written answer left to grade gets 1.5 points and a comment, typed into formgrader's boxes
        submission(page, frame, "ben")
        boxes = frame.locator("input.score").evaluate_all("els => els.map(e => e.id)")
        assert boxes == ["written_gates_and_gradients", GID], "only the written answers have a score box"
        frame.locator(f"#{GID}").fill("1.5")
        frame.locator(f"#{GID}").press("Tab")
        frame.locator(f"#{GID}-comment").fill(COMMENT)
        frame.locator(f"#{GID}-comment").press("Tab")
        deadline = time.monotonic() + 20
        while saved_in_gradebook(out, "ben") != (1.5, COMMENT):
            assert time.monotonic() < deadline, f"formgrader did not save: {saved_in_gradebook(out, 'ben')}"
            time.sleep(0.3)
        page.screenshot(path=tmp_path / "ben.png")

        # cat: the answer with an <img onerror> and a <script> is text in formgrader; nothing ran
        real = next(f for f in page.frames if "/formgrader" in f.url)
        real.goto(f"{url}/formgrader")
        submission(page, frame, "cat")
        real = next(f for f in page.frames if "/formgrader" in f.url)
        shown = real.locator("div.nbgrader_cell", has=real.locator(f"#{HOSTILE}")).first.inner_text()
        assert 'Packing <img src="x" onerror=' in shown and "<script>" in shown
        assert real.evaluate(XSS_FLAG) is None, "the answer's markup ran in formgrader"

        # control: nbgrader's own autograded notebook, as a stock course holds it, in the same formgrader: it runs
        raw = results.graded_path(out, "cat", NB.assignment, NB.name)
        escaped = autograded_path(course_root(out), "cat", NB.assignment, NB.name)
        kept = escaped.read_text()
        shutil.copyfile(raw, escaped)
        real.goto(real.url)
        real.wait_for_selector(f"#{HOSTILE}")
        page.wait_for_timeout(500)
        assert real.evaluate(XSS_FLAG) == 2, "the control: the stock notebook's <img onerror> and <script> both run"
        escaped.write_text(kept)
    finally:
        status = stop(proc)
    took = time.monotonic() - started
    assert status == 0, log.read_text()[-3000:]
    print(f"formgrader: started, graded and stopped in {took:.0f} s")

    # the command brought grades.csv, the pages and the report up to date when JupyterLab stopped
    after = read_grades_csv(out)[("ben", NB.key)]
    assert (after.manual_score, after.to_grade, after.score) == (2.5, 0.0, before.score + 1.5)
    assert f'{GID} 1.5/2 ("{COMMENT}")' in after.detail and after.status == before.status
    page_text = html_text(results.feedback_path(out, "ben", NB.assignment, NB.name).read_text())
    assert "Graded by your instructor: 1.5 / 2 points." in page_text and COMMENT in page_text
    assert f"Score: {after.score:g} / {after.max_score:g}" in page_text
    cat_page = results.feedback_path(out, "cat", NB.assignment, NB.name).read_text()
    assert HOSTILE_ANSWER.split("\n")[0] in html_text(cat_page) and "onerror=" not in cat_page.replace("&quot;", '"') \
        .split("<pre")[0], "cat's answer is text on the page too"
    assert "left to grade" in (out / "report.html").read_text()

    # a Canvas import: ben's assignment has its full score now; cat's answer is still ungraded: blank, said so
    target = tmp_path / "canvas.csv"
    done = subprocess.run([sys.executable, "-m", "grader", "export", str(out), "--format", "canvas", "--roster",
                           str(layout.course().demo_canvas / GRADEBOOK), "--to", str(target), "--assignment", NB.assignment],
                          cwd=layout.course().root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--ungraded blank" in done.stderr and "cat/" in done.stderr
    done = subprocess.run([sys.executable, "-m", "grader", "export", str(out), "--format", "canvas", "--roster",
                           str(layout.course().demo_canvas / GRADEBOOK), "--to", str(target), "--assignment", NB.assignment,
                           "--ungraded", "blank"], cwd=layout.course().root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with target.open(newline="", encoding="utf-8") as f:
        header, _, *students = list(csv.reader(f))
    column = header.index(COLUMNS[NB.assignment])
    got = {line[2]: line[column] for line in students}
    assert got["ben"] == f"{after.score:.2f}" and got["cat"] == "" and "left blank" in done.stdout
