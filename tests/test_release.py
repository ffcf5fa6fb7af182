"""Released notebooks and the student bundles: in sync, deterministic, clean, leaking nothing, one per assignment."""

from __future__ import annotations

import copy
import re
import stat
import zipfile
from pathlib import Path

import nbformat
import pytest
from helpers import before_you_submit, course_copy

from grader import cli
from grader.course import cells, layout, release
from grader.course.cells import public_lines, secrets_of
from grader.course.hidden import leaks, notebook_text
from grader.course.prepared import prepare_course
from grader.errors import GraderError

REPO = layout.course().root
NOTEBOOKS = layout.available()
ASSIGNMENTS = list(dict.fromkeys(nb.assignment for nb in NOTEBOOKS))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A fresh release of every notebook, by nbgrader, outside the repository."""
    course = prepare_course(tmp_path_factory.mktemp("release") / "course", NOTEBOOKS)
    return course, {nb: release.released_text(course, nb) for nb in NOTEBOOKS}


@pytest.fixture(scope="module")
def bundle(generated):
    """The whole-course bundle's files (every notebook), as `release --whole-course` writes them."""
    _, texts = generated
    return release.bundle_files(texts)


@pytest.fixture(scope="module")
def bundles(generated):
    """{assignment: its bundle's files}, as `release` writes them."""
    _, texts = generated
    return {a: release.bundle_files({nb: t for nb, t in texts.items() if nb.assignment == a}) for a in ASSIGNMENTS}


def text_of(name: str, data: bytes) -> str:
    """What a person reads in one bundle file (a data file that is not UTF-8 text, as far as it reads)."""
    if name.endswith(".ipynb"):
        return notebook_text(nbformat.reads(data.decode(), as_version=4))
    return data.decode("utf-8", errors="replace")


def test_course_has_all_its_notebooks():
    assert [nb.key for nb in NOTEBOOKS] == [nb.key for nb in layout.SERIES]


def test_committed_release_is_in_sync(generated):
    course, _ = generated
    stale = release.out_of_date(course, NOTEBOOKS)
    assert not stale, f"run `python -m grader release`: {[nb.key for nb in stale]}"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """`python -m grader release` in a copy of the course folder (its own course, prepared afresh)."""
    root = course_copy(tmp_path_factory.mktemp("released"))
    with layout.using_course(root):
        return root, release.release()


def test_release_is_deterministic(generated, released, tmp_path):
    """Two courses prepared apart give the same notebooks; the same files give the same zip, byte for byte."""
    _, first = generated
    root, done = released
    assert {nb: path.read_text() for nb, path in zip(NOTEBOOKS, done.notebooks)} == first
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    release.write_zip(a, release.bundle_files(first), "seqmodels-course")
    release.write_zip(b, release.bundle_files(first), "seqmodels-course")
    assert a.read_bytes() == b.read_bytes()
    with layout.using_course(root):  # the copy's bundle is the repository's: nothing depends on where it lies
        mine = {nb: t for nb, t in first.items() if nb.assignment == ASSIGNMENTS[0]}
        release.write_zip(b, release.bundle_files(mine), release.bundle_folder(ASSIGNMENTS[:1]))
    assert (root / "dist" / f"{ASSIGNMENTS[0]}.zip").read_bytes() == b.read_bytes()


def test_each_released_folder_holds_what_its_bundle_holds():
    """notebooks/<assignment>/ is the released notebook and the assignment folder's other files, byte for byte, and
    nothing else (what Jupyter leaves there aside)."""
    for assignment in ASSIGNMENTS:
        folder = layout.course().notebooks / assignment
        have = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
                if p.is_file() and not any(part in layout.IGNORED_NAMES for part in p.parts)}
        source = layout.course().solutions / assignment
        want = {p.relative_to(source).as_posix(): p.read_bytes() for p in layout.student_files(assignment)}
        want |= {nb.filename: nb.released.read_bytes() for nb in layout.notebooks_of(assignment)}
        assert have == want, f"run `python -m grader release --assignment {assignment}`"


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
    assert {"README.md", "requirements.txt", "constraints.txt", "environment.yml", "start_lab.py",
            "jupyter_config/labconfig/page_config.json", *layout.LICENSE_FILES} <= names
    assert {f"notebooks/{nb.assignment}/{nb.filename}" for nb in NOTEBOOKS} <= names
    assert not any(n.startswith(("solutions/", "grader/", "tests/")) or "answers" in n for n in names)
    assert [n for n in names if n.endswith(".py")] == ["start_lab.py"]
    requirements = bundle["requirements.txt"].decode()
    assert "torch==2.13.0" in requirements and "-c constraints.txt" in requirements
    assert "bubblewrap" not in requirements and "dask" not in requirements


