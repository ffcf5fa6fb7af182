"""The student bundles work on their own, as their README says, and the grader works as a wheel.

The course is released with the real command (`release --assignment 02_seq2seq`, then `release`), each
assignment's bundle is unzipped on its own, and one fresh venv takes each bundle's requirements.txt in
course order: `python start_lab.py` (as root too) and the "before you submit" command that each notebook
names work from every bundle. Then the grader's wheel, built from the tree, goes into the same venv (a
second full install would cost minutes) and runs `release`, `autograde` and `demo` in a course folder
of its own, without the source tree."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from helpers import before_you_submit, course_copy, free_port, read_grades_csv, require, write_submission

from grader import cli
from grader.course import answers, layout
from grader.course.hidden import html_text

pytestmark = pytest.mark.slow

REPO = layout.course().root
NOTEBOOKS = layout.available()
ASSIGNMENTS = list(dict.fromkeys(nb.assignment for nb in NOTEBOOKS))
SUCCESS = "Success! Your notebook passes all the tests."
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def clean_env(home: Path, venv: Path | None = None) -> dict[str, str]:
    """This process's environment without its venv, Jupyter or nbgrader settings; `venv` activated if given."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "NBGRADER", "PYTHON", "VIRTUAL_ENV", "IPYTHON"))}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(REPO))]
    if venv is not None:
        path.insert(0, str(venv / "bin"))
        env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join(path)
    env["HOME"] = str(home)
    return env


def pip_install(venv: Path, *args: str, cwd: Path) -> None:
    """pip in `venv`, with the user's home for its download cache (and no byte-compiling: Python does that on import)."""
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    done = subprocess.run([*pip, *args], cwd=cwd, env=clean_env(Path.home(), venv), capture_output=True, text=True,
                          timeout=900)
    require(done.returncode == 0, f"pip install {' '.join(args)} failed (no package index?): "
                                  + (done.stderr.strip().splitlines() or ["no output"])[-1])


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """A course folder released as an instructor does: `release --assignment 02_seq2seq` (its bundle kept aside as
    `02_seq2seq.first.zip`), then `release`, every assignment's bundle."""
    root = course_copy(tmp_path_factory.mktemp("course") / "course")
    assert cli.main(["--course", str(root), "release", "--assignment", "02_seq2seq"]) == 0
    shutil.move(root / "dist" / "02_seq2seq.zip", root / "02_seq2seq.first.zip")
    assert not list((root / "dist").iterdir())
    assert cli.main(["--course", str(root), "release"]) == 0
    return root


@pytest.fixture(scope="module")
def bundle(released, tmp_path_factory) -> tuple[dict[str, Path], Path, Path]:
    """Each assignment's bundle unzipped in a folder of its own, and one fresh venv that took the first bundle's
    requirements.txt alone (so its own list must do for it), then the others'; a home for both."""
    root = tmp_path_factory.mktemp("bundles")
    folders = {}
    for assignment in ASSIGNMENTS:
        with zipfile.ZipFile(released / "dist" / f"{assignment}.zip") as zf:
            zf.extractall(root / assignment)
        [folders[assignment]] = (root / assignment).iterdir()
    home, venv = root / "home", root / "venv"
    home.mkdir()
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, env=clean_env(home))
    first, *later = ASSIGNMENTS
    start = time.monotonic()
    pip_install(venv, "-r", "requirements.txt", cwd=folders[first])
    print(f"{first}: pip install -r requirements.txt: {time.monotonic() - start:.0f} s")
    start = time.monotonic()  # the others at once: each pip run costs seconds even when nothing is new
    pip_install(venv, *(arg for a in later for arg in ("-r", str(folders[a] / "requirements.txt"))), cwd=root)
    print(f"{', '.join(later)}: pip install -r .../requirements.txt: {time.monotonic() - start:.0f} s")
    return folders, home, venv


def test_release_of_one_assignment_is_that_notebook_alone(released):
    """`release --assignment 02_seq2seq` gave that notebook's bundle only, the same bytes `release` writes for it."""
    with zipfile.ZipFile(released / "02_seq2seq.first.zip") as zf:
        names = zf.namelist()
    assert [n for n in names if n.endswith(".ipynb")] == ["seqmodels-02_seq2seq/notebooks/02_seq2seq/seq2seq.ipynb"]
    assert not any("01_packed" in n or "03_bilstm" in n or "04_attention" in n for n in names)
    assert (released / "02_seq2seq.first.zip").read_bytes() == (released / "dist" / "02_seq2seq.zip").read_bytes()


def test_fresh_venv_has_the_pinned_torch(bundle):
    _, home, venv = bundle
    done = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch; print(torch.__version__)"],
                          env=clean_env(home, venv), capture_output=True, text=True, check=True)
    assert done.stdout.strip().split("+")[0] == "2.13.0", done.stdout


