"""The grading task's pure parts: statuses from what was found, rows for what cannot run, error results."""

from __future__ import annotations

import pytest

from grader.course import layout
from grader.grading.integrity import Scan
from grader.grading.submissions import Repaired
from grader.grading.settings import Settings
from grader.grading.task import Result, Submission, cell_results, classify, error_result, grade, written_answers

NB = layout.SERIES[0]


def event(kind: str, detail: str) -> dict:
    return {"kind": kind, "cell": 3, "detail": detail}


@pytest.mark.parametrize("record,tampering,scan,expected", [
    ({}, [], Scan(), ("graded", "", False)),
    ({"events": [event("timeout", "cell 3 exceeded 5 s")]}, [], Scan(), ("timeout", "cell 3 exceeded 5 s", False)),
    ({"events": [event("output_limit", "flood"), event("kernel_died", "died in cell 4")]}, [], Scan(),
     ("kernel_died", "died in cell 4", False)),
    ({}, ["cell 'x' was deleted"], Scan(), ("tampered", "cell 'x' was deleted", False)),
    ({}, [], Scan(cheats=["imports inspect"]), ("tampered", "cheating detected: imports inspect", True)),
    ({"split": True}, [], Scan(cheats=["imports inspect"]),
     ("tampered", "cheat attempt seen (it cannot reach the tests): imports inspect", False)),
    ({"events": [event("trusted_failed", "the kernel running the tests died during cell 5")]}, [], Scan(),
     ("error", "the kernel running the tests died during cell 5", False)),
    ({"tampering": [{"detail": "torch.equal was replaced", "grade_id": "test_a", "cell": 5}]}, [], Scan(),
     ("tampered", "cheating detected: torch.equal was replaced (after cell test_a)", True)),
    ({}, [], Scan(notes=["calls os._exit"]), ("graded", "the code calls os._exit", False)),
    ({"events": [event("noted", "test_x failed: the kernel running the tests ran out of memory")]}, [], Scan(),
     ("graded", "test_x failed: the kernel running the tests ran out of memory", False)),
], ids=["graded", "timeout", "died_beats_flood", "tampered", "cheat", "cheat_split", "trusted_failed", "audit", "note",
        "student_data"])
def test_classify(record, tampering, scan, expected):
    assert classify(record, Repaired(None, tampering), scan) == expected


def test_cell_results_follow_the_source_and_score_missing_cells_zero(prepared_course):
    facts = prepared_course.facts(NB)
    first = facts.tests[0].grade_id
    got = cell_results(facts, {first: facts.tests[0].points})
    assert [c.grade_id for c in got] == [t.grade_id for t in facts.tests]
    assert got[0].score == facts.tests[0].points and all(c.score == 0 for c in got[1:])
    assert all(c.exercise == "run_packed" for c in got if c.grade_id.startswith("test_run_packed"))


def test_written_answers_are_kept_by_their_text_and_left_to_a_person(prepared_course):
    from grader.course import answers, cells
    from grader.course.written import answer_hash

    facts = prepared_course.facts(NB)
    first, second = (q.grade_id for q in facts.written)
    nb = answers.submission(NB, {first: "My answer.\r\n"})
    nb.cells = [c for c in nb.cells if cells.grade_id(c) != second]  # the student deleted the other answer cell
    got = written_answers(facts, nb, {first: None})
    assert [(w.grade_id, w.score, w.note) for w in got] == [(first, None, ""), (second, 0.0, "the answer cell was deleted")]
    assert got[0].answer_sha256 == answer_hash("My answer.") and got[0].points == facts.written[0].points
    unanswered = written_answers(facts, answers.submission(NB), {first: 0.0, second: None})
    assert (unanswered[0].score, unanswered[0].note) == (0.0, "not answered"), "nbgrader found it as released"


@pytest.mark.parametrize("absent", ["missing", "not_submitted", "invalid_notebook"])
def test_a_row_without_a_notebook_needs_no_kernel(prepared_course, absent):
    result = grade(Submission("ann", NB, None, absent, "what was found"), prepared_course, Settings(timeout=5), None)
    assert (result.row.status, result.row.score, result.row.detail) == (absent, 0.0, "what was found")
    assert (result.row.written, result.row.to_grade, result.graded) == ([], 0.0, ""), "nothing for a person to grade"
    assert result.row.max_score == prepared_course.facts(NB).max_score
    assert "Score: 0 /" in result.feedback


@pytest.mark.parametrize("content,words", [(b"{not json", "not JSON"), (b'{"cells": 3}', "not a valid notebook")])
def test_unreadable_bytes_are_an_invalid_notebook(prepared_course, content, words, tmp_path):
    from grader.grading.worker import Worker

    with Worker(tmp_path) as worker:
        result = grade(Submission("ann", NB, content), prepared_course, Settings(timeout=5), worker)
    assert result.row.status == "invalid_notebook" and words in result.row.detail
    assert not list(tmp_path.glob("*/*")), "the job's folder is removed"


def test_an_error_result_keeps_its_traceback_and_shows_the_student_no_internals(prepared_course):
    result = error_result(Submission("ann", NB, b""), prepared_course, "KeyError: 'x'", "Traceback (most recent ...")
    assert isinstance(result, Result) and result.row.status == "error"
    assert result.traceback and result.row.traceback == result.traceback
    assert "KeyError" not in result.feedback


def test_a_failed_cell_keeps_its_whole_message_and_a_passed_one_none(prepared_course):
    facts = prepared_course.facts(NB)
    first, second = facts.tests[0], facts.tests[1]
    got = cell_results(facts, {first.grade_id: first.points}, {first.grade_id: "x", second.grade_id: "AssertionError: " + "y" * 3000})
    assert got[0].message == "" and got[1].message == "AssertionError: " + "y" * 3000