def test_bundle_leaks_nothing(bundle, bundles):
    """No notebook's solution or hidden-test line anywhere in any bundle (unless another notebook shows it openly)."""
    sources = [nbformat.read(nb.source, as_version=4) for nb in NOTEBOOKS]
    shown = frozenset().union(*(public_lines(s) for s in sources))
    all_secrets = frozenset().union(*(secrets_of(s, shown).all for s in sources))
    assert all_secrets
    distinct = {data: name for files in [bundle, *bundles.values()] for name, data in files.items()}  # each text once
    for data, name in distinct.items():
        assert leaks(text_of(name, data), all_secrets) == [], name


def test_written_bundle_matches(tmp_path, bundle):
    path = tmp_path / "course.zip"
    release.write_zip(path, bundle, "seqmodels-course")
    with zipfile.ZipFile(path) as zf:
        assert sorted(n.split("/", 1)[1] for n in zf.namelist()) == sorted(bundle)


def test_release_writes_the_notebooks_and_one_bundle_per_assignment(released):
    """The same notebooks as committed, where the layout says, and each assignment's bundle beside them."""
    root, done = released
    assert [p.relative_to(root / "notebooks") for p in done.notebooks] == [Path(nb.assignment) / nb.filename for nb in NOTEBOOKS]
    for nb, path in zip(NOTEBOOKS, done.notebooks):
        assert path.read_text() == (REPO / "notebooks" / nb.assignment / nb.filename).read_text()
    assert sorted(p.name for p in (root / "dist").iterdir()) == sorted(f"{a}.zip" for a in ASSIGNMENTS)
    for nb in NOTEBOOKS:
        with zipfile.ZipFile(root / "dist" / f"{nb.assignment}.zip") as zf:
            notebooks = [n for n in zf.namelist() if n.endswith(".ipynb")]
        assert notebooks == [f"seqmodels-{nb.assignment}/notebooks/{nb.assignment}/{nb.filename}"]


# What a notebook imports besides torch and matplotlib, pinned in its bundle's requirements.
DATA_LIBRARIES = {"05_real_text": ["conllu==6.0.0", "datasets==5.2.0"]}


def test_each_assignment_bundle_holds_its_own_notebook_and_requirements(bundles):
    lock = release.read_lock(layout.course().lock)
    for assignment, files in bundles.items():
        assert [n for n in files if n.startswith("notebooks/") and n.endswith(".ipynb")] == \
            [f"notebooks/{nb.assignment}/{nb.filename}" for nb in layout.notebooks_of(assignment)]
        pins = [line for line in files["requirements.txt"].decode().splitlines() if line and not line.startswith(("#", "-c"))]
        # the lab tools, then what the notebook imports, each exactly as locked
        assert pins[:len(release.STUDENT_TOOLS)] == [lock[n] for n in release.STUDENT_TOOLS]
        imported = ["matplotlib==3.11.2", "torch==2.13.0"] + DATA_LIBRARIES.get(assignment, [])
        assert sorted(pins[len(release.STUDENT_TOOLS):]) == sorted(imported), assignment
        assert files["constraints.txt"] == bundles[ASSIGNMENTS[0]]["constraints.txt"]
        readme = files["README.md"].decode()
        assert all(f"`{nb.filename}`" in readme or f"nbgrader validate {nb.filename}" in readme
                   for nb in layout.notebooks_of(assignment))
        assert "${" not in readme  # every placeholder filled
        assert not any(later in readme for later in ASSIGNMENTS[ASSIGNMENTS.index(assignment) + 1:])


def test_later_notebooks_that_give_earlier_answers_are_found(generated):
    """Notebook 4 gives notebook 2's encoder-decoder as working code (its baseline), notebook 5 notebook 3's tagger;
    nothing else gives answers."""
    _, texts = generated
    given = release.given_answers(texts)
    assert [(g.later.assignment, g.earlier.assignment, g.exercises) for g in given] == \
        [("04_attention", "02_seq2seq", ("Seq2Seq", "sequence_loss", "greedy_decode")),
         ("05_real_text", "03_bilstm_tagger", ("BiLSTMTagger",))]
    readme = release.bundle_files({nb: t for nb, t in texts.items() if nb.assignment == "04_attention"})["README.md"]
    assert "gives assignment `02_seq2seq`'s answers (`Seq2Seq`, `sequence_loss`, `greedy_decode`)" in readme.decode()