def contents(port: int) -> dict | None:
    """The server's listing of its root folder, or None while nothing answers on `port`."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=5) as answer:
            return json.load(answer)
    except OSError:
        return None


def test_start_lab_serves_the_notebooks_and_stops_with_it(bundle):
    """`python start_lab.py` starts JupyterLab on the bundle's notebooks/, also as root (where Jupyter needs
    --allow-root); stopping that process stops the server (no JupyterLab left running on its own)."""
    folders, home, venv = bundle
    course = folders["02_seq2seq"]
    port = free_port()
    lab = subprocess.Popen([str(venv / "bin" / "python"), "start_lab.py", "--no-browser", f"--port={port}",
                            "--ServerApp.ip=127.0.0.1", "--ServerApp.token="],
                           cwd=course, env=clean_env(home, venv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, start_new_session=True)
    try:
        listing, deadline = None, time.monotonic() + 90
        while listing is None and time.monotonic() < deadline and lab.poll() is None:
            listing = contents(port)
            if listing is None:
                time.sleep(1)
        if listing is None:
            lab.terminate()
            pytest.fail(f"JupyterLab did not answer: {lab.communicate(timeout=30)[0][-2000:]}")
        assert [item["name"] for item in listing["content"]] == ["02_seq2seq"]
        lab.terminate()
        lab.wait(timeout=30)
        assert contents(port) is None, "JupyterLab still serves after start_lab.py was stopped"
    finally:  # nothing of it outlives the test, whatever happened
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(lab.pid, signal.SIGKILL)
        lab.wait()


def validate_in_bundle(folder: Path, nb: layout.Notebook, home: Path, venv: Path, completed: bool):
    """A student runs the notebook's own command in its folder, on the completed notebook or the untouched one."""
    released = nbformat.read(folder / "notebooks" / nb.assignment / nb.filename, as_version=4)
    command, filename = before_you_submit(released)
    work = home / f"{nb.assignment}-{'completed' if completed else 'untouched'}"
    shutil.copytree(folder / "notebooks" / nb.assignment, work)
    nbformat.write(answers.submission(nb, released=released) if completed else released, work / filename)
    start = time.monotonic()
    done = subprocess.run(command.split(), cwd=work, env=clean_env(home, venv), capture_output=True, text=True,
                          timeout=300)
    print(f"{nb.assignment}: {command} ({'completed' if completed else 'untouched'}): {time.monotonic() - start:.0f} s")
    return done


def test_every_bundle_validates_its_notebooks(bundle):
    """In every bundle, the named command passes the completed notebook; the untouched one fails (its control).
    Two at a time: each is one kernel."""
    folders, home, venv = bundle
    runs = [(nb, True) for nb in NOTEBOOKS] + [(layout.notebooks_of("02_seq2seq")[0], False)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda run: validate_in_bundle(folders[run[0].assignment], run[0], home, venv, run[1]),
                                runs))
    for (nb, completed), done in zip(runs, results):
        if completed:
            assert done.returncode == 0 and SUCCESS in done.stdout, (nb.key, done.stdout[-3000:] + done.stderr[-3000:])
        else:
            # nbgrader validate exits 0 either way: what it prints is the answer.
            assert "VALIDATION FAILED" in done.stdout and SUCCESS not in done.stdout, done.stdout[-3000:]


# ---- the grader as a wheel, in the same venv --------------------------------------------------------------

# A course folder with one assignment, so that what the wheel runs is quick: the one where the demo's broken
# submission (cat's) is not JSON, rather than a loop that runs into the time limit.
WHEEL_COURSE = ["03_bilstm_tagger"]


@pytest.fixture(scope="module")
def wheel(bundle, tmp_path_factory) -> tuple[Path, Path, Path, dict[str, str]]:
    """The wheel `python -m build` makes from the tree (the sdist, then the wheel from it), installed, not editable,
    into the bundles' venv; a course folder of one assignment and the demo, outside the tree. The build uses the
    locked setuptools of this environment (`--no-isolation`) rather than fetch one for each step."""
    _, home, venv = bundle
    root = tmp_path_factory.mktemp("wheel")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(root / "dist"), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    require(done.returncode == 0, f"python -m build failed (no package index?): {done.stdout[-2000:]}{done.stderr[-2000:]}")
    [built] = (root / "dist").glob("*.whl")
    print(f"python -m build: {time.monotonic() - start:.0f} s")
    pip_install(venv, "-c", str(REPO / layout.LOCK_FILE), str(built), cwd=root)
    course = course_copy(root / "course", WHEEL_COURSE, demo=True)
    return built, course, venv, clean_env(home, venv)


