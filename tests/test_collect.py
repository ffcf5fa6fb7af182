"""`collect`: Canvas, Moodle and nbgrader exports laid out for autograde, everything unplaced listed."""

from __future__ import annotations

import hashlib
import json

import pytest
from lms_exports import (
    canvas,
    canvas_anon,
    canvas_gradebook,
    moodle_folder,
    moodle_worksheet,
    notebook_bytes,
    tag_of,
    write_zip,
)

from grader.cli import main
from grader.lms import manifest
from grader.lms.collect import collect
from grader.lms.roster import parse_roster

SEQ = "02_seq2seq"
TAGGER = "03_bilstm_tagger"
PACKED = "01_packed_sequences"
GRADEBOOK = [("Lovelace, Ada", 101, "s001", "ada"), ("Babbage, Ben", 102, "s002", "ben"),
             ("Hopper, Cat", 103, "s003", "cat"), ("Dijkstra, Dan", 105, "s005", "dan")]


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(root) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
def canvas_zip(tmp_path):
    """A Canvas 'Download Submissions' zip for 02_seq2seq, with what real classes put in one."""
    return write_zip(tmp_path / "submissions.zip", {
        canvas("lovelaceada", 101, 5001, "seq2seq.ipynb"): notebook_bytes("ada"),
        canvas("babbageben", 102, 5002, "seq2seq.ipynb", late=True): notebook_bytes("ben first"),
        canvas("babbageben", 102, 5003, "seq2seq-1.ipynb", late=True): notebook_bytes("ben second"),
        canvas("hoppercat", 103, 5004, "Seq2Seq (1).ipynb"): notebook_bytes("cat"),
        canvas("hoppercat", 103, 5005, "helpers.py"): b"print('stray')\n",
        canvas("müllerzoë", 104, 5006, "seq2seq.ipynb"): notebook_bytes("zoë"),
        "__MACOSX/._" + canvas("lovelaceada", 101, 5001, "seq2seq.ipynb"): b"\x00\x05\x16\x07",
        ".DS_Store": b"\x00\x00\x00\x01Bud1",
        "notes from the TA.txt": b"remember to grade",
    })


@pytest.fixture
def gradebook(tmp_path):
    path = tmp_path / "gradebook.csv"
    path.write_text(canvas_gradebook(GRADEBOOK), encoding="utf-8")
    return path


def test_canvas_export_is_laid_out_with_roster_ids(tmp_path, canvas_zip, gradebook):
    into = tmp_path / "submissions"
    before = sha(canvas_zip)
    result = collect(canvas_zip, SEQ, into, parse_roster(gradebook.read_text(), source=str(gradebook)))
    assert sha(canvas_zip) == before, "the export must never be modified"
    assert files_under(into) == ["104/02_seq2seq/seq2seq.ipynb", "collect-manifest.json",
                                 "s001/02_seq2seq/seq2seq.ipynb", "s002/02_seq2seq/seq2seq.ipynb",
                                 "s003/02_seq2seq/seq2seq.ipynb"]
    assert tag_of(into / "s001/02_seq2seq/seq2seq.ipynb") == "ada"
    assert tag_of(into / "s002/02_seq2seq/seq2seq.ipynb") == "ben second", "the highest attachment id wins"
    assert tag_of(into / "s003/02_seq2seq/seq2seq.ipynb") == "cat"
    assert tag_of(into / "104/02_seq2seq/seq2seq.ipynb") == "zoë"
    reasons = {(u.student, u.entry): u.why for u in result.unplaced}
    assert "another file for seq2seq.ipynb" in reasons[("s002", canvas("babbageben", 102, 5002, "seq2seq.ipynb", True))]
    assert reasons[("s003", canvas("hoppercat", 103, 5005, "helpers.py"))] == "not a notebook (.ipynb)"
    assert "whose is it" in reasons[("", "notes from the TA.txt")]
    assert len(reasons) == 3, reasons
    assert result.not_on_roster == ["104"] and result.students["104"].name == "müllerzoë"
    assert result.not_submitted == ["s005"], "Canvas's Test Student is not a student"
    assert result.skipped == ["__MACOSX/._lovelaceada_101_5001_seq2seq.ipynb", ".DS_Store"]
    cat = next(p for p in result.placed if p.student == "s003")
    assert "Seq2Seq (1).ipynb" in cat.why and "copy mark" in cat.why