def test_the_given_answers_check_can_fail(generated):
    """Its control: notebook 3 with notebook 1's `lstm_cell` pasted in is found to give it; without, it is not."""
    _, texts = generated
    first, third = NOTEBOOKS[0], NOTEBOOKS[2]
    source = nbformat.read(first.source, as_version=4)
    [(names, lines)] = [(n, l) for n, l in release.solution_lines(source) if "lstm_cell" in n]
    planted = nbformat.reads(texts[third], as_version=4)
    planted.cells.append(nbformat.v4.new_code_cell("\n".join(sorted(lines))))
    assert release.given_answers({third: texts[third]}) == []
    [found] = release.given_answers({third: nbformat.writes(planted)})
    assert (found.earlier, found.exercises) == (first, ("lstm_cell",))


@pytest.fixture
def course_folder(tmp_path, monkeypatch):
    """A copy of the course folder, the working directory, whose release is the repository's committed one (in sync,
    tested above) without running nbgrader again."""
    root = course_copy(tmp_path / "course")
    monkeypatch.chdir(root)
    monkeypatch.setattr(release, "prepare_course", lambda where, notebooks: None)
    monkeypatch.setattr(release, "released_text", lambda course, nb: (REPO / "notebooks" / nb.assignment / nb.filename).read_text())
    return root


def test_release_of_one_assignment_builds_that_bundle_only(course_folder, capsys):
    """`release --assignment 02_seq2seq`: that notebook, that bundle, nothing else written."""
    assert cli.main(["release", "--assignment", "02_seq2seq"]) == 0
    assert sorted(p.name for p in (course_folder / "dist").iterdir()) == ["02_seq2seq.zip"]
    assert sorted(p.relative_to(course_folder).as_posix() for p in (course_folder / "notebooks").rglob("*")
                  if p.is_file()) == ["notebooks/02_seq2seq/seq2seq.ipynb"]
    with zipfile.ZipFile(course_folder / "dist" / "02_seq2seq.zip") as zf:
        assert [n for n in zf.namelist() if n.endswith(".ipynb")] == ["seqmodels-02_seq2seq/notebooks/02_seq2seq/seq2seq.ipynb"]
    assert capsys.readouterr().out.splitlines() == ["released notebooks/02_seq2seq/seq2seq.ipynb", "bundle dist/02_seq2seq.zip"]
    assert cli.main(["release", "--assignment", "99_nope"]) == 2
    assert "unknown assignment '99_nope'; the course has: 01_packed_sequences" in capsys.readouterr().err


def test_whole_course_bundle_only_on_request_and_says_what_it_gives(course_folder, capsys):
    assert cli.main(["release"]) == 0
    assert sorted(p.name for p in (course_folder / "dist").iterdir()) == sorted(f"{a}.zip" for a in ASSIGNMENTS)
    note = ("note: 04_attention/attention gives 02_seq2seq's answers (Seq2Seq, sequence_loss, greedy_decode) as code: "
            "hand it out after 02_seq2seq is due")
    out = capsys.readouterr().out.splitlines()
    assert out[out.index("bundle dist/04_attention.zip") + 1].strip() == note
    assert cli.main(["release", "--whole-course"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-3:] == [f"bundle dist/course.zip ({', '.join(ASSIGNMENTS)})", "  " + note,
                        "  note: 05_real_text/pos_tagging gives 03_bilstm_tagger's answers (BiLSTMTagger) as code: "
                        "hand it out after 03_bilstm_tagger is due"]
    with zipfile.ZipFile(course_folder / "dist" / "course.zip") as zf:
        assert "gives assignment `02_seq2seq`'s answers" in zf.read("seqmodels-course/README.md").decode()


def test_the_course_comes_from_the_working_directory_or_course_dir(course_folder, tmp_path, monkeypatch, capsys):
    """Never from where the package lies: elsewhere, the commands say how to name the course folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.main(["release"]) == 2
    assert "is not a course folder (it has no solutions/)" in capsys.readouterr().err and not (elsewhere / "dist").exists()
    assert cli.main(["release", "--course", str(course_folder), "--assignment", "01_packed_sequences"]) == 0
    assert (course_folder / "dist" / "01_packed_sequences.zip").exists()
    assert cli.main(["--course", str(course_folder), "release", "--assignment", "03_bilstm_tagger"]) == 0
    assert (course_folder / "dist" / "03_bilstm_tagger.zip").exists() and not (elsewhere / "dist").exists()
    assert layout.course().root == REPO  # a command's course folder lasts as long as the command


def test_an_assignment_folder_travels_with_its_data_but_not_its_answers(tmp_path, monkeypatch):
    """Every file of the assignment folder goes into notebooks/ and the bundle, data and its license included;
    answers.py (the catalogue) and what tools leave behind never do."""
    root = course_copy(tmp_path / "course", ["01_packed_sequences"])
    monkeypatch.setattr(release, "prepare_course", lambda where, notebooks: None)
    monkeypatch.setattr(release, "released_text", lambda course, n: (REPO / "notebooks" / n.assignment / n.filename).read_text())
    folder = root / "solutions" / "01_packed_sequences"
    (folder / "data").mkdir()
    (folder / "data" / "words.conllu").write_bytes(b"1\tHello\thello\tINTJ\n")
    (folder / "data" / "LICENSE.txt").write_text("a third party's license\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "answers.cpython-311.pyc").write_bytes(b"\0")
    (folder / ".ipynb_checkpoints").mkdir()
    nb = NOTEBOOKS[0]
    with layout.using_course(root):
        release.release()
    assert sorted(p.relative_to(root / "notebooks").as_posix() for p in (root / "notebooks").rglob("*") if p.is_file()) \
        == ["01_packed_sequences/data/LICENSE.txt", "01_packed_sequences/data/words.conllu", f"01_packed_sequences/{nb.filename}"]
    with zipfile.ZipFile(root / "dist" / "01_packed_sequences.zip") as zf:
        names = [n.split("/", 1)[1] for n in zf.namelist()]
        assert zf.read("seqmodels-01_packed_sequences/notebooks/01_packed_sequences/data/words.conllu").startswith(b"1\tHello")
    assert "notebooks/01_packed_sequences/data/LICENSE.txt" in names
    assert not any("answers" in n or "__pycache__" in n or "checkpoints" in n for n in names)


def test_requirements_follow_what_a_notebook_imports(tmp_path):
    """A notebook's imports decide its requirements: the standard library and the assignment's own modules are not
    packages; a module that nothing installed provides is an error that says what to do."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os, math\nimport torch.nn as nn\nfrom matplotlib import pyplot\n%matplotlib inline"),
        nbformat.v4.new_code_cell("from . import x\nimport helpers"),
    ])
    assert release.imported_modules(nb) == {"os", "math", "torch", "matplotlib", "helpers"}
    root = course_copy(tmp_path / "course", ["01_packed_sequences"])
    first = NOTEBOOKS[0]
    nbformat.write(nb, root / "solutions" / first.assignment / first.filename)
    with layout.using_course(root):
        with pytest.raises(GraderError, match="imports helpers, which is not installed here"):
            release.imported_distributions([first])
        (root / "solutions" / first.assignment / "helpers.py").write_text("X = 1\n")
        assert release.imported_distributions([first]) == ["matplotlib", "torch"]


