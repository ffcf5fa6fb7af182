"""Released notebooks and the student bundle: in sync, deterministic, clean, leaking nothing."""

from __future__ import annotations

import copy
import re
import zipfile
from pathlib import Path

import nbformat
import pytest
from helpers import before_you_submit

from grader.course import cells, layout, release
from grader.course.cells import public_lines, secrets_of
from grader.course.hidden import leaks, notebook_text
from grader.course.prepared import prepare_course

NOTEBOOKS = layout.available()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A fresh release of every notebook, by nbgrader, outside the repository."""
    course = prepare_course(tmp_path_factory.mktemp("release") / "course", NOTEBOOKS)
    return course, {nb: release.released_text(course, nb) for nb in NOTEBOOKS}


@pytest.fixture(scope="module")
def bundle(generated):
    """The student bundle's files, read back from a zip written like `release` writes it."""
    _, texts = generated
    files = release.bundle_files(texts)
    return files


def test_course_has_all_its_notebooks():
    assert [nb.key for nb in NOTEBOOKS] == [nb.key for nb in layout.SERIES]


def test_committed_release_is_in_sync(generated):
    course, _ = generated
    stale = release.out_of_date(course, NOTEBOOKS)
    assert not stale, f"run `python -m grader release`: {[nb.key for nb in stale]}"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """`python -m grader release` into a scratch copy of the layout (its own course, prepared afresh)."""
    root = tmp_path_factory.mktemp("released")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(layout, "NOTEBOOKS", root / "notebooks")
        patch.setattr(layout, "STUDENT_BUNDLE", root / "dist" / "student.zip")
        return root, release.release()


def test_release_is_deterministic(generated, released, tmp_path):
    """Two courses prepared apart give the same notebooks; the same files give the same zip, byte for byte."""
    _, first = generated
    _, written = released
    assert {nb: path.read_text() for nb, path in zip(NOTEBOOKS, written)} == first
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    release.write_zip(a, release.bundle_files(first))
    release.write_zip(b, release.bundle_files(first))
    assert a.read_bytes() == b.read_bytes()


def test_released_notebooks_carry_no_outputs():
    for nb in NOTEBOOKS:
        for cell in nbformat.read(nb.released, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (nb.key, cell.get("id"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.name for nb in NOTEBOOKS])
def test_released_notebook_leaks_no_solution_or_hidden_test(nb):
    secrets = secrets_of(nbformat.read(nb.source, as_version=4))
    assert secrets.solution and secrets.hidden, "the source notebook must have solutions and hidden tests"
    text = notebook_text(nbformat.read(nb.released, as_version=4))
    assert leaks(text, secrets.all) == []
    assert "### BEGIN" not in text and "### END" not in text


@pytest.mark.parametrize("kind", ["solution", "hidden"])
def test_leak_check_catches_a_planted_line(kind):
    """The check above can fail: plant one secret line in a released notebook and it is found."""
    nb = NOTEBOOKS[0]
    secrets = secrets_of(nbformat.read(nb.source, as_version=4))
    planted = sorted(getattr(secrets, kind))[0]
    released = copy.deepcopy(nbformat.read(nb.released, as_version=4))
    released.cells[-1].source += "\n    " + planted.replace(" ", "  ")
    assert leaks(notebook_text(released), secrets.all) == [planted]


def test_bundle_holds_what_a_student_needs_and_nothing_else(bundle):
    names = set(bundle)
    assert {"README.md", "requirements.txt", "environment.yml", "start_lab.py",
            "jupyter_config/labconfig/page_config.json"} <= names
    assert {f"notebooks/{nb.assignment}/{nb.filename}" for nb in NOTEBOOKS} <= names
    assert not any(n.startswith(("solutions/", "grader/", "tests/")) or "answers" in n for n in names)
    assert [n for n in names if n.endswith(".py")] == ["start_lab.py"]
    assert "torch==2.13.0" in bundle["requirements.txt"]
    assert "bubblewrap" not in bundle["requirements.txt"]


def test_bundle_leaks_nothing(bundle):
    """No notebook's solution or hidden-test line anywhere in the bundle (unless another notebook shows it openly)."""
    sources = [nbformat.read(nb.source, as_version=4) for nb in NOTEBOOKS]
    shown = frozenset().union(*(public_lines(s) for s in sources))
    all_secrets = frozenset().union(*(secrets_of(s, shown).all for s in sources))
    assert all_secrets
    for name, text in bundle.items():
        readable = notebook_text(nbformat.reads(text, as_version=4)) if name.endswith(".ipynb") else text
        assert leaks(readable, all_secrets) == [], name


def test_written_bundle_matches(tmp_path, bundle):
    path = tmp_path / "student.zip"
    release.write_zip(path, bundle)
    with zipfile.ZipFile(path) as zf:
        assert sorted(n.split("/", 1)[1] for n in zf.namelist()) == sorted(bundle)


def test_release_writes_the_notebooks_and_the_bundle(released):
    """The same notebooks as committed, where the layout says, and the bundle beside them."""
    root, written = released
    assert [p.relative_to(root / "notebooks") for p in written] == [Path(nb.assignment) / nb.filename for nb in NOTEBOOKS]
    for nb, path in zip(NOTEBOOKS, written):
        assert path.read_text() == (layout.ROOT / "notebooks" / nb.assignment / nb.filename).read_text()
    with zipfile.ZipFile(root / "dist" / "student.zip") as zf:
        assert f"seqmodels-course/notebooks/{NOTEBOOKS[0].assignment}/{NOTEBOOKS[0].filename}" in zf.namelist()


# An exercise heading's points: "### Exercise: `name` (N points: V visible, H hidden)".
POINTS = re.compile(r"`(\w+)` \((\d+) points?: (\d+) visible, (\d+) hidden\)")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.name for nb in NOTEBOOKS])
def test_exercise_headings_show_their_points(nb):
    """Each exercise heading shows its points, visible and hidden, as the test cells' metadata counts them."""
    source = nbformat.read(nb.source, as_version=4)
    counted = {exercise: [0, 0] for exercise in nb.exercises}
    shown = {}
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            counted[nb.exercise_of(meta["grade_id"])]["### BEGIN HIDDEN TESTS" in cell.source] += meta["points"]
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("### Exercise"):
                    shown.update({name: tuple(map(int, numbers)) for name, *numbers in POINTS.findall(line)})
    assert shown == {e: (visible + hidden, visible, hidden) for e, (visible, hidden) in counted.items()}