def test_canvas_manifest_holds_what_the_folder_cannot_say(tmp_path, canvas_zip, gradebook):
    into = tmp_path / "submissions"
    collect(canvas_zip, SEQ, into, parse_roster(gradebook.read_text(), source=str(gradebook)))
    data = json.loads((into / manifest.MANIFEST_NAME).read_text())
    assert data["version"] == 1
    assert data["roster"]["format"] == "canvas" and data["roster"]["id_column"] == "SIS User ID"
    assert {s["student_id"]: s["lms_id"] for s in data["roster"]["students"]} == \
        {"s001": "101", "s002": "102", "s003": "103", "s005": "105"}
    section = data["assignments"][SEQ]
    assert section["lms"] == "canvas"
    subs = section["submissions"]
    assert subs["s002"]["late"] is True and subs["s001"]["late"] is False
    assert subs["s002"]["submitted_at"] == "", "Canvas's zip carries no submission time"
    assert subs["s002"]["notebooks"]["seq2seq"]["file"] == "seq2seq-1.ipynb"
    assert subs["104"]["on_roster"] is False and subs["s001"]["on_roster"] is True
    assert section["not_submitted"] == ["s005"] and section["not_on_roster"] == ["104"]
    assert {u["entry"] for u in section["unplaced"]} == {
        canvas("babbageben", 102, 5002, "seq2seq.ipynb", True), canvas("hoppercat", 103, 5005, "helpers.py"),
        "notes from the TA.txt"}

    collected = manifest.read(into)
    assert set(collected.roster_students) == {"s001", "s002", "s003", "s005"}
    assert manifest.students_to_grade(["104", "s001", "s002", "s003"], collected) == ["104", "s001", "s002", "s003", "s005"]
    assert collected.late[("s002", SEQ)] is True
    assert "(no student)" in collected.unplaced and "s003" in collected.unplaced


def test_without_roster_the_lms_id_is_the_student(tmp_path, canvas_zip):
    into = tmp_path / "submissions"
    result = collect(canvas_zip, SEQ, into)
    assert sorted({p.student for p in result.placed}) == ["101", "102", "103", "104"]
    assert result.not_on_roster == [] and result.not_submitted == []


def test_anonymous_canvas(tmp_path, gradebook):
    export = write_zip(tmp_path / "anon.zip", {
        canvas_anon("Xy7Qz", 7001, "packed_sequences.ipynb"): notebook_bytes("first"),
        canvas_anon("Q2wEr", 7002, "packed_sequences-1.ipynb", late=True): notebook_bytes("second, renamed"),
        canvas_anon("Q2wEr", 7003, "packed_sequences-2.ipynb", late=True): notebook_bytes("second, newest"),
    })
    into = tmp_path / "submissions"
    result = collect(export, PACKED, into, parse_roster(gradebook.read_text()))
    assert tag_of(into / "anon_Xy7Qz/01_packed_sequences/packed_sequences.ipynb") == "first"
    assert tag_of(into / "anon_Q2wEr/01_packed_sequences/packed_sequences.ipynb") == "second, newest"
    assert result.students["anon_Q2wEr"].late is True and result.students["anon_Q2wEr"].name == ""
    assert result.not_on_roster == ["anon_Q2wEr", "anon_Xy7Qz"], "anonymous ids are never on a gradebook: listed"
    assert len(result.not_submitted) == 4


def moodle_class(new: bool) -> dict:
    return {
        f"{moodle_folder('Ada Lovelace', 201, new)}/bilstm_tagger.ipynb": notebook_bytes("ada"),
        f"{moodle_folder('Ben Babbage', 202, new)}/BiLSTM_Tagger.ipynb": notebook_bytes("ben"),
        f"{moodle_folder('Ben Babbage', 202, new)}/.ipynb_checkpoints/BiLSTM_Tagger-checkpoint.ipynb": notebook_bytes("old"),
        "Cat Hopper_203_assignsubmission_onlinetext_/onlinetext.html": b"<p>see attached</p>",
        f"{moodle_folder('Çağrı Öztürk', 206, new)}/my tagger.ipynb": notebook_bytes("çağrı"),
    }


