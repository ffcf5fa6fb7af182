"""Building submission folders and reading results, for the tests."""

from __future__ import annotations

import hashlib
import os
import re
import socket
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from grader import results
from grader.course import answers, cells
from grader.course.layout import Notebook
from grader.results import Row


def write_submission(root: Path, student: str, nb: Notebook, content) -> Path:
    """Put `content` (a notebook, str or bytes) where an LMS export would: root/student/assignment/file."""
    path = root / student / nb.assignment / nb.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        nbformat.write(content, path)
    return path


def reference_submission(nb: Notebook, **answers_by_cell: str):
    """The released notebook filled with the reference solution (or the given answers)."""
    return answers.submission(nb, answers_by_cell or None)


def with_cell(nb, source: str, after: str | None = None):
    """`nb` with a code cell added after the cell `after` (a grade id), or at the end."""
    nb = nbformat.from_dict(nb)
    at = next((i + 1 for i, c in enumerate(nb.cells) if cells.grade_id(c) == after), len(nb.cells))
    nb.cells.insert(at, new_code_cell(source))
    return nb


def read_grades_csv(out: Path) -> dict[tuple[str, str], Row]:
    """OUT/grades.csv as {(student, assignment/notebook): row}, read by results as any reader would."""
    return {(r.student_id, f"{r.assignment}/{r.notebook}"): r for r in results.read_csv(out)}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_digest(root: Path) -> str:
    """A hash of every path, mode and byte under root: equal digests, untouched tree."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        h.update(str(path.relative_to(root)).encode())
        h.update(oct(path.lstat().st_mode).encode())
        if path.is_file() and not path.is_symlink():
            h.update(path.read_bytes())
    return h.hexdigest()


def require(condition: bool, reason: str) -> None:
    """Skip when `condition` fails, except under CI, where a missing prerequisite is a failure."""
    import os

    import pytest

    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"CI requires this test to run: {reason}")
        pytest.skip(reason)


# What a notebook's introduction tells students to run, in the notebook's folder, before they submit.
VALIDATE_COMMAND = re.compile(r"`(nbgrader validate ([\w.-]+\.ipynb))`")


def before_you_submit(nb) -> tuple[str, str]:
    """The validate command a notebook's text names, and the file it names."""
    found = [m.groups() for cell in nb.cells if cell.cell_type == "markdown"
             for m in VALIDATE_COMMAND.finditer(cell.source)]
    assert len(found) == 1, f"expected one `nbgrader validate <file>` in the notebook's text, found {found}"
    return found[0]


def course_copy(dest: Path, assignments: list[str] | None = None, demo: bool = False) -> Path:
    """A course folder at `dest` as an instructor keeps one: the sources of `assignments` (all when None), the
    licenses and the lock file; the demo class too when asked. Nothing of the grader's own code."""
    import shutil

    from grader.course import layout

    repo = layout.course().root
    for folder in sorted((repo / "solutions").iterdir()):
        if folder.is_dir() and (assignments is None or folder.name in assignments):
            shutil.copytree(folder, dest / "solutions" / folder.name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in (*layout.LICENSE_FILES, layout.LOCK_FILE):
        shutil.copy2(repo / name, dest / name)
    if demo:
        shutil.copytree(repo / "demo", dest / "demo", ignore=shutil.ignore_patterns("out"))
    return dest


def descendants(pid: int) -> list[int]:
    """Every process under `pid`, children first."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        try:
            children = [int(c) for t in os.listdir(f"/proc/{current}/task")
                        for c in Path(f"/proc/{current}/task/{t}/children").read_text().split()]
        except OSError:
            continue
        found += children
        stack += children
    return found


def student_processes(pid: int) -> list[int]:
    """The processes under `pid` that run as a kernel's leased uid, the trusted kernel's excepted: a student's
    kernel and whatever it started."""
    from grader.kernel.uids import FIRST_UID, UID_COUNT

    found = []
    for child in descendants(pid):
        try:
            uid = os.stat(f"/proc/{child}").st_uid
            trusted = b"/trusted/" in Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if FIRST_UID <= uid < FIRST_UID + UID_COUNT and not trusted:
            found.append(child)
    return found


def wait_until(condition, timeout: float, what: str, every: float = 0.2):
    """Poll `condition` until it returns something true (returned), or fail after `timeout` seconds saying `what`."""
    import time

    import pytest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"gave up after {timeout:g} s waiting for {what}")


# What a kernel does with the assignment's data folder: reads it, tries to change a file in it and to add one.
DATA_USE = '''
print("read:", open("data/words.txt").read())
for what, path, how in [("write", "data/words.txt", "a"), ("create", "data/new.txt", "w")]:
    try:
        with open(path, how) as f:
            f.write(" and more")
        print(f"{what}: allowed")
    except OSError as exc:
        print(f"{what}: refused ({exc.strerror})")
'''
