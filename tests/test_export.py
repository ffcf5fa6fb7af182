"""`export`: grades in Canvas's, Moodle's and nbgrader's import formats, read back as each LMS parses them."""

from __future__ import annotations

import csv
import re
import zipfile
from pathlib import Path

import pytest
from lms_exports import canvas, canvas_gradebook, moodle_worksheet, notebook_bytes, write_zip

from grader.cli import main
from grader.course import layout
from grader.errors import LmsError
from grader.grading import submissions
from grader.lms import manifest
from grader.lms.collect import collect
from grader.lms.export import export
from grader.lms.late import parse_policy
from grader.lms.roster import Roster, parse_roster
from grader.lms.times import parse_time
from grader import results
from grader.lms.grades import class_grades
from grader.results import Row

COLUMN = re.compile(r"^(.*)\s\((\d+)\)$")  # how Canvas recognises an assignment column
GRADEBOOK = [("Lovelace, Ada", 101, "s001", "ada"), ("Babbage, Ben", 102, "s002", "ben"),
             ("Hopper, Cat", 103, "s003", "cat"), ("Dijkstra, Dan", 105, "s005", "dan")]


def graded(out: Path, rows: list[list]) -> None:
    """Save rows in OUT as autograde does, each given as [student, assignment, notebook, score, max_score,
    status, detail, late, submitted_at] (the last three may be left off)."""
    for student, assignment, notebook, score, max_score, status, *rest in rows:
        detail, late, when = (list(rest) + ["", "", ""])[:3]
        results.save(out, Row(student, assignment, notebook, float(score), float(max_score), status, detail,
                              late=late, submitted_at=when))


def read_back(path: Path) -> list[list[str]]:
    """The file as an LMS parses it: UTF-8 CSV, nothing else assumed."""
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


@pytest.fixture
def out(tmp_path):
    out = tmp_path / "out"
    graded(out, [
        ["s001", "01_packed_sequences", "packed_sequences", 10, 10, "graded", "", "false", ""],
        ["s001", "02_seq2seq", "seq2seq", 17, 20, "graded", "", "false", "2025-03-07T10:00:00+00:00"],
        ["s001", "02_seq2seq", "seq2seq_extra", 3, 5, "graded", "", "false", "2025-03-07T10:00:00+00:00"],
        ["s002", "01_packed_sequences", "packed_sequences", 8, 10, "graded", "", "true", ""],
        ["s002", "02_seq2seq", "seq2seq", 0, 20, "timeout", "a cell ran past 60 s", "true", "2025-03-10T09:00:00+00:00"],
        ["s002", "02_seq2seq", "seq2seq_extra", 5, 5, "graded", "", "true", "2025-03-10T09:00:00+00:00"],
        ["s005", "01_packed_sequences", "packed_sequences", 0, 10, "not_submitted", "s005: no folder", "", ""],
        ["s005", "02_seq2seq", "seq2seq", 0, 20, "not_submitted", "", "", ""],
        ["s005", "02_seq2seq", "seq2seq_extra", 0, 5, "not_submitted", "", "", ""],
        ["104", "01_packed_sequences", "packed_sequences", 7, 10, "graded", "", "false", ""],
    ])
    for student, assignment, notebook in [("s001", "02_seq2seq", "seq2seq"), ("s001", "02_seq2seq", "seq2seq_extra"),
                                          ("s002", "02_seq2seq", "seq2seq")]:
        page = out / "feedback" / student / assignment / f"{notebook}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f"<html>{student} {notebook}</html>")
    return out


@pytest.fixture
def gradebook(tmp_path):
    path = tmp_path / "gradebook.csv"
    path.write_text(canvas_gradebook(GRADEBOOK, {"Packed sequences (4242)": "10.00", "Seq2seq (4243)": "20.00",
                                                 "Essay (4250)": "5.00"}), encoding="utf-8")
    return path