@pytest.mark.parametrize("new", [False, True], ids=["moodle-3-folders", "moodle-4-folders"])
def test_moodle_folders_old_and_new(tmp_path, new):
    export = write_zip(tmp_path / "moodle.zip", moodle_class(new))
    worksheet = tmp_path / "worksheet.csv"
    worksheet.write_text(moodle_worksheet([
        (201, "Ada Lovelace", "s001", "ada@example.org", "Submitted for grading", "Friday, 7 March 2025, 9:00 AM"),
        (202, "Ben Babbage", "s002", "ben@example.org",
         "Submitted for grading - Assignment was submitted 1 day 2 hours late", "Saturday, 8 March 2025, 11:00 PM"),
        (203, "Cat Hopper", "s003", "cat@example.org", "Submitted for grading", "Friday, 7 March 2025, 8:00 AM"),
        (205, "Dan Dijkstra", "s005", "dan@example.org", "No submission", "-"),
        (206, "Çağrı Öztürk", "s006", "cagri@example.org", "Submitted for grading", "Friday, 7 March 2025, 10:00 AM"),
    ]), encoding="utf-8")
    into = tmp_path / "submissions"
    result = collect(export, TAGGER, into, parse_roster(worksheet.read_text()))
    assert files_under(into) == ["collect-manifest.json", "s001/03_bilstm_tagger/bilstm_tagger.ipynb",
                                 "s002/03_bilstm_tagger/bilstm_tagger.ipynb", "s006/03_bilstm_tagger/bilstm_tagger.ipynb"]
    assert (into / "s003" / TAGGER).is_dir(), "submitted something unusable: an empty folder, so `missing`, not `not_submitted`"
    assert tag_of(into / "s006/03_bilstm_tagger/bilstm_tagger.ipynb") == "çağrı"
    assert "the only notebook left" in next(p.why for p in result.placed if p.student == "s006")
    assert "another case" in next(p.why for p in result.placed if p.student == "s002")
    assert result.students["s002"].late is True and result.students["s001"].late is False
    assert result.students["s002"].submitted_at.startswith("2025-03-08T23:00:00")
    assert result.not_submitted == ["s005"]
    assert [(u.student, u.why) for u in result.unplaced] == [("s003", "a Moodle onlinetext submission, not a file")]
    assert result.skipped == [f"{moodle_folder('Ben Babbage', 202, new)}/.ipynb_checkpoints/BiLSTM_Tagger-checkpoint.ipynb"]


def test_moodle_flat_files_and_blind_marking(tmp_path):
    export = write_zip(tmp_path / "moodle.zip", {
        "Participant_301_assignsubmission_file_seq2seq.ipynb": notebook_bytes("first upload"),
        "Participant_301_assignsubmission_file_seq2seq (1).ipynb": notebook_bytes("second upload"),
        "Participant_302_assignsubmission_file_seq2seq.ipynb": notebook_bytes("other"),
    }, times={"Participant_301_assignsubmission_file_seq2seq (1).ipynb": (2025, 3, 7, 13, 0, 0)})
    into = tmp_path / "submissions"
    result = collect(export, SEQ, into)
    assert tag_of(into / "301/02_seq2seq/seq2seq.ipynb") == "second upload", "the newer file wins"
    assert result.students["301"].name == "" and result.students["301"].submitted_at.startswith("2025-03-07T13:00")
    assert [u.entry for u in result.unplaced] == ["Participant_301_assignsubmission_file_seq2seq.ipynb"]


