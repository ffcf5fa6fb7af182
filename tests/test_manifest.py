"""The collect manifest: its typed entries written and read back, the file's format held to the documented
one, a broken file refused with what to do, and what autograde and export take from it."""

from __future__ import annotations

import json

import pytest

from grader.course.matching import Filed
from grader.errors import LmsError
from grader.lms import manifest
from grader.lms.manifest import Manifest, Section, Submitter
from grader.lms.roster import Roster, Student
from grader.results import Row

SEQ, PACKED = "02_seq2seq", "01_packed_sequences"
ROSTER = Roster("gradebook.csv", "canvas", "SIS User ID", (Student("s001", "101", "Lovelace, Ada", "ada@x", ""),
                                                           Student("s002", "102", "Babbage, Ben", "", "2025-03-11")))
RENAMED = Filed("Seq2Seq (1).ipynb", "seq2seq", "'Seq2Seq (1).ipynb' taken as seq2seq.ipynb (another case)", "s002",
                "babbageben_LATE_102_5002_Seq2Seq (1).ipynb")
SAMPLE = Manifest(ROSTER, {
    SEQ: Section("canvas", "/exports/seq.zip", "2025-03-12T10:00:00+00:00", {
        "s001": Submitter("101", "Lovelace, Ada", True, False, "", {
            "seq2seq": Filed("seq2seq.ipynb", "seq2seq", "", "s001", "lovelaceada_101_5001_seq2seq.ipynb")}),
        "s002": Submitter("102", "Babbage, Ben", True, True, "2025-03-10T09:00:00+00:00", {"seq2seq": RENAMED}),
        "104": Submitter("104", "müllerzoë", False)},
        not_submitted=["s005"], not_on_roster=["104"],
        unplaced=[Filed("notes.txt", why="not named as Canvas names a submission", entry="notes.txt"),
                  Filed("hoppercat_103_5005_helpers.py", why="not a notebook (.ipynb)", student="s003",
                        entry="hoppercat_103_5005_helpers.py")],
        skipped=2),
    PACKED: Section("canvas", "/exports/packed.zip", "2025-03-12T10:05:00+00:00",
                    {"s001": Submitter("101", "Lovelace, Ada", True, None, "2025-03-01T08:00:00+00:00")}),
})


def test_what_is_saved_is_what_is_loaded(tmp_path):
    manifest.save(tmp_path, SAMPLE)
    assert manifest.load(tmp_path) == SAMPLE
    assert not [p for p in tmp_path.iterdir() if p.name != manifest.MANIFEST_NAME], "written whole, nothing left over"
    assert manifest.load(tmp_path / "nowhere") is None


def test_the_file_holds_the_documented_keys(tmp_path):
    """The format other tools (and older copies in OUT) read: the module docstring's, key for key."""
    manifest.save(tmp_path, SAMPLE)
    data = json.loads((tmp_path / manifest.MANIFEST_NAME).read_text(encoding="utf-8"))
    assert list(data) == ["version", "roster", "assignments"] and data["version"] == 1
    assert list(data["roster"]) == ["source", "format", "id_column", "students"]
    assert data["roster"]["students"][1] == {"student_id": "s002", "lms_id": "102", "name": "Babbage, Ben",
                                             "email": "", "due": "2025-03-11"}
    section = data["assignments"][SEQ]
    assert list(section) == ["lms", "export", "collected_at", "submissions", "not_submitted", "not_on_roster",
                             "unplaced", "skipped"]
    assert section["submissions"]["s002"] == {
        "lms_id": "102", "name": "Babbage, Ben", "on_roster": True, "late": True,
        "submitted_at": "2025-03-10T09:00:00+00:00",
        "notebooks": {"seq2seq": {"entry": RENAMED.entry, "file": RENAMED.file, "how": RENAMED.why}}}
    assert section["unplaced"][1] == {"student": "s003", "entry": "hoppercat_103_5005_helpers.py",
                                      "reason": "not a notebook (.ipynb)"}
    assert section["skipped"] == 2 and "müllerzoë" in (tmp_path / manifest.MANIFEST_NAME).read_text(encoding="utf-8")


@pytest.mark.parametrize("text, words", [
    ("{not json", "unreadable"),
    ('{"version": 2, "assignments": {}}', "not a version-1 collect manifest"),
    ('["a list"]', "not a version-1 collect manifest"),
    ('{"version": 1, "assignments": {"a": {"unplaced": [{"entry": "x"}]}}}', "a broken entry (KeyError"),
    ('{"version": 1, "assignments": {"a": {"submissions": ["s001"]}}}', "a broken entry"),
])
def test_a_broken_manifest_is_refused_with_what_to_do(tmp_path, text, words):
    (tmp_path / manifest.MANIFEST_NAME).write_text(text)
    with pytest.raises(LmsError, match="run collect again") as caught:
        manifest.load(tmp_path)
    assert words in str(caught.value)


