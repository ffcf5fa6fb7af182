"""Tolerant notebook-name matching: what is placed, what is not, and what the detail says."""

from __future__ import annotations

import pytest

from grader.course import layout
from grader.course.matching import Filed, canonical, copy_number, place, tolerant_matches
from grader.grading import submissions


@pytest.mark.parametrize("name, expected", [
    ("seq2seq", "seq2seq"), ("Seq2Seq (1)", "seq2seq"), ("seq2seq-1", "seq2seq"), ("seq2seq-12", "seq2seq"),
    ("seq2seq - Copy", "seq2seq"), ("seq2seq - Copy (2)", "seq2seq"), ("Copy of seq2seq", "seq2seq"),
    ("seq2seq (1)-1", "seq2seq"), ("bilstm-tagger", "bilstm_tagger"), ("BiLSTM Tagger", "bilstm_tagger"),
])
def test_canonical_names(name, expected):
    assert canonical(name) == expected


@pytest.mark.parametrize("file, how", [
    ("seq2seq.ipynb", ""),
    ("Seq2Seq.ipynb", "another case"),
    ("seq2seq (1).ipynb", "copy mark"),
    ("seq2seq-2.ipynb", "copy mark"),
    ("Copy of seq2seq.ipynb", "copy mark"),
    ("seq2seq.ipynb.json", "another extension"),
    ("seq2seq_.ipynb", "another spelling"),
    ("SEQ2SEQ.IPYNB", "another case"),
    ("my final answer.ipynb", "the only notebook left of 02_seq2seq"),
])
def test_one_file_is_placed_and_says_how(file, how):
    placement = place([file], ["seq2seq"], assignment="02_seq2seq")
    (match,) = placement.placed
    assert match.notebook == "seq2seq" and match.file == file and not placement.unplaced
    assert (how in match.why) and (bool(match.why) == bool(how))
    if how:
        assert repr(file) in match.why


def test_strays_and_ambiguity_are_unplaced_with_reasons():
    placement = place(["a.ipynb", "b.ipynb", "helpers.py"], ["seq2seq"], assignment="02_seq2seq")
    assert placement.placed == ()
    assert [(u.file, u.why) for u in placement.unplaced] == [
        ("a.ipynb", "matches no notebook of 02_seq2seq (expected seq2seq.ipynb)"),
        ("b.ipynb", "matches no notebook of 02_seq2seq (expected seq2seq.ipynb)"),
        ("helpers.py", "not a notebook (.ipynb)")]


def test_two_released_notebooks_with_one_canonical_name_are_never_guessed():
    placement = place(["lab (1).ipynb"], ["lab-1", "lab-2"])
    assert placement.placed == () and "could be any of lab-1.ipynb, lab-2.ipynb" in placement.unplaced[0].why
    assert [m.file for m in place(["lab-2.ipynb"], ["lab-1", "lab-2"]).placed] == ["lab-2.ipynb"]


def test_without_times_the_exact_name_then_the_highest_copy_wins():
    placement = place(["seq2seq (1).ipynb", "seq2seq.ipynb", "seq2seq (2).ipynb"], ["seq2seq"])
    assert placement.placed[0].file == "seq2seq.ipynb"
    assert [u.file for u in placement.unplaced] == ["seq2seq (1).ipynb", "seq2seq (2).ipynb"]
    assert "'seq2seq.ipynb' was taken (exact name first)" in placement.unplaced[0].why
    assert place(["seq2seq (1).ipynb", "seq2seq (2).ipynb"], ["seq2seq"]).placed[0].file == "seq2seq (2).ipynb"
    assert copy_number("seq2seq - Copy") == 1 and copy_number("seq2seq") == 0


def test_the_caller_decides_what_newest_means():
    ids = [7, 9, 8]
    placement = place(["seq2seq.ipynb", "seq2seq-1.ipynb", "seq2seq-2.ipynb"], ["seq2seq"],
                      newer=lambda m: ids[m.index], rule="the newest")
    assert placement.placed[0].file == "seq2seq-1.ipynb"
    assert all(u.why.endswith("(the newest)") for u in placement.unplaced)


def test_the_only_notebook_rule_needs_exactly_one_of_each():
    two_empty = place(["mine.ipynb"], ["a", "b"])
    assert two_empty.placed == ()
    one_empty = place(["a.ipynb", "mine.ipynb"], ["a", "b"])
    assert [(m.notebook, m.file) for m in one_empty.placed] == [("a", "a.ipynb"), ("b", "mine.ipynb")]


def test_autograde_places_the_demo_rename():
    """demo/submissions/ben/03_bilstm_tagger/bilstm_tagger (1).ipynb is graded, not `missing`."""
    jobs, unplaced = submissions.locate(layout.course().demo_submissions, layout.available(), ["ben"])
    last = layout.available()[-1]
    job = next(j for j in jobs if j.notebook == last)
    assert job.path is not None and job.path.name == f"{last.name} (1).ipynb" and job.absent == ""
    assert f"'{last.name} (1).ipynb' taken as {last.filename}" in job.detail
    assert unplaced == {}


def test_autograde_keeps_the_exact_file_and_lists_the_copy(tmp_path):
    nb = layout.SERIES[1]
    folder = tmp_path / "ada" / nb.assignment
    folder.mkdir(parents=True)
    for name in (nb.filename, f"{nb.name} (1).ipynb", "notes.py"):
        (folder / name).write_text("{}")
    jobs, unplaced = submissions.locate(tmp_path, [nb], ["ada"])
    assert jobs[0].path == folder / nb.filename and jobs[0].detail == ""
    assert unplaced == {"ada": [f"{nb.assignment}/notes.py", f"{nb.assignment}/{nb.name} (1).ipynb"]}


def test_tolerant_matches_only_looks_directly_in_assignment_folders():
    rels = ["02_seq2seq/old/seq2seq (1).ipynb", "03_bilstm_tagger/Bilstm_Tagger.ipynb"]
    assert tolerant_matches(rels, layout.SERIES) == {
        "03_bilstm_tagger/bilstm_tagger": Filed("03_bilstm_tagger/Bilstm_Tagger.ipynb", "bilstm_tagger",
                                                "'Bilstm_Tagger.ipynb' taken as bilstm_tagger.ipynb (another case)")}