def nbgrader_exchange(root):
    """A course folder after `nbgrader collect`: submitted/<student>/<assignment>/ with timestamp.txt."""
    def put(rel, data):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    put("submitted/ada/02_seq2seq/seq2seq.ipynb", notebook_bytes("ada"))
    put("submitted/ada/02_seq2seq/timestamp.txt", b"2025-03-07 10:15:00.123456 UTC")
    put("submitted/ada/02_seq2seq/submission_secret.txt", b"f00d" * 32)
    put("submitted/ben/02_seq2seq/seq2seq (1).ipynb", notebook_bytes("ben"))
    put("submitted/ben/02_seq2seq/.ipynb_checkpoints/seq2seq-checkpoint.ipynb", notebook_bytes("checkpoint"))
    put("submitted/ben/02_seq2seq/timestamp.txt", b"2025-03-09 08:00:00.000000 UTC")
    put("submitted/ben/01_packed_sequences/packed_sequences.ipynb", notebook_bytes("other assignment"))
    put("submitted/ben/01_packed_sequences/timestamp.txt", b"2025-02-01 08:00:00 UTC")
    put("gradebook.db", b"SQLite format 3\x00")
    return root


def test_nbgrader_exchange_folder_with_due(tmp_path):
    from grader.lms.times import parse_time

    course = nbgrader_exchange(tmp_path / "course")
    into = tmp_path / "submissions"
    result = collect(course, SEQ, into, due=parse_time("2025-03-08T23:59:00+00:00"))
    assert files_under(into) == ["ada/02_seq2seq/seq2seq.ipynb", "ben/02_seq2seq/seq2seq.ipynb", "collect-manifest.json"]
    assert result.students["ada"] == manifest.Submitter(
        "ada", "", None, False, "2025-03-07T10:15:00+00:00",
        beside_feedback={"timestamp.txt": "2025-03-07 10:15:00.123456 UTC", "submission_secret.txt": "f00d" * 32})
    assert result.students["ben"].late is True
    assert manifest.load(into).assignments[SEQ].submissions["ada"].beside_feedback == \
        result.students["ada"].beside_feedback, "kept for nbgrader release_feedback"
    assert result.other_assignments == 2
    assert [u.entry for u in result.unplaced] == ["gradebook.db"]


def test_nbgrader_with_plain_roster_and_extension(tmp_path):
    from grader.lms.times import parse_time

    course = nbgrader_exchange(tmp_path / "course")
    roster = parse_roster("student_id,lms_id,name,due\nS-1,ada,Ada Lovelace,\nS-2,ben,Ben Babbage,2025-03-10T00:00:00+00:00\n"
                          "S-3,cat,Cat Hopper,\n")
    into = tmp_path / "submissions"
    result = collect(course / "submitted", SEQ, into, roster, due=parse_time("2025-03-08T23:59:00+00:00"))
    assert sorted(result.students) == ["S-1", "S-2"]
    assert result.students["S-2"].late is False, "ben's extension moves his deadline"
    assert result.not_submitted == ["S-3"]


def test_second_collect_reuses_the_roster_and_replaces_its_own_folders(tmp_path, canvas_zip, gradebook):
    into = tmp_path / "submissions"
    collect(canvas_zip, SEQ, into, parse_roster(gradebook.read_text()))
    second = write_zip(tmp_path / "packed.zip", {canvas("lovelaceada", 101, 6001, "packed_sequences.ipynb"): notebook_bytes("p")})
    result = collect(second, PACKED, into)
    assert result.students["s001"].on_roster is True, "the roster recorded by the first collect is used"
    again = write_zip(tmp_path / "seq-again.zip", {canvas("lovelaceada", 101, 5009, "seq2seq.ipynb"): notebook_bytes("ada again")})
    collect(again, SEQ, into)
    assert tag_of(into / "s001/02_seq2seq/seq2seq.ipynb") == "ada again"
    assert not (into / "s002" / SEQ).exists(), "what an earlier collect of the assignment wrote is replaced"
    kept = manifest.load(into)
    assert set(kept.assignments) == {SEQ, PACKED}
    assert set(kept.assignments[SEQ].submissions) == {"s001"}