def test_a_course_folder_without_its_lock_or_licenses_says_so(tmp_path):
    root = course_copy(tmp_path / "course", ["01_packed_sequences"])
    (root / layout.LOCK_FILE).unlink()
    with layout.using_course(root), pytest.raises(GraderError, match="no lock file .*make lock"):
        release.release()


def test_the_cache_is_private(tmp_path):
    """The cache holds every hidden test: 0700, also when it existed with looser permissions."""
    course = layout.Course(tmp_path / "course")
    course.cache.mkdir(parents=True, mode=0o755)
    assert stat.S_IMODE(course.private_cache().stat().st_mode) == 0o700


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
def test_rubrics_and_model_answers_are_never_released(nb, bundle, bundles):
    """The rubric file stays with the solutions: its lines, and the model answers, are in no released notebook,
    no file of any bundle; the released answer cell is nbgrader's stub."""
    from grader.course.written import read_rubrics

    source = nbformat.read(nb.source, as_version=4)
    rubrics = read_rubrics(nb.rubrics)
    models = {line.strip() for q in cells.facts_of(source).written for line in q.model_answer.splitlines()}
    secret = secrets_of(source, rubrics=rubrics).rubric | (secrets_of(source).solution & models)
    assert secret - models and secret & models
    for files in [bundle, *bundles.values()]:
        for name, data in files.items():
            assert leaks(text_of(name, data), secret) == [], name
        assert not any(name.endswith("rubrics.toml") for name in files)
    released = nbformat.read(nb.released, as_version=4)
    assert [c.source for c in released.cells if cells.is_written(c)] == \
        ["YOUR ANSWER HERE"] * len([c for c in source.cells if cells.is_written(c)])


def test_every_notebook_names_a_validate_command_from_the_bundle():
    """The "before you submit" command exists where students are (nbgrader, from requirements.txt) and names the notebook."""
    lock = release.read_lock(layout.course().lock)
    for nb in NOTEBOOKS:
        assert re.search(r"^nbgrader==", release.student_requirements([nb], lock), re.M)
        released = nbformat.read(nb.released, as_version=4)
        command, filename = before_you_submit(released)
        assert filename == nb.filename, f"{nb.key} tells students to validate {filename}"
        assert "python -m grader" not in notebook_text(released), f"{nb.key} names the instructor's grader"
        readme = release.student_readme({nb: nb.released.read_text()}, [])
        assert command in readme
