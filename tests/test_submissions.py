"""Finding, reading and repairing submissions: layouts, links, devices, broken JSON, edited grade cells."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import nbformat
import pytest
from helpers import write_submission

from grader.course import answers, cells, layout
from grader.grading.submissions import InvalidNotebook, load, locate, read_submitted, repair, students_in

NB = layout.SERIES[0]
RELEASED = nbformat.read(NB.released, as_version=4)


def index_of(nb, gid: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if cells.grade_id(c) == gid)


def first_test(nb) -> str:
    return next(cells.grade_id(c) for c in nb.cells if cells.is_test(c))


def test_locate_finds_rows_for_every_student_and_notebook(tmp_path):
    write_submission(tmp_path, "ann", NB, RELEASED)
    (tmp_path / "bob" / NB.assignment).mkdir(parents=True)
    (tmp_path / "bob" / NB.assignment / "Packed (1).ipynb").write_text("{}")
    (tmp_path / "cid").mkdir()
    (tmp_path / "ann" / "notes.txt").write_text("mine")
    for junk in ("__MACOSX", ".hidden", "ann/.ipynb_checkpoints"):
        (tmp_path / junk).mkdir(parents=True, exist_ok=True)
    students = students_in(tmp_path)
    assert students == ["ann", "bob", "cid"]
    found, unplaced = locate(tmp_path, [NB], students)
    assert [(f.student, f.path is not None, f.absent) for f in found] == [
        ("ann", True, ""), ("bob", True, ""), ("cid", False, "not_submitted")]
    assert "'Packed (1).ipynb' taken as packed_sequences.ipynb" in found[1].detail, "a browser's rename is placed"
    assert unplaced == {"ann": ["notes.txt"]}


def test_a_folder_without_the_notebook_is_missing(tmp_path):
    (tmp_path / "bob" / NB.assignment).mkdir(parents=True)
    (tmp_path / "bob" / NB.assignment / "answers.py").write_text("x = 1")
    found, unplaced = locate(tmp_path, [NB], ["bob"])
    assert (found[0].absent, found[0].path) == ("missing", None) and "answers.py" in found[0].detail
    assert unplaced == {"bob": [f"{NB.assignment}/answers.py"]}


def test_a_linked_student_folder_is_not_a_student(tmp_path):
    write_submission(tmp_path / "elsewhere", "ann", NB, RELEASED)
    (tmp_path / "subs").mkdir()
    os.symlink(tmp_path / "elsewhere" / "ann", tmp_path / "subs" / "ann")
    assert students_in(tmp_path / "subs") == []


def test_reading_a_regular_file(tmp_path):
    path = write_submission(tmp_path, "ann", NB, RELEASED)
    assert read_submitted(path) == path.read_bytes()


@pytest.mark.parametrize("target", ["/proc/kmsg", "/dev/zero", "other_student"])
def test_a_link_is_refused_without_reading_it(tmp_path, target):
    victim = write_submission(tmp_path, "victim", NB, RELEASED)
    link = tmp_path / "link.ipynb"
    os.symlink(victim if target == "other_student" else target, link)
    with pytest.raises(InvalidNotebook, match="symbolic link"):
        read_submitted(link)


def test_a_fifo_or_device_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)
    with pytest.raises(InvalidNotebook, match="not a regular file"):
        read_submitted(fifo)
    with pytest.raises(InvalidNotebook, match="not a regular file"):
        read_submitted(Path("/dev/zero"))


def test_control_following_the_link_reads_another_file(tmp_path):
    """What a plain read does with the same link: it returns the other student's notebook."""
    victim = write_submission(tmp_path, "victim", NB, RELEASED)
    os.symlink(victim, tmp_path / "link.ipynb")
    assert (tmp_path / "link.ipynb").read_bytes() == victim.read_bytes()


def test_a_file_over_the_limit_is_refused(tmp_path):
    big = tmp_path / "big.ipynb"
    big.write_bytes(b" " * 2048)
    with pytest.raises(InvalidNotebook, match="over the"):
        read_submitted(big, limit=1024)


@pytest.mark.parametrize("raw,message", [
    (b'{"cells": [', "not JSON"), (b"\xff\xfe", "not JSON"), (b"[1, 2]", "not a notebook"),
    (b'{"cells": "none", "metadata": {}}', "not a valid notebook"),
])
def test_load_says_what_is_wrong(raw, message):
    with pytest.raises(InvalidNotebook, match=message):
        load(raw)


def test_an_nbformat_3_notebook_is_upgraded():
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell("x = 1")])])
    nb = load(nbformat.writes(v3, version=3).encode())
    assert nb.nbformat == 4 and nb.cells[0].source == "x = 1"


def test_repair_leaves_an_honest_submission_alone():
    fixed = repair(answers.submission(NB), RELEASED)
    assert fixed.tampering == [] and fixed.nb == answers.submission(NB)


def test_repair_reinserts_deleted_test_cells_in_place():
    nb = copy.deepcopy(RELEASED)
    gid = first_test(nb)
    at = index_of(nb, gid)
    del nb.cells[at]
    fixed = repair(nb, RELEASED)
    assert cells.grade_id(fixed.nb.cells[at]) == gid
    assert any("was deleted" in t for t in fixed.tampering)


def test_repair_drops_duplicates_and_unmarks_renamed_ids():
    nb = copy.deepcopy(RELEASED)
    gid = first_test(nb)
    at = index_of(nb, gid)
    nb.cells.insert(at, copy.deepcopy(nb.cells[at]))
    fixed = repair(nb, RELEASED)
    assert [cells.grade_id(c) for c in fixed.nb.cells].count(gid) == 1
    nb = copy.deepcopy(RELEASED)
    nb.cells[at].metadata.nbgrader["grade_id"] = "mine"
    fixed = repair(nb, RELEASED)
    assert any("'mine'" in t for t in fixed.tampering)
    assert [cells.grade_id(c) for c in fixed.nb.cells].count(gid) == 1, "the real test is put back"


@pytest.mark.parametrize("field,value", [("points", 100), ("points", "100"), ("grade_id", ["x"]), ("grade", False)])
def test_malformed_or_edited_grading_metadata_is_restored(field, value):
    nb = copy.deepcopy(RELEASED)
    gid = first_test(nb)
    nb.cells[index_of(nb, gid)].metadata.nbgrader[field] = value
    fixed = repair(nb, RELEASED)
    assert fixed.tampering
    restored = fixed.nb.cells[index_of(fixed.nb, gid)]
    assert cells.nbgrader_meta(restored) == cells.nbgrader_meta(RELEASED.cells[index_of(RELEASED, gid)])