def test_canvas_gradebook_import(out, gradebook, tmp_path):
    target = tmp_path / "canvas.csv"
    result = export(out, "canvas", target, gradebook, mapping={"02_seq2seq": "4243"})
    table = read_back(target)
    header, points, *students = table
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                      "Packed sequences (4242)", "Seq2seq (4243)"]
    assert [COLUMN.match(c).groups() for c in header[5:]] == [("Packed sequences", "4242"), ("Seq2seq", "4243")]
    assert not any(COLUMN.match(c) for c in header[:5])
    assert points == ["    Points Possible", "", "", "", "", "10.00", "25.00"]
    by_id = {r[1]: r for r in students}
    assert set(by_id) == {"101", "102", "103", "105"}, "every gradebook student, and only them"
    assert by_id["101"][5:] == ["10.00", "20.00"], "an assignment's score is the sum over its notebooks"
    assert by_id["102"][5:] == ["8.00", "5.00"]
    assert by_id["103"][5:] == ["", ""], "no grade: left blank, Canvas keeps what it has"
    assert by_id["105"][5:] == ["0.00", "0.00"]
    assert by_id["101"][:5] == ["Lovelace, Ada", "101", "s001", "ada", "Sequence models 2025"]
    assert result.columns == {"01_packed_sequences": "Packed sequences (4242)", "02_seq2seq": "Seq2seq (4243)"}
    assert any("Seq2seq (4243): Canvas says 20.00 points possible, the grader's maximum is 25" in w for w in result.warnings)
    assert any("not in gradebook.csv, so not exported: 104" in w for w in result.warnings)
    details = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(result.details.open())}
    assert details[("s002", "02_seq2seq")]["notebooks"] == "seq2seq 0/20 timeout; seq2seq_extra 5/5 graded"
    assert details[("s002", "02_seq2seq")]["lms_id"] == "102" and details[("s002", "02_seq2seq")]["late"] == "true"


def test_canvas_map_errors_name_the_columns(out, tmp_path):
    gradebook = tmp_path / "renamed.csv"
    gradebook.write_text(canvas_gradebook(GRADEBOOK, {"Packed sequences (4242)": "10.00", "Encoder-decoder (4243)": "20.00",
                                                      "Essay (4250)": "5.00"}))
    with pytest.raises(LmsError, match=r"no single column for 02_seq2seq.*Essay \(4250\)") as caught:
        export(out, "canvas", tmp_path / "c.csv", gradebook, mapping={"01_packed_sequences": "Packed sequences"})
    assert '--map 02_seq2seq="<title> (<id>)"' in str(caught.value)
    with pytest.raises(LmsError, match=r"--map 02_seq2seq='Nope \(1\)': no such column"):
        export(out, "canvas", tmp_path / "c.csv", gradebook, mapping={"02_seq2seq": "Nope (1)"})
    with pytest.raises(LmsError, match="needs --roster"):
        export(out, "canvas", tmp_path / "c.csv")


def test_canvas_late_flag_only_with_a_per_day_rule(out, gradebook, tmp_path):
    target = tmp_path / "canvas.csv"
    result = export(out, "canvas", target, gradebook, mapping={"02_seq2seq": "Seq2seq (4243)"},
                    policy=parse_policy("10%/day,max=50%"), due=parse_time("2025-03-08T00:00:00+00:00"))
    by_id = {r[1]: r for r in read_back(target)[2:]}
    assert by_id["102"][5:] == ["7.20", "3.50"]
    details = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(result.details.open())}
    packed = details[("s002", "01_packed_sequences")]
    assert (packed["raw_score"], packed["late_penalty"], packed["score"]) == ("8", "0.8", "7.2")
    assert "charged as 1 day" in packed["note"], "Canvas's zip has only the LATE flag"
    seq = details[("s002", "02_seq2seq")]
    assert (seq["raw_score"], seq["late_penalty"], seq["score"]) == ("5", "1.5", "3.5")
    assert "3 day(s) after" in seq["note"], "with a submission time the days are counted"


def test_overrides_reach_every_export_and_survive(out, gradebook, tmp_path):
    (out / "overrides.csv").write_text("student,assignment,notebook,score,reason\n"
                                       "s002,02_seq2seq,seq2seq,15,ran out of time on the grader's slow machine\n"
                                       "s009,02_seq2seq,seq2seq,3,typo\n")
    target = tmp_path / "canvas.csv"
    result = export(out, "canvas", target, gradebook, mapping={"02_seq2seq": "4243"})
    by_id = {r[1]: r for r in read_back(target)[2:]}
    assert by_id["102"][6] == "20.00"
    assert "overrides.csv: s009/02_seq2seq/seq2seq matches no graded row" in result.warnings
    nb_target = tmp_path / "nbgrader.csv"
    export(out, "nbgrader", nb_target)
    rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(nb_target.open())}
    assert rows[("s002", "02_seq2seq")]["score"] == "20"


