"""nbgrader cell facts: read from real source notebooks, and never thrown by malformed metadata."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from grader.course import cells, layout

NOTEBOOKS = layout.available()


def graded(source: str = "assert True", **meta) -> nbformat.NotebookNode:
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = meta
    return cell


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda n: n.name)
def test_facts_of_every_source_notebook(notebook):
    facts = cells.facts_of(nbformat.read(notebook.source, as_version=4))
    assert facts.tests and facts.test_max == sum(t.points for t in facts.tests) > 0
    assert facts.max_score == facts.test_max + sum(q.points for q in facts.written)
    assert all(t.points > 0 for t in facts.tests), "every test cell carries points"
    assert facts.hidden_cells and all(not t.grade_id.endswith("_visible") for t in facts.tests if t.hidden)
    assert facts.exercises and all(facts.exercise_of(t.grade_id) in facts.exercises for t in facts.tests)
    assert all(t.description for t in facts.tests), "every test cell opens with a one-line comment"
    assert facts.secrets, "hidden lines to scrub"
    assert all("### BEGIN" not in code for code in facts.solutions.values())


@pytest.mark.parametrize("meta", [None, "a string", ["a", "list"], 3], ids=["none", "str", "list", "int"])
def test_malformed_nbgrader_metadata_reads_as_absent(meta):
    cell = new_code_cell("x = 1")
    cell.metadata["nbgrader"] = meta
    assert cells.nbgrader_meta(cell) == {}
    assert cells.grade_id(cell) is None and not cells.is_test(cell) and cells.is_answer(cell)
    assert cells.points(cell) == 0.0


def test_a_grade_id_that_is_not_a_string_reads_as_text():
    assert cells.grade_id(graded(grade_id=["test_x"], grade=True)) == "['test_x']"


@pytest.mark.parametrize("value,expected", [(3, 3.0), ("2", 2.0), ("many", 0.0), (None, 0.0), ([1], 0.0)])
def test_points_of_any_type(value, expected):
    assert cells.points(graded(grade=True, points=value)) == expected


def test_kinds_of_cell():
    test, solution = graded(grade=True, grade_id="t", locked=True), graded(solution=True, grade_id="s")
    given, plain = graded(locked=True, grade_id="g"), new_code_cell("y = 2")
    written = new_markdown_cell("Because ...", metadata={"nbgrader": {"grade": True, "solution": True, "grade_id": "w",
                                                                       "points": 2}})
    kinds = (test, solution, given, plain, written)
    assert [cells.is_test(c) for c in kinds] == [True, False, False, False, False]
    assert [cells.is_given(c) for c in kinds] == [False, False, True, False, False]
    assert [cells.is_answer(c) for c in kinds] == [False, True, False, True, True]
    assert [cells.is_written(c) for c in kinds] == [False, False, False, False, True]
    assert not cells.is_test(new_markdown_cell("text"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda n: n.name)
def test_written_questions_of_every_source_notebook(notebook):
    """One or two written questions per notebook, each with points, a title, a model answer and a rubric, none of
    them a test or an exercise; the model answer's and the rubric's lines are secret."""
    from grader.course.written import read_rubrics

    source = nbformat.read(notebook.source, as_version=4)
    rubrics = read_rubrics(notebook.rubrics)
    facts = cells.facts_of(source, rubrics)
    assert 1 <= len(facts.written) <= 2
    assert sorted(rubrics) == sorted(q.grade_id for q in facts.written), "one rubric per written question"
    for q in facts.written:
        assert q.points > 0 and q.title != q.grade_id and q.model_answer and q.rubric
        assert q.grade_id not in facts.solutions and q.grade_id not in facts.test_points
    secrets = cells.secrets_of(source, rubrics=rubrics)
    assert all(line in secrets.solution for q in facts.written for line in
               filter(None, map(cells._meaningful, q.model_answer.splitlines())))
    assert secrets.rubric and secrets.rubric <= facts.secrets and secrets.rubric <= secrets.all


def test_a_written_answer_without_markers_is_a_solution_as_a_whole():
    meta = {"nbgrader": {"grade": True, "solution": True, "grade_id": "w", "points": 1}}
    assert cells.cell_regions(new_markdown_cell("one line\nanother", metadata=meta)) == \
        ([], {"solution": ["one line", "another"], "hidden": []})
    assert cells.cell_regions(new_markdown_cell("one line")) == (["one line"], {"solution": [], "hidden": []})


def test_trusted_setup_needs_the_exact_mark():
    cell = new_code_cell("import torch")
    assert not cells.is_trusted_setup(cell)
    cell.metadata["grader"] = {"trusted": "yes"}
    assert not cells.is_trusted_setup(cell)
    cell.metadata["grader"] = {"trusted": True}
    assert cells.is_trusted_setup(cell)


def test_regions_and_descriptions():
    source = "# Hidden tests: any order.\n### BEGIN HIDDEN TESTS\nassert f(1) == 2\n### END HIDDEN TESTS\n"
    public, inside = cells.split_regions(source)
    assert public == ["# Hidden tests: any order."] and inside["hidden"] == ["assert f(1) == 2"]
    assert cells.description(source) == "Hidden tests: any order."
    assert cells.description("x = 1\n# later comment") == ""
    assert cells.is_hidden_in_release("# only a comment\n") and not cells.is_hidden_in_release("x = 1")
    assert cells.without_markers("a\n### BEGIN SOLUTION\nb\n### END SOLUTION") == "a\nb"


@pytest.mark.parametrize("gid,exercise", [
    ("test_run_packed_visible", "run_packed"), ("run_packed", "run_packed"), ("test_Seq2Seq_hidden", "Seq2Seq"),
    ("test_sequence_loss_hidden_mean", "sequence_loss"), ("test_unknown", "other"),
    ("test_run_packed2", "other"),
])
def test_exercise_of_a_grade_id(gid, exercise):
    assert cells.exercise_of(gid, ("run_packed", "Seq2Seq", "sequence", "sequence_loss")) == exercise
