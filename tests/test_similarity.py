"""Similar submissions: copies found whatever their names and layout; independent answers, the released
code and the reference solution never make a pair."""

from __future__ import annotations

import itertools

import nbformat
import pytest
from sample_class import NOTEBOOK, copied_pair, renamed

from grader.course import answers, layout
from grader.report import similarity


@pytest.fixture(scope="module")
def released():
    return {nb: nbformat.read(nb.released, as_version=4) for nb in layout.available()}


def compare(nb: layout.Notebook, released, students: dict[str, dict[str, str]]) -> similarity.Similarity:
    return similarity.compare(students, similarity.template_sources(released[nb]), answers.reference(nb))


def test_same_answer_renamed_and_reformatted_is_flagged(released):
    pair = copied_pair()
    assert pair["amy"]["Seq2Seq"] != pair["bob"]["Seq2Seq"]
    found = compare(NOTEBOOK, released, pair)
    [match] = found.pairs
    assert (match.first, match.second) == ("amy", "bob")
    assert match.similarity >= 0.9 and match.shared >= similarity.MIN_SHARED
    # the overlapping code, located in each as written
    assert match.spans[0] and match.spans[1]
    first = "".join(match.code[0][a:b] for a, b in match.spans[0])
    second = "".join(match.code[1][a:b] for a, b in match.spans[1])
    assert "nn.GRUCell" in first and "nn.GRUCell" in second and "gru_cell" in second
    assert similarity.RULE not in first + second, "the rules between cells are never marked as shared"
    assert found.reference == [], "this answer is not the reference's"


@pytest.mark.parametrize("nb", layout.available(), ids=lambda nb: nb.name)
def test_independent_correct_answers_of_different_shape_are_not_flagged(nb, released):
    """Every two catalogued correct answers to the same cell, each the only code its student wrote."""
    base = similarity.solution_sources(released[nb])
    correct = [a for a in answers.catalogue(nb) if a.correct]
    pairs = [(a, b) for a, b in itertools.combinations(correct, 2) if a.cell == b.cell]
    if not pairs:
        pytest.skip(f"{nb.key}: no two correct answers to one cell in the catalogue")
    for a, b in pairs:
        found = compare(nb, released, {a.name: {**base, a.cell: a.source}, b.name: {**base, b.cell: b.source}})
        assert found.students == 2
        assert found.pairs == [], f"{a.name} and {b.name} flagged: {found.pairs[0].similarity:.2f}"


def test_a_whole_class_of_catalogued_answers_flags_only_the_copy(released):
    """Each correct Seq2Seq of the catalogue as one student, plus a renamed copy of one of them."""
    base = similarity.solution_sources(released[NOTEBOOK])
    students = {a.name: {**base, a.cell: a.source} for a in answers.catalogue(NOTEBOOK) if a.correct}
    students["copycat"] = {**base, **copied_pair()["bob"]}
    found = compare(NOTEBOOK, released, students)
    assert [(m.first, m.second) for m in found.pairs] == [("copycat", "gru_cell_decoder")]


def test_template_only_submissions_are_not_compared(released):
    template = similarity.solution_sources(released[NOTEBOOK])
    found = compare(NOTEBOOK, released, {"ann": dict(template), "ben": dict(template), "cy": {}})
    assert (found.students, found.pairs, found.reference) == (0, [], [])


def test_released_code_kept_in_an_answer_never_counts(released):
    """Both students keep the signatures and docstrings and write different bodies: no pair."""
    template = similarity.solution_sources(released[NOTEBOOK])
    body = "    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert body in template["make_decoder_inputs"]
    ann = {**template, "make_decoder_inputs": template["make_decoder_inputs"].replace(
        body, "    return F.pad(targets[:, :-1], (1, 0), value=bos_idx)")}
    ben = {**template, "make_decoder_inputs": template["make_decoder_inputs"].replace(
        body, "    out = torch.roll(targets, 1, 1)\n    out[:, 0] = bos_idx\n    return out")}
    assert compare(NOTEBOOK, released, {"ann": ann, "ben": ben}).pairs == []


def test_the_reference_is_listed_apart_and_never_makes_a_pair(released):
    """Two students hand in the reference solution, one renamed: both on the reference list, not a pair."""
    reference = answers.reference(NOTEBOOK)
    leaked = {gid: renamed(src, {"targets": "tgt", "hidden": "state", "logits": "scores"}) for gid, src in reference.items()}
    found = compare(NOTEBOOK, released, {"ann": dict(reference), "ben": leaked})
    assert found.pairs == []
    assert [m.first for m in found.reference] == ["ann", "ben"]
    assert all(m.second == similarity.REFERENCE and m.shares[0] >= 0.95 for m in found.reference)


def test_solution_sources_and_document():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[
        new_markdown_cell("text"),
        new_code_cell("given()", metadata={"nbgrader": {"grade_id": "setup", "locked": True}}),
        new_code_cell("def f(): return 1", metadata={"nbgrader": {"grade_id": "f", "solution": True}}),
        new_code_cell("helper = 2"),  # a cell the student added
        new_code_cell("assert f() == 1", metadata={"nbgrader": {"grade_id": "test_f", "grade": True}})])
    sources = similarity.solution_sources(nb)
    assert sources == {"f": "def f(): return 1", "added-3": "helper = 2"}
    rule = similarity.RULE
    assert similarity.document(sources, ["f"]) == f"# cell f\n{rule}\ndef f(): return 1\n\n# cell added-3\n{rule}\nhelper = 2"
    assert similarity.document(sources, ["f"], frozenset({"def f(): return 1"})) == f"# cell added-3\n{rule}\nhelper = 2"


def test_of_submissions_reads_a_class_folder(tmp_path, released):
    from helpers import write_submission

    pair = copied_pair()
    for student, fill in pair.items():
        write_submission(tmp_path, student, NOTEBOOK, answers.submission(NOTEBOOK, fill, released[NOTEBOOK]))
    write_submission(tmp_path, "cat", NOTEBOOK, '{"cells": [')  # not JSON: left out
    found = similarity.of_submissions(tmp_path, [NOTEBOOK])
    sim = found[NOTEBOOK.key]
    assert sim.error == "" and sim.students == 2
    assert [(m.first, m.second) for m in sim.pairs] == [("amy", "bob")]


def test_the_comparison_reads_a_bounded_part_of_each_submission(released):
    """A student's megabytes of code would make every pair cost their length: only the start is compared, and
    the report says whose."""
    from grader.report.sections import similarity_html

    reference = answers.reference(NOTEBOOK)
    huge = {gid: src + "\n" + "\n".join(f"value_{i} = {i} * 2" for i in range(20_000)) for gid, src in reference.items()}
    found = compare(NOTEBOOK, released, {"amy": huge, "bob": dict(reference)})
    assert found.cut == ["amy"] and found.students == 2
    assert "Only the first 50,000 characters of code were compared for amy" in similarity_html({"nb": found})
