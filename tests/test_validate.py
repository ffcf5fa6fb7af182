"""`python -m grader validate`, as a student runs it before submitting."""

from __future__ import annotations

import re
import subprocess
import sys

import nbformat
import pytest

from grader.course import answers, layout

pytestmark = pytest.mark.slow
NB = layout.SERIES[0]


def validate(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "validate", str(path)], capture_output=True, text=True,
                          cwd=layout.course().root, timeout=600)


def test_a_finished_notebook_is_ready_to_submit(tmp_path):
    path = tmp_path / NB.filename
    nbformat.write(answers.submission(NB), path)
    done = validate(path)
    assert done.returncode == 0, done.stdout + done.stderr
    visible = [line for line in done.stdout.splitlines() if line.strip().startswith("PASS")]
    assert visible and "ready to submit" in done.stdout
    assert "hidden tests, run when you are graded" in done.stdout
    assert "written_why_pack (2 points): your written answer, graded by your instructor" in done.stdout


def test_an_unfinished_notebook_says_what_is_left(tmp_path):
    path = tmp_path / NB.filename
    nbformat.write(nbformat.read(NB.released, as_version=4), path)
    done = validate(path)
    assert done.returncode == 1
    assert "FAIL test_run_packed_visible" in done.stdout
    assert "the exercise is not done yet (replace `raise NotImplementedError()`)" in done.stdout
    assert re.search(r"0 of \d+ visible tests pass \(2 written questions to answer\)\.", done.stdout)
    assert "TODO written_why_pack (2 points): a written question you have not answered yet" in done.stdout