def test_moodle_worksheet_import_and_feedback_zip(out, tmp_path):
    worksheet = tmp_path / "worksheet.csv"
    worksheet.write_text(moodle_worksheet([
        (201, "Ada Lovelace", "s001", "ada@example.org", "Submitted for grading", "Friday, 7 March 2025, 10:00 AM"),
        (202, "Ben Babbage", "s002", "ben@example.org", "Submitted for grading - submitted 2 days late",
         "Monday, 10 March 2025, 9:00 AM"),
        (203, "Cat Hopper", "s003", "cat@example.org", "No submission", "-"),
    ], maximum="25.00"), encoding="utf-8")
    original = read_back(worksheet)
    target, feedback = tmp_path / "moodle.csv", tmp_path / "feedback.zip"
    result = export(out, "moodle", target, worksheet, assignments=["02_seq2seq"], policy=parse_policy("20%"),
                    due=parse_time("2025-03-08T00:00:00+00:00"), feedback=feedback)
    table = read_back(target)
    assert table[0] == original[0], "the worksheet's own columns, in its order"
    rows = {r["Identifier"]: r for r in csv.DictReader(target.open())}
    assert rows["Participant 201"]["Grade"] == "20.00" and rows["Participant 202"]["Grade"] == "4.00"
    assert rows["Participant 203"]["Grade"] == "", "not graded: left for Moodle"
    assert rows["Participant 202"]["Feedback comments"] == (
        "4.00/25: seq2seq 0/20 timeout, seq2seq_extra 5/5 graded; late (submitted 2025-03-10 09:00, 3 day(s) "
        "after the deadline 2025-03-08 00:00): 20% off, raw 5")
    assert "\n" not in rows["Participant 202"]["Feedback comments"]
    for kept in ("Full name", "Email address", "Status", "Maximum Grade", "Last modified (submission)", "Last modified (grade)"):
        assert [r[kept] for r in rows.values()] == [r[original[0].index(kept)] for r in original[1:]], kept
    assert result.columns == {"02_seq2seq": "Grade"}
    with zipfile.ZipFile(feedback) as z:
        assert sorted(z.namelist()) == [
            "Ada Lovelace_201_assignsubmission_file_/seq2seq.html",
            "Ada Lovelace_201_assignsubmission_file_/seq2seq_extra.html",
            "Ben Babbage_202_assignsubmission_file_/feedback.html"]
        assert z.read("Ben Babbage_202_assignsubmission_file_/feedback.html") == b"<html>s002 seq2seq</html>"


def test_moodle_needs_one_assignment(out, tmp_path):
    worksheet = tmp_path / "w.csv"
    worksheet.write_text(moodle_worksheet([(201, "Ada Lovelace", "s001", "a@x", "", "-")]))
    with pytest.raises(LmsError, match="choose it with --assignment"):
        export(out, "moodle", tmp_path / "m.csv", worksheet)
    with pytest.raises(LmsError, match="a moodle roster; --format canvas needs"):
        export(out, "canvas", tmp_path / "m.csv", worksheet)


def test_moodle_ids_that_match_nobody_are_an_error(out, tmp_path):
    worksheet = tmp_path / "w.csv"
    worksheet.write_text(moodle_worksheet([(201, "Ada Lovelace", "", "a@x", "", "-")]))
    with pytest.raises(LmsError, match="choose the column that holds their ids with --id-column"):
        export(out, "moodle", tmp_path / "m.csv", worksheet, assignments=["02_seq2seq"])


def test_nbgrader_csv(out, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,lms_id,name,email,due\ns001,ada,Ada Lovelace,ada@example.org,\n"
                      "s002,ben,\"Babbage, Ben\",ben@example.org,2025-03-11T00:00:00+00:00\n")
    extensions = {}
    target = tmp_path / "nbgrader.csv"
    export(out, "nbgrader", target, roster, policy=parse_policy("zero"), due=parse_time("2025-03-08T00:00:00+00:00"),
           extensions=extensions)
    table = read_back(target)
    assert table[0] == ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                        "raw_score", "late_submission_penalty", "score", "max_score"]
    rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(target.open())}
    ada = rows[("s001", "02_seq2seq")]
    assert (ada["last_name"], ada["first_name"], ada["email"]) == ("Lovelace", "Ada", "ada@example.org")
    assert (ada["raw_score"], ada["late_submission_penalty"], ada["score"], ada["max_score"]) == ("20", "0", "20", "25")
    assert (ada["timestamp"], ada["duedate"]) == ("2025-03-07T10:00:00+00:00", "2025-03-08T00:00:00+00:00")
    ben = rows[("s002", "02_seq2seq")]
    assert ben["duedate"] == "2025-03-11T00:00:00+00:00" and ben["score"] == "5", "his extension: not late"
    assert rows[("s002", "01_packed_sequences")]["score"] == "0", "late flag, zero rule"
    assert rows[("104", "01_packed_sequences")]["last_name"] == "", "not on the roster: blank names"