def test_hand_laid_folders_are_never_overwritten(tmp_path, canvas_zip):
    into = tmp_path / "submissions"
    (into / "101" / SEQ).mkdir(parents=True)
    (into / "101" / SEQ / "seq2seq.ipynb").write_text("mine")
    from grader.errors import LmsError

    with pytest.raises(LmsError, match="were not written by collect"):
        collect(canvas_zip, SEQ, into)
    assert (into / "101" / SEQ / "seq2seq.ipynb").read_text() == "mine"
    assert not (into / manifest.MANIFEST_NAME).exists()


def test_cli_lists_everything_unplaced_and_exits_0(tmp_path, canvas_zip, gradebook, capsys):
    into = tmp_path / "submissions"
    assert main(["collect", str(canvas_zip), "--assignment", SEQ, "--into", str(into), "--roster", str(gradebook)]) == 0
    out = capsys.readouterr().out
    assert "canvas export, 02_seq2seq: 4 notebooks from 4 students" in out
    assert "not on the roster (placed under their LMS id): 104 (müllerzoë)" in out
    assert "on the roster without a submission (autograde gives them not_submitted rows): s005" in out
    assert "not placed (3):" in out and "helpers.py: not a notebook" in out and "notes from the TA.txt" in out
    assert f"wrote {into / manifest.MANIFEST_NAME}" in out


def test_cli_nothing_collected_is_an_error(tmp_path, capsys):
    export = write_zip(tmp_path / "e.zip", {canvas("lovelaceada", 101, 1, "essay.docx"): b"PK"})
    into = tmp_path / "submissions"
    assert main(["collect", str(export), "--assignment", SEQ, "--into", str(into)]) == 1
    captured = capsys.readouterr()
    assert "essay.docx: not a notebook" in captured.out
    assert "error: nothing from" in captured.err and "nothing was written" in captured.err
    assert not into.exists()


def test_cli_unknown_layout_names_the_fix(tmp_path, capsys):
    export = write_zip(tmp_path / "e.zip", {"homework/seq2seq.ipynb": notebook_bytes("x")})
    assert main(["collect", str(export), "--assignment", SEQ, "--into", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--lms canvas|moodle|nbgrader" in err and len(err.strip().splitlines()) == 1


def test_cli_not_a_zip(tmp_path, capsys):
    bogus = tmp_path / "grades.pdf"
    bogus.write_bytes(b"%PDF-1.4")
    assert main(["collect", str(bogus), "--assignment", SEQ, "--into", str(tmp_path / "s")]) == 2
    assert "not a zip file" in capsys.readouterr().err


def test_an_export_inside_one_folder_is_found(tmp_path):
    """The instructor unzipped Canvas's zip into `submissions/` and zipped that folder again."""
    export = write_zip(tmp_path / "rezipped.zip", {
        "submissions/" + canvas("lovelaceada", 101, 5001, "seq2seq.ipynb"): notebook_bytes("ada"),
        "submissions/.DS_Store": b"x",
    })
    into = tmp_path / "into"
    result = collect(export, SEQ, into)
    assert result.lms == "canvas" and tag_of(into / "101/02_seq2seq/seq2seq.ipynb") == "ada"
    assert result.skipped == [".DS_Store"]
    unzipped = tmp_path / "downloads"
    (unzipped / "submissions").mkdir(parents=True)
    (unzipped / "submissions" / canvas("babbageben", 102, 5002, "seq2seq.ipynb")).write_bytes(notebook_bytes("ben"))
    result = collect(unzipped, SEQ, tmp_path / "into2")
    assert tag_of(tmp_path / "into2/102/02_seq2seq/seq2seq.ipynb") == "ben"


def test_a_roster_of_another_lms_is_an_error_naming_both(tmp_path, canvas_zip, capsys):
    worksheet = tmp_path / "worksheet.csv"
    worksheet.write_text(moodle_worksheet([(201, "Ada Lovelace", "s001", "ada@x", "Submitted for grading", "-")]))
    into = tmp_path / "submissions"
    assert main(["collect", str(canvas_zip), "--assignment", SEQ, "--into", str(into), "--roster", str(worksheet)]) == 2
    err = capsys.readouterr().err
    assert "a Moodle grading worksheet, but submissions.zip is a canvas export: give Canvas's gradebook export" in err
    assert not into.exists(), "nothing written"
