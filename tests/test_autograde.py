"""The autograder on a realistic class: every status with a real kernel, regrades, reruns, errors."""

from __future__ import annotations

import copy
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import read_grades_csv, tree_digest, write_submission
from nbformat.v4 import new_code_cell

from grader import results
from grader.course import answers, layout
from grader.course.hidden import html_text
from grader.errors import GraderError
from grader.run.autograde import autograde

NB = layout.SERIES[0]
REFERENCE = answers.reference(NB)["run_packed"]
CRASH_ON_LSTM = REFERENCE.replace('    """Run', '    if isinstance(rnn, nn.LSTM):\n        import os\n        os._exit(1)\n    """Run', 1)


def cell_index(nb: nbformat.NotebookNode, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def with_cell_after(nb, grade_id: str, source: str):
    nb = copy.deepcopy(nb)
    nb.cells.insert(cell_index(nb, grade_id) + 1, new_code_cell(source))
    return nb


def edited(nb, grade_id: str, change):
    nb = copy.deepcopy(nb)
    change(nb, cell_index(nb, grade_id))
    return nb


def build_class(subs: Path) -> None:
    """One student per situation an instructor meets, all on notebook 1."""
    good = answers.submission(NB)
    write_submission(subs, "good", NB, good)
    write_submission(subs, "crash_mid_tests", NB, answers.submission(NB, {"run_packed": CRASH_ON_LSTM}))
    write_submission(subs, "loop_at_end", NB, with_cell_after(good, "packing_in_practice", "while True:\n    pass"))
    write_submission(subs, "ignores_interrupt", NB, with_cell_after(
        good, "test_run_packed_visible",
        "import time\nwhile True:\n    try:\n        time.sleep(1)\n    except KeyboardInterrupt:\n        pass"))
    write_submission(subs, "floods_output", NB, with_cell_after(good, "run_packed", "for _ in range(100_000):\n    print('y' * 100)"))
    write_submission(subs, "one_giant_print", NB, with_cell_after(good, "test_run_packed_visible", "print('z' * 100_000_000)"))
    write_submission(subs, "not_json", NB, '{"cells": [')
    write_submission(subs, "not_a_notebook", NB, '{"cells": "none", "metadata": {}}')
    (subs / "misnamed" / NB.assignment).mkdir(parents=True)
    nbformat.write(good, subs / "misnamed" / NB.assignment / "Packed Sequences (1).ipynb")
    (subs / "only_a_script" / NB.assignment).mkdir(parents=True)
    (subs / "only_a_script" / NB.assignment / "packed_sequences.py").write_text("print('exported as a script')")
    (subs / "nothing").mkdir()
    write_submission(subs, "deleted_test", NB, edited(good, "test_run_packed_hidden_lstm", lambda nb, i: nb.cells.pop(i)))
    write_submission(subs, "duplicated_test", NB, edited(
        good, "test_run_packed_visible", lambda nb, i: nb.cells.insert(i, copy.deepcopy(nb.cells[i]))))
    write_submission(subs, "renamed_test", NB, edited(
        good, "test_run_packed_visible", lambda nb, i: nb.cells[i].metadata.nbgrader.update(grade_id="my_test")))
    write_submission(subs, "more_points", NB, edited(
        good, "test_run_packed_visible", lambda nb, i: nb.cells[i].metadata.nbgrader.update(points=100)))
    # Debris an LMS export or an operating system leaves behind.
    for junk in ("__MACOSX/good", ".hidden", "good/.ipynb_checkpoints"):
        (subs / junk).mkdir(parents=True, exist_ok=True)
        (subs / junk / "packed_sequences-checkpoint.ipynb").write_text("{}")
    (subs / "good" / "notes.txt").write_text("my notes")


EXPECTED = {  # student: (status, score); notebook 1 is worth 16: lstm_cell 6, run_packed 10
    "good": ("graded", 16),
    "crash_mid_tests": ("kernel_died", 12),  # lstm_cell 6, then visible 3 + order 2 + width 1 before the LSTM test
    "loop_at_end": ("timeout", 16),
    "ignores_interrupt": ("timeout", 9),  # lstm_cell 6 and run_packed's visible 3 ran before the kernel had to be stopped
    "floods_output": ("output_limit", 16),
    "one_giant_print": ("output_limit", 9),  # a 100 MB message is dropped, the kernel stopped after the visible test
    "not_json": ("invalid_notebook", 0),
    "not_a_notebook": ("invalid_notebook", 0),
    "misnamed": ("graded", 16),  # a browser's copy mark and another case: placed, the detail says so
    "only_a_script": ("missing", 0),
    "nothing": ("not_submitted", 0),
    "deleted_test": ("tampered", 16),
    "duplicated_test": ("tampered", 16),
    "renamed_test": ("tampered", 16),
    "more_points": ("tampered", 16),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    subs, out = root / "submissions", root / "out"
    build_class(subs)
    before = tree_digest(subs)
    autograde(subs, out, workers=2, timeout=15, assignment=[NB.assignment])
    assert tree_digest(subs) == before, "SUBMISSIONS was modified"
    return subs, out


pytestmark = pytest.mark.slow


def test_every_student_gets_the_expected_row(graded):
    _, out = graded
    grades = read_grades_csv(out)
    assert sorted(s for s, _ in grades) == sorted(EXPECTED), "one row per student folder, debris ignored"
    assert {key for _, key in grades} == {NB.key}
    got = {s: (r.status, r.score) for (s, _), r in grades.items()}
    assert got == {s: (status, float(score)) for s, (status, score) in EXPECTED.items()}
    assert all(r.max_score == 16 + 2 * 2 for r in grades.values()), "16 test points, two written answers of 2"


def test_grades_csv_columns_and_order(graded):
    _, out = graded
    with (out / "grades.csv").open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames[:8] == ["student_id", "assignment", "notebook", "score", "max_score", "status",
                                     "manual_score", "to_grade"]
    assert [r["student_id"] for r in rows] == sorted(r["student_id"] for r in rows)


def test_details_say_what_happened(graded):
    _, out = graded
    grades = read_grades_csv(out)
    detail = {s: r.detail for (s, _), r in grades.items()}
    assert "'Packed Sequences (1).ipynb' taken as packed_sequences.ipynb" in detail["misnamed"]
    assert "packed_sequences.py" in detail["only_a_script"]
    assert "the kernel died while running the test `test_run_packed_hidden_lstm`" in detail["crash_mid_tests"]
    assert "cell 3" not in detail["crash_mid_tests"], "a cell is named by its exercise, not its index"
    assert "deleted" in detail["deleted_test"]
    assert "more than once" in detail["duplicated_test"]
    assert "my_test" in detail["renamed_test"]
    assert "points" in detail["more_points"]
    assert "not JSON" in detail["not_json"]


def test_every_row_has_feedback(graded):
    _, out = graded
    for student in EXPECTED:
        page = results.feedback_path(out, student, NB.assignment, NB.name)
        assert page.exists(), student
        assert "Score:" in html_text(page.read_text())


def test_report_shows_plots_roster_failures_and_unplaced_files(graded):
    _, out = graded
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 1 and "<img" in page
    text = html_text(page)
    for student, (status, _) in EXPECTED.items():
        assert student in text
    assert "packed_sequences.py" in text and "notes.txt" in text
    assert "test_run_packed_hidden_lstm" in text  # pass rates per test cell
    assert "__MACOSX" not in text and ".hidden" not in text


def test_regrading_one_student_replaces_only_their_rows(graded, tmp_path):
    subs, out = graded
    subs2, out2 = tmp_path / "subs", tmp_path / "out"
    shutil.copytree(subs, subs2)
    shutil.copytree(out, out2)
    write_submission(subs2, "good", NB, answers.submission(NB, {"run_packed": answers.catalogue(NB)[0].source}))
    before = read_grades_csv(out2)
    autograde(subs2, out2, workers=1, timeout=15, student=["good"])
    after = read_grades_csv(out2)
    assert after[("good", NB.key)].score < 16
    assert {k: v for k, v in after.items() if k[0] != "good"} == {k: v for k, v in before.items() if k[0] != "good"}


def test_running_again_replaces_previous_results(graded, tmp_path):
    subs, out = graded
    subs2, out2 = tmp_path / "subs", tmp_path / "out"
    shutil.copytree(out, out2)
    for student in ("nothing", "misnamed"):
        shutil.copytree(subs / student, subs2 / student)
    autograde(subs2, out2, workers=1, timeout=15)
    assert sorted({s for s, _ in read_grades_csv(out2)}) == ["misnamed", "nothing"]
    assert sorted(p.name for p in (out2 / "feedback").iterdir()) == ["misnamed", "nothing"]
    assert "good" not in html_text((out2 / "report.html").read_text())


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=layout.course().root)


@pytest.mark.parametrize("args,message", [
    (["autograde", "/no/such/folder", "--out", "{tmp}/out"], "no such folder"),
    (["autograde", "{tmp}/subs", "--out", "{tmp}/out", "--assignment", "99_nope"], "unknown assignment"),
    (["autograde", "{tmp}/subs", "--out", "{tmp}/out", "--student", "zed"], "no student folder zed"),
    (["autograde", "{tmp}/subs", "--out", "{tmp}/subs/out"], "inside"),
])
def test_grading_that_cannot_proceed_exits_non_zero_with_one_clear_line(tmp_path, args, message):
    (tmp_path / "subs" / "x").mkdir(parents=True)
    done = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_stale_release_stops_grading(tmp_path):
    """A course folder whose notebooks/ no longer matches its solutions/ (sources and cache are this repository's)."""
    repo, course = layout.course().root, tmp_path / "course"
    course.mkdir()
    for name in ("solutions", ".cache"):
        (course / name).symlink_to(repo / name)
    stale = course / "notebooks"
    shutil.copytree(repo / "notebooks", stale)
    path = stale / NB.assignment / NB.filename
    path.write_text(path.read_text().replace("Assignment 1", "Assignment One"))
    (tmp_path / "subs" / "someone" / NB.assignment).mkdir(parents=True)
    with layout.using_course(course), pytest.raises(GraderError, match="out of date"):
        autograde(tmp_path / "subs", tmp_path / "out", workers=1)


def test_same_submission_graded_twice_gets_the_same_cells(graded, tmp_path):
    subs, _ = graded
    one = tmp_path / "one"
    shutil.copytree(subs / "crash_mid_tests", one / "crash_mid_tests")
    first = autograde(one, tmp_path / "a", workers=1, timeout=15)
    second = autograde(one, tmp_path / "b", workers=1, timeout=15)
    assert [(c.grade_id, c.score) for c in first[0].cells] == [(c.grade_id, c.score) for c in second[0].cells]