def test_per_day_rule_needs_a_deadline(out, tmp_path):
    with pytest.raises(LmsError, match="needs --due"):
        export(out, "nbgrader", tmp_path / "n.csv", policy=parse_policy("10%/day"))


def test_late_flags_and_times_come_from_out_s_copy_of_the_manifest(tmp_path, gradebook):
    """Rows are saved as graded; what collect knew (late, submitted at) comes from the manifest autograde kept."""
    out = tmp_path / "out"
    graded(out, [["s002", "01_packed_sequences", "packed_sequences", 10, 10, "graded"]])
    manifest.save(out, manifest.Manifest(Roster("gradebook.csv", "canvas", "SIS User ID", ()), {
        "01_packed_sequences": manifest.Section("canvas", submissions={"s002": manifest.Submitter("102", late=True)})}))
    result = export(out, "canvas", tmp_path / "c.csv", gradebook, policy=parse_policy("50%"))
    by_id = {r[1]: r for r in read_back(tmp_path / "c.csv")[2:]}
    assert by_id["102"][5] == "5.00"
    assert result.columns == {"01_packed_sequences": "Packed sequences (4242)"}


def test_cli_export(out, gradebook, tmp_path, capsys):
    target = tmp_path / "canvas.csv"
    assert main(["export", str(out), "--format", "canvas", "--roster", str(gradebook), "--to", str(target),
                 "--map", "02_seq2seq=Seq2seq (4243)", "--map", "01_packed_sequences=4242"]) == 0
    printed = capsys.readouterr().out
    assert "02_seq2seq -> Seq2seq (4243)" in printed and f"wrote {target} (6 grades)" in printed
    assert main(["export", str(out), "--format", "canvas", "--roster", str(gradebook), "--to", str(target),
                 "--map", "seq2seq"]) == 2
    assert "expected ASSIGNMENT=COLUMN" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nowhere"), "--format", "nbgrader", "--to", str(target)]) == 2
    assert "no graded rows; run `python -m grader autograde" in capsys.readouterr().err


# --- the round trip without a kernel ------------------------------------------------------------

def test_collect_then_grades_then_canvas(tmp_path, gradebook):
    """collect a Canvas zip, give each job a row as autograde would (annotated from the manifest), export."""
    export_zip = write_zip(tmp_path / "submissions.zip", {
        canvas("lovelaceada", 101, 1, "seq2seq.ipynb"): notebook_bytes("ada"),
        canvas("babbageben", 102, 2, "Seq2Seq (2).ipynb", late=True): notebook_bytes("ben"),
    })
    into, out = tmp_path / "submissions", tmp_path / "out"
    collect(export_zip, "02_seq2seq", into, parse_roster(gradebook.read_text()))
    collected = manifest.read(into, ["02_seq2seq"])
    students = manifest.students_to_grade(submissions.students_in(into), collected)
    assert students == ["s001", "s002", "s003", "s005"]
    nb = layout.SERIES[1]
    jobs, unplaced = submissions.locate(into, [nb], students)
    for j in jobs:
        results.save(out, Row(j.student, nb.assignment, nb.name, 20.0 if j.path else 0.0, 20.0,
                              "graded" if j.path else j.absent, j.detail))
    manifest.copy_into(out, collected)
    rows = class_grades(out, manifest.read(out)).rows
    assert [(r.student_id, r.status, r.late) for r in rows] == [
        ("s001", "graded", "false"), ("s002", "graded", "true"), ("s003", "not_submitted", ""),
        ("s005", "not_submitted", "")]
    assert "'Seq2Seq (2).ipynb' taken as seq2seq.ipynb" in rows[1].detail
    export(out, "canvas", tmp_path / "canvas.csv", gradebook, policy=parse_policy("zero"))
    by_id = {r[1]: r for r in read_back(tmp_path / "canvas.csv")[2:]}
    assert [by_id[i][5] for i in ("101", "102", "103", "105")] == ["20.00", "0.00", "0.00", "0.00"]
