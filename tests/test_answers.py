"""The hidden tests tell right from wrong: graded through the real autograder, all in one run."""

from __future__ import annotations

import pytest

from grader import answers
from grader.layout import available

pytestmark = pytest.mark.slow

CASES = [(nb, answer) for nb in available() for answer in answers.catalogue(nb)]


def test_reference_solution_gets_full_marks(catalogue_run, notebook):
    row = catalogue_run[(notebook.name, "reference")]
    assert row.status == "graded", row.detail
    assert row.max_score > 0
    assert row.score == row.max_score, [c for c in row.cells if c.score < c.max_score]


def test_untouched_release_scores_zero(catalogue_run, notebook):
    row = catalogue_run[(notebook.name, "untouched")]
    assert row.status == "graded", row.detail
    assert row.score == 0


def test_tests_edited_to_pass_are_restored(catalogue_run, notebook):
    """A student who replaces every test cell with `pass` gets what the untouched notebook gets: 0."""
    row = catalogue_run[(notebook.name, "tests_edited_to_pass")]
    assert row.score == 0
    assert all(c.score == 0 for c in row.cells)


def test_catalogue_covers_every_exercise(notebook):
    """At least one wrong answer per exercise, and two other correct answers per notebook."""
    catalogue = answers.catalogue(notebook)
    wrong = {notebook.exercise_of(a.cell) for a in catalogue if not a.correct}
    assert set(notebook.exercises) <= wrong, set(notebook.exercises) - wrong
    assert sum(a.correct for a in catalogue) >= 2


@pytest.mark.parametrize("nb,answer", CASES, ids=[f"{nb.name}-{a.name}" for nb, a in CASES])
def test_answer_is_graded_as_catalogued(catalogue_run, nb, answer):
    row = catalogue_run[(nb.name, answer.name)]
    assert row.status == "graded", row.detail
    if answer.correct:
        assert row.score == row.max_score, f"{answer.why}: lost {[c.grade_id for c in row.cells if c.score < c.max_score]}"
    else:
        lost = [c for c in row.cells if c.score < c.max_score]
        assert row.score < row.max_score, f"this wrong answer got full marks: {answer.why}"
        assert any(c.exercise == nb.exercise_of(answer.cell) for c in lost), [c.grade_id for c in lost]


def test_passing_the_visible_tests_is_not_enough(catalogue_run, notebook):
    """An answer tailored to the visible tests passes them all, and still misses full marks."""
    tailored = [a for a in answers.catalogue(notebook) if a.name == "visible_tests_only"]
    assert tailored, "the catalogue needs a `visible_tests_only` answer"
    row = catalogue_run[(notebook.name, "visible_tests_only")]
    visible = [c for c in row.cells if not c.hidden and c.exercise == notebook.exercise_of(tailored[0].cell)]
    assert visible and all(c.score == c.max_score for c in visible)
    assert row.score < row.max_score
