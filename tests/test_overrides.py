"""Instructor overrides: OUT/overrides.csv read as people write it, applied once to the rows as graded."""

from __future__ import annotations

import csv

import pytest

from grader import results
from grader.errors import LmsError
from grader.lms import manifest
from grader.lms.export import export
from grader.lms.grades import class_grades
from grader.overrides import Override, apply_overrides, parse_overrides, read_overrides, unmatched_overrides
from grader.results import Row

HEADER = "student,assignment,notebook,score,reason\n"


def test_apply_overrides_to_rows():
    rows = [Row("s001", "02_seq2seq", "seq2seq", 3.0, 20.0, "graded", "slow"),
            Row("s002", "02_seq2seq", "seq2seq", 5.0, 20.0, "tampered", "")]
    overrides = parse_overrides(HEADER + "s001,02_seq2seq,,18,regraded by hand\n")
    changed = apply_overrides(rows, overrides)
    assert changed[0].score == 18.0 and changed[0].status == "graded"
    assert changed[0].detail == "score set to 18 by the instructor: regraded by hand; slow"
    assert changed[1] == rows[1] and rows[0].score == 3.0, "pure: the input is untouched"
    two = rows + [Row("s001", "02_seq2seq", "other", 1.0, 5.0, "graded")]
    assert unmatched_overrides(two, overrides) == [
        "overrides.csv: s001/02_seq2seq matches no graded row (name the notebook: the assignment has several, or none was graded)"]
    assert unmatched_overrides(rows, [Override("s001", "02_seq2seq", "seq2seq", 1)]) == []


def test_bad_overrides_say_where():
    with pytest.raises(LmsError, match="line 2: score 'full' is not a number"):
        parse_overrides(HEADER + "s001,02_seq2seq,seq2seq,full,\n")
    with pytest.raises(LmsError, match="missing the column"):
        parse_overrides("who,what\n")


def test_the_file_as_a_spreadsheet_saves_it(tmp_path):
    """A byte-order mark, spaces around the header, blank lines, no notebook or reason column: all read."""
    assert read_overrides(tmp_path) == [], "no file, no overrides"
    (tmp_path / "overrides.csv").write_text("\ufeff student , assignment , score \n\ns001,02_seq2seq, 17.5 \n,,\n",
                                            encoding="utf-8")
    assert read_overrides(tmp_path) == [Override("s001", "02_seq2seq", "", 17.5, "")]


def test_an_override_names_the_score_and_why():
    assert Override("s", "a", "n", 7.0, "resent by email").note() == "score set to 7 by the instructor: resent by email"
    assert Override("s", "a", "n", 7.25).note() == "score set to 7.25 by the instructor"


@pytest.fixture
def out(tmp_path):
    out = tmp_path / "out"
    for notebook, score, detail in [("seq2seq", 0.0, "a cell ran past 60 s"), ("seq2seq_extra", 5.0, "")]:
        results.save(out, Row("s002", "02_seq2seq", notebook, score, 20.0 if notebook == "seq2seq" else 5.0,
                              "timeout" if score == 0 else "graded", detail))
    return out


def test_an_override_counts_once_and_an_edit_after_grading_reaches_the_export(out, tmp_path):
    """grades.csv and the export are built from the rows as graded: an override is applied to the graded score
    once, and changing or removing it after grading is what the next export says."""
    path = out / "overrides.csv"
    path.write_text(HEADER + "s002,02_seq2seq,seq2seq,15,slow machine\n")
    results.write_csv(out, class_grades(out, manifest.Collected()).rows)
    (ben,) = [r for r in results.read_csv(out) if r.notebook == "seq2seq"]
    assert (ben.score, ben.detail) == (15.0, "score set to 15 by the instructor: slow machine; a cell ran past 60 s")

    def exported() -> str:
        export(out, "nbgrader", tmp_path / "n.csv")
        (line,) = csv.DictReader((tmp_path / "n.csv").open())
        return line["raw_score"]

    assert exported() == "20", "15 + 5, not the override applied on top of grades.csv's overridden score"
    path.write_text(HEADER + "s002,02_seq2seq,seq2seq,12,regraded\n")
    assert exported() == "17"
    path.unlink()
    assert exported() == "5", "the graded 0 + 5 once the override is gone"


def test_the_last_line_for_a_notebook_wins_and_both_are_told(out):
    (out / "overrides.csv").write_text(HEADER + "s002,02_seq2seq,seq2seq,10,first look\ns002,02_seq2seq,seq2seq,12,second look\n")
    rows = {r.notebook: r for r in class_grades(out, manifest.Collected()).rows}
    assert rows["seq2seq"].score == 12
    assert rows["seq2seq"].detail.startswith("score set to 12 by the instructor: second look; score set to 10")
    assert rows["seq2seq_extra"].score == 5