def grader(wheel, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m grader ARGS` with the wheel's grader, in its course folder."""
    _, course, venv, env = wheel
    return subprocess.run([str(venv / "bin" / "python"), "-m", "grader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_wheel_holds_the_grader_and_its_student_files_only(wheel):
    built, _, _, _ = wheel
    with zipfile.ZipFile(built) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert {"grader/course/student/README.md", "grader/course/student/start_lab.py",
            "grader/course/student/jupyter/jupyter_server_config.json",
            "grader/course/student/jupyter/labconfig/page_config.json"} <= set(names)
    assert {n.split("/")[0] for n in names} == {"grader", f"seqmodels_course-{VERSION}.dist-info"}
    assert {n.rsplit("/", 1)[1] for n in names if "/licenses/" in n} == set(layout.LICENSE_FILES)
    assert "Provides-Extra: cluster" in metadata and 'Requires-Dist: dask==2026.8.0; extra == "cluster"' in metadata
    assert f"Version: {VERSION}" in metadata


def test_the_wheel_runs_from_the_course_folder_not_from_the_tree(wheel):
    """Installed, not editable: the package lies in the venv, and its version is pyproject's."""
    _, course, venv, env = wheel
    done = subprocess.run([str(venv / "bin" / "python"), "-c", "import grader; print(grader.__file__)"], cwd=course,
                          env=env, capture_output=True, text=True, check=True)
    assert Path(done.stdout.strip()).is_relative_to(venv)
    done = grader(wheel, "--version")
    assert done.stdout.strip() == f"python -m grader {VERSION}", done.stderr


@pytest.fixture(scope="module")
def wheel_release(wheel) -> subprocess.CompletedProcess:
    """`python -m grader release` in the wheel's course folder."""
    return grader(wheel, "release")


def test_the_wheel_releases(wheel, wheel_release, released):
    """`release` in the course folder: the committed notebook, and the same bundle, byte for byte, as the tree's."""
    _, course, _, _ = wheel
    assert wheel_release.returncode == 0, wheel_release.stdout + wheel_release.stderr
    for nb in layout.notebooks_of(WHEEL_COURSE[0]):
        assert (course / "notebooks" / nb.assignment / nb.filename).read_text() == nb.released.read_text()
    assert (course / "dist" / f"{WHEEL_COURSE[0]}.zip").read_bytes() == \
        (released / "dist" / f"{WHEEL_COURSE[0]}.zip").read_bytes()


def test_the_wheel_autogrades_a_submission(wheel, wheel_release, tmp_path):
    """One submission graded in full, the report's run settings name the version; the cache stays private; without
    the cluster extra, --scheduler says how to get it."""
    _, course, _, _ = wheel
    assert wheel_release.returncode == 0, "release failed (see test_the_wheel_releases)"
    nb = layout.notebooks_of(WHEEL_COURSE[0])[0]
    write_submission(tmp_path / "subs", "ada", nb, answers.submission(nb))
    done = grader(wheel, "autograde", str(tmp_path / "subs"), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    row = read_grades_csv(tmp_path / "out")[("ada", nb.key)]
    assert row.status == "graded" and row.score + row.to_grade == row.max_score > row.score > 0, row  # written: to grade
    settings = html_text((tmp_path / "out" / "report.html").read_text())
    assert re.search(r"grader version\s*" + re.escape(VERSION) + r"(?![\d.])", settings), "the run settings name the version"
    assert stat.S_IMODE((course / ".cache").stat().st_mode) == 0o700
    done = grader(wheel, "autograde", str(tmp_path / "subs"), "--out", str(tmp_path / "cluster"), "--scheduler", "local")
    assert done.returncode == 2 and "pip install -c constraints.txt 'seqmodels-course[cluster]'" in done.stderr, done.stderr
    assert not (tmp_path / "cluster").exists()


def test_the_wheel_runs_the_demo(wheel, wheel_release):
    """`demo`: the LMS round trip on the sample class, as `make demo` runs it."""
    _, course, _, _ = wheel
    assert wheel_release.returncode == 0, "release failed (see test_the_wheel_releases)"
    done = grader(wheel, "demo")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    key = layout.notebooks_of(WHEEL_COURSE[0])[0].key
    grades = {student: (row.status, row.score, row.max_score)
              for (student, notebook), row in read_grades_csv(course / "demo" / "out").items() if notebook == key}
    assert grades["ada"][0] == "graded" and grades["ada"][1] == grades["ada"][2] > 0, grades
    assert grades["ben"][0] == "graded" and grades["ben"][1] < grades["ben"][2], grades  # a catalogued wrong answer
    assert grades["cat"][0] == "invalid_notebook", grades
    assert (course / "demo" / "out" / "canvas_import.csv").exists()
    assert f"$ python -m grader collect demo/canvas/{WHEEL_COURSE[0]}.zip" in done.stdout
