"""Item analysis: pass rates, corrected item-total correlations and exercise statistics, checked against
values worked out by hand."""

from __future__ import annotations

import math

import pytest
from sample_class import BROKEN, class_rows

from grader.report import items
from grader.results import CellResult, Row

# Three test cells: A (1 point) and B (1 point) of exercise X, C (2 points) of exercise Y.
POINTS = {"A": ("X", 1.0), "B": ("X", 1.0), "C": ("Y", 2.0)}


def row(student: str, status: str = "graded", score: float | None = None, **earned: float) -> Row:
    cells = [CellResult(g, ex, earned.get(g, 0.0), pts, False) for g, (ex, pts) in POINTS.items()]
    total = sum(c.score for c in cells) if score is None else score
    return Row(student, "01_a", "nb", total, 4.0, status, "", cells)


FOUR = [row("s1", A=1, B=1, C=2), row("s2", A=1, C=2), row("s3", B=1), row("s4")]


def test_correlation_by_hand():
    assert items.correlation([1, 1, 0, 0], [3, 2, 1, 0]) == pytest.approx(2 / math.sqrt(5))
    assert items.correlation([1, 0, 1, 0], [3, 3, 0, 0]) == pytest.approx(0.0)
    assert items.correlation([1, 1, 1], [3, 2, 1]) is None  # the item does not vary
    assert items.correlation([1, 0, 1], [2, 2, 2]) is None  # the rest does not vary
    assert items.correlation([1], [1]) is None


def test_item_stats_hand_computed():
    # totals 4, 3, 1, 0. A: passes 1,1,0,0 against rest 3,2,1,0 -> 2/sqrt(5) = 0.894.
    # B: passes 1,0,1,0 against rest 3,3,0,0 -> 0: flagged low.
    # C (2 points, passed only at 2): passes 1,1,0,0 against rest 2,1,1,0 -> 1/sqrt(2) = 0.707.
    stats = {s.grade_id: s for s in items.item_stats(FOUR, min_students=4)}
    assert [stats[g].passed for g in "ABC"] == [2, 2, 2]
    assert stats["A"].pass_rate == 0.5 and stats["A"].students == 4
    assert stats["A"].discrimination == pytest.approx(0.894427, abs=1e-6) and stats["A"].flag == ""
    assert stats["B"].discrimination == pytest.approx(0.0) and stats["B"].flag == "low"
    assert stats["C"].discrimination == pytest.approx(0.707107, abs=1e-6) and stats["C"].flag == ""


def test_negative_flag():
    assert items.flag_of(-0.01) == "negative" and items.flag_of(0.19) == "low" and items.flag_of(0.2) == ""
    assert items.flag_of(None) == ""


def test_below_the_minimum_class_size_no_discrimination_and_the_report_says_why():
    [nb] = items.analyse(FOUR)  # 4 < MIN_STUDENTS
    assert nb.students == 4 and "needs at least 10" in nb.absent and "4 notebooks ran" in nb.absent
    assert all(i.discrimination is None and i.flag == "" and "needs 10" in i.note for i in nb.items)
    assert [i.passed for i in nb.items] == [2, 2, 2]  # pass rates are still there


def test_a_broken_test_that_strong_students_fail_is_flagged():
    [nb] = items.analyse(class_rows())
    assert nb.absent == "" and nb.students == 12  # the voided and the absent rows are not counted
    broken = next(i for i in nb.items if i.grade_id == BROKEN)
    assert broken.discrimination < -0.5 and broken.flag == "negative"
    assert [i.grade_id for i in nb.flagged] == [BROKEN]
    others = [i for i in nb.items if i.grade_id != BROKEN and i.discrimination is not None]
    assert others and all(i.discrimination > items.LOW for i in others)


def test_constant_items_divide_by_nothing():
    everyone = [row(f"s{i}", A=1, B=1 if i % 2 else 0, C=2 if i % 3 else 0) for i in range(12)]
    stats = {s.grade_id: s for s in items.item_stats(everyone)}
    assert stats["A"].discrimination is None and stats["A"].note == "every student passed" and stats["A"].flag == ""
    nobody = [row(f"s{i}") for i in range(12)]
    assert all(s.note == "no student passed" for s in items.item_stats(nobody))
    lone = [Row(f"s{i}", "01_a", "nb", float(i % 2), 1.0, "graded", "", [CellResult("A", "X", float(i % 2), 1.0, False)])
            for i in range(12)]
    [only] = items.item_stats(lone)
    assert only.discrimination is None and "rest of the notebook" in only.note


def test_rows_that_did_not_run_or_were_voided_are_not_counted():
    voided = row("cheat", status="tampered", score=0.0, A=1, B=1, C=2)
    kept = row("fixed", status="tampered", A=1)  # restored and graded, not voided
    absent = Row("gone", "01_a", "nb", 0.0, 4.0, "not_submitted")
    assert items.voided(voided) and not items.voided(kept) and not items.voided(row("zero", status="tampered"))
    assert [r.student_id for r in items.counted(FOUR + [voided, kept, absent])] == ["s1", "s2", "s3", "s4", "fixed"]


def test_exercise_stats_hand_computed():
    stats = {e.exercise: e for e in items.exercise_stats(FOUR)}
    x, y = stats["X"], stats["Y"]
    assert (x.points, x.students, x.mean, x.median) == (2.0, 4, 1.0, 1.0)
    assert x.distribution == {0.0: 1, 1.0: 2, 2.0: 1}
    assert (y.points, y.mean, y.median) == (2.0, 1.0, 1.0)
    assert y.distribution == {0.0: 2, 1.0: 0, 2.0: 2}  # every value from 0 to the maximum, even unseen


def test_analyse_splits_by_notebook():
    other = [Row(r.student_id, "02_b", "nb2", r.score, r.max_score, r.status, "", r.cells) for r in FOUR[:2]]
    found = items.analyse(FOUR + other)
    assert [(nb.notebook, nb.students) for nb in found] == [("01_a/nb", 4), ("02_b/nb2", 2)]
    assert "2 notebooks ran" in found[1].absent
    assert items.analyse([]) == []
