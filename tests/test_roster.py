"""Rosters as LMSs write them: Canvas's gradebook export, Moodle's worksheet, a plain CSV."""

from __future__ import annotations

import pytest
from lms_exports import canvas_gradebook, moodle_worksheet

from grader.errors import LmsError
from grader.lms.roster import parse_roster, read_extensions

STUDENTS = [("Lovelace, Ada", 101, "s001", "ada"), ("Babbage, Ben", 102, "", "ben"), ("Ñúñez, Iñés", 103, "s003", "ines")]


def test_canvas_gradebook_export():
    roster = parse_roster("\ufeff" + canvas_gradebook(STUDENTS))
    assert roster.format == "canvas" and roster.id_column == "SIS User ID"
    assert [(s.student_id, s.lms_id, s.name) for s in roster.students] == [
        ("s001", "101", "Lovelace, Ada"), ("102", "102", "Babbage, Ben"), ("s003", "103", "Ñúñez, Iñés")]
    assert roster.notes == ("Babbage, Ben: no SIS User ID; the LMS id 102 is their student id",)
    assert roster.assignment_columns() == ["Packed sequences (4242)", "Seq2seq (4243)", "BiLSTM tagger (4244)"]
    assert roster.points_possible["Seq2seq (4243)"] == "20.00"
    assert roster.students[2].first_last == ("Iñés", "Ñúñez")


def test_canvas_id_column_can_be_chosen():
    roster = parse_roster(canvas_gradebook(STUDENTS), id_column="SIS Login ID")
    assert [s.student_id for s in roster.students] == ["ada", "ben", "ines"]
    with pytest.raises(LmsError, match="no column 'Email' for --id-column"):
        parse_roster(canvas_gradebook(STUDENTS), id_column="Email")


def test_canvas_without_sis_ids_falls_back_to_login_then_user_id():
    roster = parse_roster(canvas_gradebook([("A, B", 1, "", "ab"), ("C, D", 2, "", "cd")]))
    assert roster.id_column == "SIS Login ID" and [s.student_id for s in roster.students] == ["ab", "cd"]
    roster = parse_roster(canvas_gradebook([("A, B", 1, "", ""), ("C, D", 2, "", "")]))
    assert roster.id_column == "ID" and [s.student_id for s in roster.students] == ["1", "2"]


def test_moodle_worksheet():
    text = moodle_worksheet([(201, "Ada Lovelace", "s001", "ada@example.org", "Submitted for grading", "-"),
                             (202, "Ben Babbage", "", "ben@example.org", "No submission", "-")])
    roster = parse_roster(text)
    assert roster.format == "moodle" and roster.id_column == "ID number"
    assert [(s.student_id, s.lms_id, s.email) for s in roster.students] == [
        ("s001", "201", "ada@example.org"), ("202", "202", "ben@example.org")]
    assert roster.students[0].first_last == ("Ada", "Lovelace")
    by_email = parse_roster(text, id_column="Email address")
    assert [s.student_id for s in by_email.students] == ["ada@example.org", "ben@example.org"]
    by_participant = parse_roster(text, id_column="Identifier")
    assert [s.student_id for s in by_participant.students] == ["201", "202"]


def test_plain_roster_with_names_and_due_dates():
    roster = parse_roster("student_id,lms_id,name,due\nS-1,ada,Ada Lovelace,\nS-2,ben,\"Babbage, Ben\",2025-03-10 12:00+01:00\n")
    assert roster.format == "plain" and roster.id_column == "student_id"
    assert [(s.student_id, s.lms_id, s.due) for s in roster.students] == [
        ("S-1", "ada", ""), ("S-2", "ben", "2025-03-10T12:00:00+01:00")]
    assert roster.students[1].first_last == ("Ben", "Babbage")


def test_unknown_roster_says_what_it_expected():
    with pytest.raises(LmsError, match=r"student_id,lms_id\[,name\] \(found: name, email\)"):
        parse_roster("name,email\nAda,ada@example.org\n", source="class.csv")


def test_duplicate_ids_are_an_error():
    with pytest.raises(LmsError, match="student_id S-1 appears more than once"):
        parse_roster("student_id,lms_id\nS-1,1\nS-1,2\n")


def test_extensions_file(tmp_path):
    path = tmp_path / "extensions.csv"
    path.write_text("student_id,due\ns002,2025-03-12T23:59:00+00:00\n")
    assert {k: v.isoformat() for k, v in read_extensions(path).items()} == {"s002": "2025-03-12T23:59:00+00:00"}
    path.write_text("who,when\n")
    with pytest.raises(LmsError, match="expected the columns student_id,due"):
        read_extensions(path)
