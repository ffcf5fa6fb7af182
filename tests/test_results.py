"""Rows on disk: saved whole, read back, cleared only in a regrade's scope, written as grades.csv."""

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


def test_clearing_a_regrade_keeps_everyone_else(tmp_path):
    for student in ("ann", "bob"):
        for assignment in ("01_a", "02_b"):
            results.save(tmp_path, row(student, assignment), "page")
    results.clear(tmp_path, ["ann"], ["01_a"])
    left = {(r.student_id, r.assignment) for r in results.load_all(tmp_path)}
    assert left == {("ann", "02_b"), ("bob", "01_a"), ("bob", "02_b")}
    assert not results.feedback_path(tmp_path, "ann", "01_a", "nb").exists()
    results.clear(tmp_path, None, None)
    assert results.load_all(tmp_path) == []


def test_grades_csv_has_the_spec_columns_in_order(tmp_path):
    results.write_csv(tmp_path, [row("ann"), row("bob", score=0.5)])
    with (tmp_path / "grades.csv").open() as f:
        reader = csv.DictReader(f)
        lines = list(reader)
    assert reader.fieldnames[:8] == ["student_id", "assignment", "notebook", "score", "max_score", "status",
                                     "manual_score", "to_grade"]
    assert [(r["student_id"], r["score"], r["max_score"]) for r in lines] == [("ann", "1", "2"), ("bob", "0.5", "2")]


def test_unplaced_files_are_kept_per_student_and_cleared_when_gone(tmp_path):
    results.save_unplaced(tmp_path, {"ann": ["x.py"]}, ["ann", "bob"])
    assert results.load_unplaced(tmp_path) == {"ann": ["x.py"]}
    results.save_unplaced(tmp_path, {}, ["ann"])
    assert results.load_unplaced(tmp_path) == {}


def test_grades_csv_reads_back_as_the_rows_it_was_written_from(tmp_path):
    written = [Row("ann", "01_a", "nb", 1.5, 2.0, "graded", 'taken as "nb", with a comma', late="true",
                   submitted_at="2025-03-07T10:00:00+00:00"), Row("bob", "01_a", "nb", 0.0, 2.0, "not_submitted")]
    results.write_csv(tmp_path, written)
    assert results.read_csv(tmp_path) == written, "what grades.csv holds (cells and timings live in the JSON)"
