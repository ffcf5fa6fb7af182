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
from grader.course.layout import SERIES
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
    result = export(out, "canvas", target, gradebook, mapping={"02_seq2seq": "4243"}, points="as_graded")
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
    assert result.left_out == layout.assignments()[2:], "nothing graded: not in the file, and said"
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
    result = export(out, "canvas", target, gradebook, mapping={"02_seq2seq": "Seq2seq (4243)"}, points="as_graded",
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
    result = export(out, "canvas", target, gradebook, mapping={"02_seq2seq": "4243"}, points="as_graded")
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
    late = "submitted 2025-03-10 09:00, 3 day(s) after the deadline 2025-03-08 00:00; 20% off late work"
    assert rows["Participant 202"]["Feedback comments"] == (
        f"seq2seq: Score: 0 / 20 Autograded: 0 / 20. Late penalty: -0 ({late}). | "
        f"seq2seq_extra: Score: 4 / 5 Autograded: 5 / 5. Late penalty: -1 ({late}).")
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
    with pytest.raises(LmsError, match="a Moodle grading worksheet, but --format canvas needs the gradebook exported from Canvas"):
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
                 "--map", "02_seq2seq=Seq2seq (4243)", "--map", "01_packed_sequences=4242", "--points-as-graded"]) == 0
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
    manifest.keep_in(out, manifest.load(into), ["02_seq2seq"])
    rows = class_grades(out).rows
    assert [(r.student_id, r.status, r.late) for r in rows] == [
        ("s001", "graded", "false"), ("s002", "graded", "true"), ("s003", "not_submitted", ""),
        ("s005", "not_submitted", "")]
    assert "'Seq2Seq (2).ipynb' taken as seq2seq.ipynb" in rows[1].detail
    export(out, "canvas", tmp_path / "canvas.csv", gradebook, policy=parse_policy("zero"))
    by_id = {r[1]: r for r in read_back(tmp_path / "canvas.csv")[2:]}
    assert [by_id[i][5] for i in ("101", "102", "103", "105")] == ["20.00", "0.00", "0.00", "0.00"]


# --- feedback that reaches students, and the grade they read ------------------------------------------

def pages_with_grades(out: Path) -> None:
    """Give every row saved in `out` a page as grading writes one (its grade block, then the student's work)."""
    from grader.pages.feedback import notice_page

    for row in results.load_all(out):
        page = notice_page(f"{row.assignment}/{row.notebook}", row).replace("</body>", "<pre>their output</pre></body>")
        results.write_whole(results.feedback_path(out, row.student_id, row.assignment, row.notebook), page)


def test_moodle_s_comment_is_the_page_s_grade(out, tmp_path):
    from grader.pages.summary import grade_block_text

    pages_with_grades(out)
    worksheet = tmp_path / "worksheet.csv"
    worksheet.write_text(moodle_worksheet([(201, "Ada Lovelace", "s001", "a@x", "", "-"),
                                           (202, "Ben Babbage", "s002", "b@x", "", "-")], maximum="10.00"))
    (out / "overrides.csv").write_text("student,assignment,notebook,score,reason\n"
                                       "s001,01_packed_sequences,,9,the plot was right after all\n")
    export(out, "moodle", tmp_path / "m.csv", worksheet, assignments=["01_packed_sequences"], policy=parse_policy("25%"))
    rows = {r["Identifier"]: r for r in csv.DictReader((tmp_path / "m.csv").open())}
    for who, student in (("Participant 201", "s001"), ("Participant 202", "s002")):
        page = results.feedback_path(out, student, "01_packed_sequences", "packed_sequences").read_text()
        assert rows[who]["Feedback comments"] == " ".join(grade_block_text(page).splitlines())
    assert rows["Participant 201"]["Feedback comments"] == (
        "Score: 9 / 10 Autograded: 10 / 10. Score set to 9 by the instructor: the plot was right after all.")
    assert rows["Participant 202"]["Grade"] == "6.00", "8 late, 25% off"
    assert "Late penalty: -2 (marked late by the LMS, no submission time; 25% off late work)." in \
        rows["Participant 202"]["Feedback comments"]


