"""Stock nbgrader, as it ships: the yardstick the tests and the benchmark compare the grader with.

One course directory, the `nbgrader` command line, every student graded serially in one gradebook,
the kernel running unsandboxed inside the course directory, feedback rendered as is.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from grader.course.layout import DATA_FOLDER, Notebook
from grader.course.prepared import ensure_tools_on_path, new_course


def nbgrader(course: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run the `nbgrader` command line in `course`, as an instructor would."""
    ensure_tools_on_path()
    cmd = [str(Path(sys.executable).parent / "nbgrader"), *args]
    return subprocess.run(cmd, cwd=course, capture_output=True, text=True, timeout=timeout)


def stock_course(workdir: Path, notebooks: list[Notebook], submissions: Path | None = None) -> Path:
    """A stock course: sources generated, and each student's notebooks copied into `submitted/`. An assignment's
    data folder goes where stock nbgrader expects it, beside the source notebook: autograde copies it in beside
    each submission."""
    course = workdir / "stock-course"
    assignments = new_course(course, notebooks)
    for notebook in notebooks:
        beside = course / "source" / notebook.assignment / DATA_FOLDER
        if notebook.data is not None and not beside.exists():
            shutil.copytree(notebook.data, beside)
    for assignment in assignments:
        done = nbgrader(course, "generate_assignment", assignment, "--force")
        if done.returncode != 0:
            raise RuntimeError(f"stock generate_assignment failed:\n{done.stderr}")
    if submissions is not None:
        for notebook in notebooks:
            for path in sorted(submissions.glob(f"*/{notebook.assignment}/{notebook.filename}")):
                student = path.parent.parent.name
                dest = course / "submitted" / student / notebook.assignment / notebook.filename
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
    return course


def stock_autograde(course: Path, assignment: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """`nbgrader autograde ASSIGNMENT --force`: every submitted student, serially."""
    return nbgrader(course, "autograde", assignment, "--force", timeout=timeout)


def stock_scores(course: Path, notebook: Notebook) -> dict[str, float]:
    """Each autograded student's score for `notebook`, from the stock gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in gb.students:
            try:
                scores[student.id] = float(gb.find_submission_notebook(notebook.name, notebook.assignment, student.id).score)
            except MissingEntry:
                continue
    return scores


def stock_feedback(course: Path, assignment: str) -> subprocess.CompletedProcess:
    """`nbgrader generate_feedback ASSIGNMENT --force`: feedback rendered as stock nbgrader does."""
    return nbgrader(course, "generate_feedback", assignment, "--force")