WRITTEN_POINTS = re.compile(r"^### Written question: .+ \((\d+) points?, graded by your instructor\)$", re.M)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.name for nb in NOTEBOOKS])
def test_written_questions_show_their_points(nb):
    """Each written answer cell follows its question, whose heading shows the points a person grades it out of."""
    source = nbformat.read(nb.source, as_version=4)
    shown, counted = [], []
    for i, cell in enumerate(source.cells):
        if cells.is_written(cell):
            counted.append(cells.points(cell))
            question = source.cells[i - 1]
            assert question.cell_type == "markdown" and not cells.nbgrader_meta(question), cells.grade_id(cell)
            shown += [float(p) for p in WRITTEN_POINTS.findall(question.source)]
    assert counted and shown == counted


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.name for nb in NOTEBOOKS])
def test_rubrics_and_model_answers_are_never_released(nb, bundle):
    """The rubric file stays with the solutions: its lines, and the model answers, are in no released notebook,
    no bundle file; the released answer cell is nbgrader's stub."""
    from grader.course.written import read_rubrics

    source = nbformat.read(nb.source, as_version=4)
    rubrics = read_rubrics(nb.rubrics)
    models = {line.strip() for q in cells.facts_of(source).written for line in q.model_answer.splitlines()}
    secret = secrets_of(source, rubrics=rubrics).rubric | (secrets_of(source).solution & models)
    assert secret - models and secret & models
    for name, text in bundle.items():
        readable = notebook_text(nbformat.reads(text, as_version=4)) if name.endswith(".ipynb") else text
        assert leaks(readable, secret) == [], name
    released = nbformat.read(nb.released, as_version=4)
    assert [c.source for c in released.cells if cells.is_written(c)] == \
        ["YOUR ANSWER HERE"] * len([c for c in source.cells if cells.is_written(c)])
    assert not any(name.endswith("rubrics.toml") for name in bundle)


def test_every_notebook_names_a_validate_command_from_the_bundle():
    """The "before you submit" command exists where students are (nbgrader, from requirements.txt) and names the notebook."""
    assert re.search(r"^nbgrader==", release.student_requirements(), re.M)
    for nb in NOTEBOOKS:
        released = nbformat.read(nb.released, as_version=4)
        command, filename = before_you_submit(released)
        assert filename == nb.filename, f"{nb.key} tells students to validate {filename}"
        assert "python -m grader" not in notebook_text(released), f"{nb.key} names the instructor's grader"
        assert command in layout.STUDENT_README.read_text() or nb.filename in layout.STUDENT_README.read_text()