def test_moodle_points_that_differ_need_a_choice(out, tmp_path):
    worksheet = tmp_path / "w.csv"
    worksheet.write_text(moodle_worksheet([(201, "Ada Lovelace", "s001", "a@x", "", "-")], maximum="100.00"))
    with pytest.raises(LmsError, match=r"Moodle says 100 points possible, the grader's maximum for 01_packed_sequences "
                                       r"is 10; choose --scale-to-lms .* or --points-as-graded"):
        export(out, "moodle", tmp_path / "m.csv", worksheet, assignments=["01_packed_sequences"])
    export(out, "moodle", tmp_path / "m.csv", worksheet, assignments=["01_packed_sequences"], points="scale")
    assert next(csv.DictReader((tmp_path / "m.csv").open()))["Grade"] == "100.00"
    export(out, "moodle", tmp_path / "m.csv", worksheet, assignments=["01_packed_sequences"])
    assert next(csv.DictReader((tmp_path / "m.csv").open()))["Grade"] == "100.00", "the choice is kept in OUT"
    export(out, "moodle", tmp_path / "m.csv", worksheet, assignments=["01_packed_sequences"], points="as_graded")
    assert next(csv.DictReader((tmp_path / "m.csv").open()))["Grade"] == "10.00"


def test_the_late_policy_is_kept_until_changed_or_removed(out, tmp_path):
    target = tmp_path / "n.csv"
    export(out, "nbgrader", target, policy=parse_policy("zero"))
    scores = lambda: {(r["student_id"], r["assignment"]): r["score"] for r in csv.DictReader(target.open())}  # noqa: E731
    assert scores()[("s002", "01_packed_sequences")] == "0"
    export(out, "nbgrader", target)
    assert scores()[("s002", "01_packed_sequences")] == "0", "kept in OUT/policy.json"
    assert {(r.student_id, r.assignment): r for r in results.read_csv(out)}[("s002", "01_packed_sequences")] \
        .late_penalty == 8.0, "and in grades.csv"
    export(out, "nbgrader", target, policy=parse_policy("none"))
    assert scores()[("s002", "01_packed_sequences")] == "8"
    assert not (out / "policy.json").read_text().strip("{}\n"), "nothing left to keep"


def test_canvas_feedback_zip_follows_canvas_s_naming_rule(tmp_path):
    """Each page is named `<lastfirst>_<user id>_<attachment id>_...` after a file the student submitted (a
    stray file will do when no notebook was placed); a student with no file, or an anonymous one, gets none."""
    from test_term import canvas_reads

    export_zip = write_zip(tmp_path / "seq.zip", {
        canvas("lovelaceada", 101, 7001, "seq2seq.ipynb"): notebook_bytes("ada"),
        canvas("babbageben", 102, 7002, "seq2seq.py"): b"print('not a notebook')\n",
        canvas("babbageben", 102, 7003, "notes.txt"): b"notes",
    })
    gradebook = tmp_path / "gradebook.csv"
    gradebook.write_text(canvas_gradebook(GRADEBOOK, {"Seq2seq (4243)": "18.00"}))
    into, out = tmp_path / "submissions", tmp_path / "out"
    collect(export_zip, "02_seq2seq", into, parse_roster(gradebook.read_text()))
    for student, status in (("s001", "graded"), ("s002", "missing"), ("s003", "not_submitted")):
        results.save(out, Row(student, "02_seq2seq", "seq2seq", 5.0, 18.0, status))
    manifest.keep_in(out, manifest.load(into), ["02_seq2seq"])
    pages_with_grades(out)
    result = export(out, "canvas", tmp_path / "c.csv", gradebook, feedback=tmp_path / "fb.zip")
    with zipfile.ZipFile(tmp_path / "fb.zip") as z:
        names = sorted(z.namelist())
    assert names == ["babbageben_102_7002_feedback_seq2seq.html", "lovelaceada_101_7001_feedback_seq2seq.html"]
    assert [canvas_reads(n) for n in names] == [("102", "7002"), ("101", "7001")]
    assert any("fb.zip: 1 student(s) without feedback in it: s003" in w for w in result.warnings)


