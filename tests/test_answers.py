"""The hidden tests tell right from wrong.

Every catalogued answer is graded in one kernel per notebook (tests/quick.py); a sample of them,
with the reference and the untouched release, goes through the real sandboxed autograder, and the
two must agree cell by cell.
"""

from __future__ import annotations

import nbformat
import pytest
from conftest import sampled

from grader import results
from grader.course import answers
from grader.course.written import answer_hash
from grader.course.layout import available
from grader.grading.integrity import scan_source
from grader.results import feedback_path

pytestmark = pytest.mark.slow

CASES = [(nb, answer) for nb in available() for answer in answers.catalogue(nb)]


def test_reference_solution_gets_full_marks(catalogue_run, quick_scores, notebook):
    row = catalogue_run[(notebook.name, "reference")]
    assert row.status == "graded", row.detail
    assert row.max_score > 0
    assert row.score + row.to_grade == row.max_score, [c for c in row.cells if c.score < c.max_score]
    assert row.to_grade == sum(w.points for w in row.written) > 0, "the written answers are left to a person"
    models = answers.model_answers(notebook)
    assert [w.answer_sha256 for w in row.written] == [answer_hash(models[w.grade_id]) for w in row.written]
    graded = nbformat.read(results.graded_path(catalogue_run.out, row.student_id, row.assignment, row.notebook), 4)
    assert any(c.get("outputs") for c in graded.cells), "the task returned the notebook nbgrader autograded"
    assert quick_scores(notebook)["reference"] == {c.grade_id: c.max_score for c in row.cells}


def test_reference_runs_every_cell_without_an_error(catalogue_run, notebook):
    """Graded as every submission is (sandboxed, from a fresh run folder), the reference runs top to bottom
    without an error output, given cells included: a notebook with data finds it there."""
    page = feedback_path(catalogue_run.out, f"{notebook.name}--reference", notebook.assignment, notebook.name)
    assert "output_error" not in page.read_text()


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
    """At least one wrong answer per exercise, 8 in all, and two other correct answers, each under its own name."""
    catalogue = answers.catalogue(notebook)
    names = [a.name for a in catalogue]
    assert len(set(names)) == len(names), sorted({n for n in names if names.count(n) > 1})
    wrong = {notebook.exercise_of(a.cell) for a in catalogue if not a.correct}
    assert set(notebook.exercises) <= wrong, set(notebook.exercises) - wrong
    assert sum(not a.correct for a in catalogue) >= 8
    assert sum(a.correct for a in catalogue) >= 2
    assert not [a.name for a in catalogue if scan_source(a.source)[0]], "an honest answer looks like a cheat"


@pytest.mark.parametrize("nb,answer", CASES, ids=[f"{nb.name}-{a.name}" for nb, a in CASES])
def test_answer_is_graded_as_catalogued(quick_scores, nb, answer):
    cells = quick_scores(nb)[answer.name]
    best = quick_scores(nb)["reference"]
    if answer.correct:
        assert cells == best, f"{answer.why}: lost {[g for g in cells if cells[g] < best[g]]}"
    else:
        lost = [g for g in cells if cells[g] < best[g]]
        assert lost, f"this wrong answer got full marks: {answer.why}"
        assert any(nb.exercise_of(g) == nb.exercise_of(answer.cell) for g in lost), lost


def test_catalogue_grading_agrees_with_the_autograder(catalogue_run, quick_scores, notebook):
    for answer in sampled(notebook):
        row = catalogue_run[(notebook.name, answer.name)]
        assert row.status == "graded", row.detail
        assert {c.grade_id: c.score for c in row.cells} == quick_scores(notebook)[answer.name], answer.name


def test_passing_the_visible_tests_is_not_enough(catalogue_run, notebook):
    """An answer tailored to the visible tests passes them all, and still misses full marks."""
    tailored = [a for a in answers.catalogue(notebook) if a.name == "visible_tests_only"]
    assert tailored, "the catalogue needs a `visible_tests_only` answer"
    row = catalogue_run[(notebook.name, "visible_tests_only")]
    visible = [c for c in row.cells if not c.hidden and c.exercise == notebook.exercise_of(tailored[0].cell)]
    assert visible and all(c.score == c.max_score for c in visible)
    assert row.score < row.max_score


def test_split_grading_keeps_every_verdict(quick_scores, single_kernel_scores, notebook):
    """Test cells moved to the trusted kernel give every cell the verdict it had in one kernel: on the
    reference, on the untouched release and on every catalogued answer."""
    split, single = quick_scores(notebook), single_kernel_scores(notebook)
    assert split.keys() == single.keys() and len(split) >= 3
    changed = {name: {g: (single[name][g], split[name][g]) for g in split[name] if split[name][g] != single[name][g]}
               for name in split}
    assert not {name: c for name, c in changed.items() if c}, "verdicts (one kernel, trusted kernel) that changed"


# The catalogued answers that change their caller's tensors in place, and the one test cell each must lose:
# the one that checks the inputs are unchanged (through the trusted setup's `changed_arguments`).
IN_PLACE = {"zeroes_padding_in_place": "test_run_packed_hidden_inputs",
            "shifts_in_place": "test_make_decoder_inputs_hidden_inputs",
            "cleans_padding_in_place": "test_BiLSTMTagger_hidden_padding",
            "loss_marks_padding_in_place": "test_masked_cross_entropy_hidden_type",
            "fills_the_scores_in_place": "test_masked_softmax_hidden_inputs"}


def test_in_place_answers_lose_exactly_their_inputs_test(quick_scores, single_kernel_scores, notebook):
    """The right values written into the caller's tensors: across the bridge the test's tensors never change,
    and the student side's report of the change costs exactly the inputs test, as in one kernel."""
    names = [a.name for a in answers.catalogue(notebook) if a.name in IN_PLACE]
    for scores in (quick_scores(notebook), single_kernel_scores(notebook)):
        best = scores["reference"]
        for name in names:
            assert [g for g in best if scores[name][g] < best[g]] == [IN_PLACE[name]], name
