"""The student bundle works on its own, as its README says: a fresh venv from its requirements.txt,
`python start_lab.py` (as root too), and the "before you submit" command that each notebook names."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import nbformat
import pytest
from helpers import before_you_submit, free_port, require

from grader.course import answers, layout, release

pytestmark = pytest.mark.slow

NOTEBOOKS = layout.available()
SUCCESS = "Success! Your notebook passes all the tests."


def clean_env(home: Path, venv: Path | None = None) -> dict[str, str]:
    """This process's environment without its venv, Jupyter or nbgrader settings; `venv` activated if given."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "NBGRADER", "PYTHON", "VIRTUAL_ENV", "IPYTHON"))}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(layout.course().root))]
    if venv is not None:
        path.insert(0, str(venv / "bin"))
        env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join(path)
    env["HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The student bundle unzipped, a fresh venv made from its requirements.txt, and a home for both."""
    root = tmp_path_factory.mktemp("bundle")
    zipped = root / "student.zip"
    release.write_zip(zipped, release.bundle_files({nb: nb.released.read_text() for nb in NOTEBOOKS}))
    with zipfile.ZipFile(zipped) as zf:
        zf.extractall(root)
    course, home, venv = root / "seqmodels-course", root / "home", root / "venv"
    home.mkdir()
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, env=clean_env(home))
    start = time.monotonic()
    # pip keeps the user's home, for its download cache (and skips byte-compiling: Python does that on import);
    # everything after runs with an empty home.
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    done = subprocess.run([*pip, "-r", "requirements.txt"], cwd=course, env=clean_env(Path.home(), venv),
                          capture_output=True, text=True, timeout=900)
    require(done.returncode == 0, "pip could not install the bundle's requirements.txt (no package index?): "
                                  + (done.stderr.strip().splitlines() or ["no output"])[-1])
    print(f"pip install -r requirements.txt: {time.monotonic() - start:.0f} s")
    return course, home, venv


def test_fresh_venv_has_the_pinned_torch(bundle):
    course, home, venv = bundle
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
    """`python start_lab.py` starts JupyterLab on notebooks/, also as root (where Jupyter needs --allow-root);
    stopping that process stops the server (no JupyterLab left running on its own)."""
    course, home, venv = bundle
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
        assert sorted(item["name"] for item in listing["content"]) == sorted({nb.assignment for nb in NOTEBOOKS})
        lab.terminate()
        lab.wait(timeout=30)
        assert contents(port) is None, "JupyterLab still serves after start_lab.py was stopped"
    finally:  # nothing of it outlives the test, whatever happened
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(lab.pid, signal.SIGKILL)
        lab.wait()


@pytest.mark.parametrize("completed", [True, False], ids=["completed", "untouched"])
def test_the_named_command_validates_a_notebook(bundle, completed):
    """A student runs the notebook's own command in its folder: a completed notebook passes, the untouched one fails."""
    course, home, venv = bundle
    nb = NOTEBOOKS[0]
    folder = course / "notebooks" / nb.assignment
    released = nbformat.read(folder / nb.filename, as_version=4)
    command, filename = before_you_submit(released)
    work = home / ("completed" if completed else "untouched")
    shutil.copytree(folder, work)
    nbformat.write(answers.submission(nb, released=released) if completed else released, work / filename)
    start = time.monotonic()
    done = subprocess.run(command.split(), cwd=work, env=clean_env(home, venv), capture_output=True, text=True,
                          timeout=300)
    print(f"{command} ({'completed' if completed else 'untouched'}): {time.monotonic() - start:.0f} s")
    if completed:
        assert done.returncode == 0 and SUCCESS in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    else:
        # nbgrader validate exits 0 either way: what it prints is the answer.
        assert "VALIDATION FAILED" in done.stdout and SUCCESS not in done.stdout, done.stdout[-3000:]