def test_every_page_of_the_course_gets_a_name_canvas_reads_as_its_student_s_file():
    """For every notebook of the course, and Canvas names that would mislead its reading (all digits, a leading
    dot, a resubmission, a late file), the page's name gives the user id and an attachment of that student's
    own submission, the notebook's file first, and is not taken for a submitted URL's page."""
    from test_term import canvas_reads
    from grader.course.matching import Filed
    from grader.lms.export import canvas_feedback_name

    for nb in SERIES:
        for who, late in (("lovelaceada", False), ("12345", False), (".", True), ("o", True)):
            submitted = {nb.name: Filed(nb.filename, nb.name, entry=canvas(who, 101, 7002, nb.filename, late=late))}
            stray = [Filed("notes.txt", student="s001", entry=canvas(who, 101, 7001, "notes.txt"))]
            section = manifest.Section("canvas", submissions={"s001": manifest.Submitter("101", notebooks=submitted)},
                                       unplaced=stray)
            name = canvas_feedback_name(section.submissions["s001"], section, "s001", f"{nb.name}.html")
            assert canvas_reads(name) == ("101", "7002"), (nb.key, who, name)
            assert name.endswith(f"{nb.name}.html") and "/" not in name
            alone = manifest.Section("canvas", submissions={"s001": manifest.Submitter("101")}, unplaced=stray)
            assert canvas_reads(canvas_feedback_name(alone.submissions["s001"], alone, "s001", f"{nb.name}.html")) \
                == ("101", "7001"), "a stray file of theirs will do"
    section = manifest.Section("canvas", submissions={"s001": manifest.Submitter("101", notebooks={
        "bi_linkage": Filed("bi_linkage.ipynb", "bi_linkage", entry=canvas("ada", 101, 7002, "bi_linkage.ipynb"))})})
    assert canvas_reads(canvas_feedback_name(section.submissions["s001"], section, "s001", "bi_linkage.html")) \
        == ("101", "7002"), "a page whose last part starts with `link` is renamed, or Canvas skips it"
    assert canvas_reads("ada_101_7002_feedback_bi_linkage.html") is None, "the control: Canvas skips that name"
    assert canvas_reads("12345_101_7002_feedback_x.html") == ("12345", "101"), "the control: digits read as the id"
    assert canvas_reads("._101_7002_feedback_x.html") is None, "the control: Canvas skips a name starting `._`"
    anonymous = manifest.Section("canvas", submissions={"anon_x": manifest.Submitter("anon_x", notebooks={
        "seq2seq": Filed("seq2seq.ipynb", "seq2seq", entry="anon_x_7002_seq2seq.ipynb")})})
    assert canvas_feedback_name(anonymous.submissions["anon_x"], anonymous, "anon_x", "seq2seq.html") is None


def test_nbgrader_feedback_zip_is_what_release_feedback_hands_back(tmp_path):
    """Unzipped into nbgrader's course folder, the pages reach each student through nbgrader's own
    `release_feedback` and `fetch_feedback` (the page is found by the submission's secret)."""
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import ExchangeFetchFeedback, ExchangeReleaseFeedback
    from test_collect import nbgrader_exchange

    course = nbgrader_exchange(tmp_path / "course")
    into, out = tmp_path / "submissions", tmp_path / "out"
    collect(course, "02_seq2seq", into)
    results.save(out, Row("ada", "02_seq2seq", "seq2seq", 7.0, 18.0, "graded"))
    results.save(out, Row("ben", "02_seq2seq", "seq2seq", 3.0, 18.0, "graded"))
    manifest.keep_in(out, manifest.load(into), ["02_seq2seq"])
    pages_with_grades(out)
    result = export(out, "nbgrader", tmp_path / "n.csv", feedback=tmp_path / "fb.zip")
    with zipfile.ZipFile(tmp_path / "fb.zip") as z:
        z.extractall(course)
    assert any("ben (pages written, but no timestamp.txt and submission_secret.txt" in w for w in result.warnings)
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    released = CourseDirectory(root=str(course), course_id="seq", assignment_id="02_seq2seq", student_id="ada")
    ExchangeReleaseFeedback(coursedir=released, root=str(exchange)).start()
    # the student's side: what `nbgrader submit` left in their cache, then `nbgrader fetch_feedback`
    cache = tmp_path / "cache" / "seq" / "ada+02_seq2seq+2025-03-07 10:15:00.123456 UTC"
    cache.mkdir(parents=True)
    (cache / "seq2seq.ipynb").write_bytes(notebook_bytes("ada"))
    (cache / "submission_secret.txt").write_text("f00d" * 32)
    home = tmp_path / "ada"
    fetching = CourseDirectory(root=str(home), course_id="seq", assignment_id="02_seq2seq", student_id="ada")
    ExchangeFetchFeedback(coursedir=fetching, root=str(exchange), cache=str(tmp_path / "cache"),
                          assignment_dir=str(home)).start()
    fetched = list(home.rglob("seq2seq.html"))
    assert len(fetched) == 1 and "Score: 7 / 18" in fetched[0].read_text()