def test_a_later_collect_replaces_its_own_assignment_and_keeps_the_rest():
    again = Section("canvas", "/exports/seq-again.zip", submissions={"s001": Submitter("101")})
    updated = SAMPLE.with_assignment(SEQ, again, None)
    assert updated.assignments == {SEQ: again, PACKED: SAMPLE.assignments[PACKED]}
    assert updated.roster == ROSTER, "no roster given: the recorded one is kept"
    assert SAMPLE.assignments[SEQ].submissions["s002"].late is True, "the manifest it came from is unchanged"
    other = Roster("worksheet.csv", "moodle", "ID number", ())
    assert Manifest().with_assignment(SEQ, again, other).roster == other


def test_what_autograde_takes_from_it():
    collected = manifest.collected_from(SAMPLE, [SEQ])
    assert collected.roster_students == ("s001", "s002") and collected.id_column == "SIS User ID"
    assert collected.late == {("s001", SEQ): False, ("s002", SEQ): True, ("104", SEQ): None}
    assert collected.submitted_at[("s002", SEQ)] == "2025-03-10T09:00:00+00:00"
    assert collected.notes == {("s002", SEQ, "seq2seq"): RENAMED.why}, "only a file taken under another name"
    assert collected.unplaced == {manifest.NO_STUDENT: [f"{SEQ}: notes.txt: not named as Canvas names a submission"],
                                  "s003": [f"{SEQ}: hoppercat_103_5005_helpers.py: not a notebook (.ipynb)"]}
    assert collected.submitted_unplaced == {("s003", SEQ): "hoppercat_103_5005_helpers.py (not a notebook (.ipynb))"}
    assert ("s001", PACKED) not in collected.late, "an assignment not being graded is left out"
    assert manifest.students_to_grade(["104", "s001"], collected) == ["104", "s001", "s002"]
    assert manifest.students_to_grade(["104", "s001"], collected, only=["s002"]) == ["s002"]
    assert not manifest.collected_from(None).present


def test_rows_learn_what_the_folder_could_not_say():
    collected = manifest.collected_from(SAMPLE)
    rows = [Row("s002", SEQ, "seq2seq", 5.0, 20.0, "graded", "a cell ran past 60 s"),
            Row("s003", SEQ, "seq2seq", 0.0, 20.0, "missing", "s003/02_seq2seq: no notebook named seq2seq.ipynb"),
            Row("s005", SEQ, "seq2seq", 0.0, 20.0, "not_submitted", "s005: no folder 02_seq2seq/")]
    s002, s003, s005 = manifest.annotate(rows, collected)
    assert (s002.late, s002.submitted_at) == ("true", "2025-03-10T09:00:00+00:00")
    assert s002.detail == f"{RENAMED.why}; a cell ran past 60 s"
    assert s003.detail.startswith("submitted instead: hoppercat_103_5005_helpers.py (not a notebook (.ipynb)); ")
    assert (s005.late, s005.detail) == ("", rows[2].detail)
    assert rows[0].detail == "a cell ran past 60 s", "pure: the rows given are untouched"
    assert manifest.annotate(rows, manifest.Collected()) == rows, "no manifest: rows as graded"


def test_out_keeps_each_assignment_s_section_as_its_last_grading_left_it(tmp_path):
    out = tmp_path / "out"
    manifest.keep_in(out, SAMPLE, [SEQ])
    assert manifest.load(out) == Manifest(ROSTER, {SEQ: SAMPLE.assignments[SEQ]}), "only what the run graded"
    packed = manifest.Section("canvas", submissions={"s001": manifest.Submitter("101", late=True)})
    manifest.keep_in(out, manifest.Manifest(None, {PACKED: packed}), [PACKED])
    kept = manifest.load(out)
    assert kept.assignments == {SEQ: SAMPLE.assignments[SEQ], PACKED: packed}, \
        "grading another assignment from another folder keeps this one's late flags and times"
    assert kept.roster == SAMPLE.roster, "a folder without a roster does not forget the one recorded"
    manifest.keep_in(out, None, [PACKED])
    assert list(manifest.load(out).assignments) == [SEQ], "graded from a folder laid out by hand: its section goes"
    manifest.keep_in(out, None, [SEQ])
    assert manifest.load(out).assignments == {} and manifest.load(out).roster == SAMPLE.roster


def test_a_student_regrade_replaces_only_their_entries(tmp_path):
    out = tmp_path / "out"
    manifest.keep_in(out, SAMPLE, [SEQ])
    students = sorted(SAMPLE.assignments[SEQ].submissions)
    again = manifest.Section("canvas", submissions={students[0]: manifest.Submitter("999", late=False)})
    manifest.keep_in(out, manifest.Manifest(None, {SEQ: again}), [SEQ], [students[0]])
    section = manifest.load(out).assignments[SEQ]
    assert section.submissions[students[0]] == manifest.Submitter("999", late=False)
    assert {s: v for s, v in section.submissions.items() if s != students[0]} == \
        {s: v for s, v in SAMPLE.assignments[SEQ].submissions.items() if s != students[0]}


def test_unplaced_lines_merge_without_repeats():
    assert manifest.merge_unplaced({"s1": ["a", "b"]}, {"s1": ["b", "c"], "s2": ["d"]}) == {"s1": ["a", "b", "c"],
                                                                                          "s2": ["d"]}
