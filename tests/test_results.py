"""Rows on disk: saved whole, read back, removed only in a run's scope and only after it, written as grades.csv."""

from __future__ import annotations

import csv

from grader import results
from grader.results import CellResult, Row


def row(student: str, assignment: str = "01_a", status: str = "graded", score: float = 1.0) -> Row:
    return Row(student, assignment, "nb", score, 2.0, status, "", [CellResult("test_x", "x", score, 2.0, True)])


def test_rows_round_trip_with_their_cells_and_feedback(tmp_path):
    results.save(tmp_path, row("ann"), "<html>page</html>")
    results.save(tmp_path, row("bob", status="error", score=0.0))
    loaded = results.load_all(tmp_path)
    assert [r.student_id for r in loaded] == ["ann", "bob"]
    assert loaded[0].cells == [CellResult("test_x", "x", 1.0, 2.0, True)]
    assert results.feedback_path(tmp_path, "ann", "01_a", "nb").read_text() == "<html>page</html>"
    assert not list(tmp_path.rglob("*.partial")), "no half-written files left behind"


def test_after_a_run_only_its_scope_loses_rows_it_did_not_write(tmp_path):
    for student in ("ann", "bob"):
        for assignment in ("01_a", "02_b"):
            results.save(tmp_path, row(student, assignment), "page")
    removed = results.remove_stale(tmp_path, {("bob", "01_a", "nb")}, ["01_a"], None)
    assert removed == [("ann", "01_a", "nb")]
    left = {(r.student_id, r.assignment) for r in results.load_all(tmp_path)}
    assert left == {("ann", "02_b"), ("bob", "01_a"), ("bob", "02_b")}, "another assignment's rows are kept"
    assert not results.feedback_path(tmp_path, "ann", "01_a", "nb").exists()
    assert not (tmp_path / "results" / "ann" / "01_a").exists(), "no empty folder left"
    assert results.remove_stale(tmp_path, set(), ["02_b"], ["ann"]) == [("ann", "02_b", "nb")], "--student: theirs only"
    assert {(r.student_id, r.assignment) for r in results.load_all(tmp_path)} == {("bob", "01_a"), ("bob", "02_b")}


def test_a_row_is_saved_as_graded_without_what_the_class_grades_add(tmp_path):
    graded = row("ann")
    results.save(tmp_path, Row(**{**graded.__dict__, "raw_score": 0.5, "override": "set", "late_penalty": 0.2}))
    assert results.load_all(tmp_path) == [graded]


def test_grades_csv_has_the_spec_columns_in_order(tmp_path):
    results.write_csv(tmp_path, [row("ann"), row("bob", score=0.5)])
    with (tmp_path / "grades.csv").open() as f:
        reader = csv.DictReader(f)
        lines = list(reader)
    assert reader.fieldnames[:8] == ["student_id", "assignment", "notebook", "score", "max_score", "status",
                                     "manual_score", "to_grade"]
    assert [(r["student_id"], r["score"], r["max_score"]) for r in lines] == [("ann", "1", "2"), ("bob", "0.5", "2")]


def test_unplaced_files_are_kept_per_assignment_and_cleared_when_gone(tmp_path):
    results.save_unplaced(tmp_path, {"ann": ["01_a/x.py", "notes.txt"]}, ["01_a"])
    assert results.load_unplaced(tmp_path) == {"ann": ["01_a/x.py", "notes.txt"]}
    results.save_unplaced(tmp_path, {"ann": ["02_b/y.py"], "bob": ["02_b/z.py"]}, ["02_b"])
    assert results.load_unplaced(tmp_path) == {"ann": ["01_a/x.py", "02_b/y.py", "notes.txt"], "bob": ["02_b/z.py"]}
    results.save_unplaced(tmp_path, {}, ["02_b"], ["bob"])
    assert results.load_unplaced(tmp_path) == {"ann": ["01_a/x.py", "02_b/y.py", "notes.txt"]}, "--student: theirs"
    results.save_unplaced(tmp_path, {}, ["01_a"])
    assert results.load_unplaced(tmp_path) == {"ann": ["02_b/y.py"]}, "a student gone from the folder: gone"


def test_grades_csv_reads_back_as_the_rows_it_was_written_from(tmp_path):
    written = [Row("ann", "01_a", "nb", 1.5, 2.0, "graded", 'taken as "nb", with a comma', late="true",
                   submitted_at="2025-03-07T10:00:00+00:00"), Row("bob", "01_a", "nb", 0.0, 2.0, "not_submitted")]
    results.write_csv(tmp_path, written)
    assert results.read_csv(tmp_path) == written, "what grades.csv holds (cells and timings live in the JSON)"
