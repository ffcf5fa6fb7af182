"""Autograde a folder of submissions: every student x notebook gets a row, whatever it does.

The driver: check the arguments, prepare the course once, find and read each submission, hand each to
the one grading task (`task.grade`) on a pool of worker processes, and write what comes back to OUT
(one JSON per row, the feedback pages, grades.csv, the class report). It is the only part that reads
SUBMISSIONS or writes OUT.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Iterator

from grader import results
from grader.course import layout, release
from grader.course.layout import Notebook
from grader.course.prepared import PreparedCourse, cached_course
from grader.errors import GraderError
from grader.grading.integrity import reference_objects
from grader.grading.submissions import Found, InvalidNotebook, locate, read_submitted, students_in
from grader.grading.settings import Settings
from grader.grading.task import Result, Submission, grade
from grader.kernel import confine
from grader.kernel.sandbox import resolve_mode
from grader.lms import manifest
from grader.lms.grades import class_grades, write_grades
from grader.manual.course import build as build_course
from grader.report import page as report_page
from grader.report import sections
from grader.results import Row
from grader.run.progress import Progress

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 60
NOTEBOOK_TIMEOUT_CELLS = 5  # the whole notebook's default limit: this many times the per-cell limit


def select(submissions: Path, assignment: list[str] | None, student: list[str] | None) -> tuple[list[Notebook], list[str]]:
    """The notebooks and students of this run; unknown names are an error that lists the known ones."""
    notebooks = layout.available()
    if assignment:
        for name in assignment:
            layout.notebooks_of(name)  # raises on an unknown assignment
        notebooks = [notebook for notebook in notebooks if notebook.assignment in assignment]
    if not notebooks:
        raise GraderError("no released notebooks to grade: run `python -m grader release` first")
    students = students_in(submissions)
    if student:
        unknown = [s for s in student if s not in students]
        if unknown:
            raise GraderError(f"{submissions}: no student folder {', '.join(unknown)} (found: {', '.join(students) or 'none'})")
        students = [s for s in students if s in student]
    return notebooks, students


def check_folders(submissions: Path, out: Path) -> None:
    """SUBMISSIONS must exist and OUT must not be inside it (the submissions are never written to)."""
    if not submissions.is_dir():
        raise GraderError(f"{submissions}: no such folder (expected SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb)")
    if out == submissions or submissions in out.parents:
        raise GraderError(f"--out {out} is inside {submissions}: the submissions folder is never written to; choose another")


def prepared_course(notebooks: list[Notebook]) -> PreparedCourse:
    """The course prepared for every released notebook, refused when notebooks/ is stale."""
    course = cached_course(layout.course().private_cache(), layout.available())  # one entry, whatever this run selects
    stale = release.out_of_date(course, notebooks)
    if stale:
        keys = ", ".join(notebook.key for notebook in stale)
        raise GraderError(f"notebooks/ is out of date with solutions/ ({keys}): run `python -m grader release`")
    return course


def submission_of(found: Found) -> Submission:
    """Read one found notebook into a Submission (its bytes, or why there are none)."""
    if found.path is None:
        return Submission(found.student, found.notebook, None, found.absent, found.detail)
    try:
        content = read_submitted(found.path)
    except InvalidNotebook as exc:
        return Submission(found.student, found.notebook, None, "invalid_notebook",
                          f"{found.student}/{found.notebook.key}: {exc}")
    return Submission(found.student, found.notebook, content, detail=found.detail)


def read_lazily(found: list[Found]) -> Iterator[Submission]:
    """Each submission read only when a worker is about to grade it: the class never sits in memory."""
    for item in found:
        yield submission_of(item)


def run_settings(timeout: int, notebook_timeout: int | None, mode: str, warning: str | None, threads: int,
                 keep_scratch: bool, split: bool = True) -> Settings:
    """How every notebook of this run is graded."""
    return Settings(timeout, notebook_timeout or NOTEBOOK_TIMEOUT_CELLS * timeout, mode, threads, warning, keep_scratch,
                    reference_objects(layout.course().private_cache()), split)


def cluster_session(scheduler):
    """The Dask client for `scheduler`, reached before anything else (a wrong address touches nothing); or none."""
    if scheduler is None:
        return nullcontext()
    from grader.run.cluster import session

    return session(scheduler)


def grade_locally(found: list[Found], course: PreparedCourse, settings: Settings, workers: int, done) -> None:
    """Grade on this machine's worker processes, each with a scratch folder under one for the run."""
    from grader.run.pool import LocalPool

    scratch = Path(tempfile.mkdtemp(prefix="grader-"))
    os.chmod(scratch, 0o755)
    try:
        LocalPool(course, settings, min(workers, max(1, len(found))), scratch).run(read_lazily(found), len(found), done)
    finally:
        if settings.keep_scratch:
            print(f"grading folders kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def write_class_outputs(out: Path, submissions: Path, collected, settings: Settings) -> list[Row]:
    """grades.csv and report.html from every row saved in OUT (overrides and the collect manifest applied)."""
    from grader.report.similarity import of_submissions

    rows = class_grades(out, collected).rows
    manifest.copy_into(out, collected)
    write_grades(out, rows)
    report_page.write(out, rows, manifest.merge_unplaced(results.load_unplaced(out), collected.unplaced),
                      settings.sandbox_warning,
                      settings=sections.run_settings(settings.timeout, settings.sandbox,
                                                     notebook_timeout=settings.notebook_timeout,
                                                     confinement=confine.description()),
                      similarity=of_submissions(submissions, layout.available()))
    return rows


def refresh_class_outputs(out: Path) -> list[Row]:
    """grades.csv, the pages' written answers and report.html again from OUT, without grading: for grades given
    since (in formgrader)."""
    collected = manifest.read(out)
    rows = class_grades(out, collected).rows
    write_grades(out, rows)
    report_page.rewrite(out, rows, manifest.merge_unplaced(results.load_unplaced(out), collected.unplaced))
    return rows


def autograde(submissions: Path, out: Path, *, workers: int | None = None, timeout: int = DEFAULT_TIMEOUT,
              notebook_timeout: int | None = None, assignment: list[str] | None = None,
              student: list[str] | None = None, sandbox: str = "auto", keep_scratch: bool = False,
              progress_stream=None, split: bool = True, scheduler=None) -> list[Row]:
    """Grade every student x notebook under `submissions` into `out`; return all rows in `out`.

    `scheduler` (an address, `local`, or a Dask cluster object) grades on a Dask cluster, with `workers`
    the most notebooks in flight; without it, `workers` local processes grade.

    `split=False` runs the test cells in the student's own kernel, as stock nbgrader does: only for the
    tests' controls and the benchmark, never for grades.
    """
    submissions, out = submissions.resolve(), out.resolve()
    with cluster_session(scheduler) as client:
        check_folders(submissions, out)
        notebooks, students = select(submissions, assignment, student)
        collected = manifest.read(submissions, [notebook.assignment for notebook in notebooks])
        students = manifest.students_to_grade(students, collected, student)  # roster students without a folder too
        mode, warning = resolve_mode(sandbox)
        local_workers = max(1, workers or os.cpu_count() or 1)
        out.mkdir(parents=True, exist_ok=True)
        os.chmod(out, 0o700)  # graded notebooks (results/, course/) hold every hidden test
        course = prepared_course(notebooks)
        found, unplaced = locate(submissions, notebooks, students)
        # A kernel's threads: the machine's cores shared among the local workers; one on a cluster's worker.
        threads = 1 if client is not None else max(1, (os.cpu_count() or 1) // local_workers)
        settings = run_settings(timeout, notebook_timeout, mode, warning, threads, keep_scratch, split)
        results.clear(out, student, assignment)
        results.save_unplaced(out, unplaced, students)
        progress = Progress(len(found), progress_stream)

        def done(result: Result) -> None:
            row = result.row
            results.save(out, row, result.feedback, result.graded or None)
            progress.advance(f"{row.student_id}/{row.assignment}/{row.notebook}: {row.status} {row.score:g}/{row.max_score:g}")

        present = [f for f in found if f.path is not None]
        for item in (f for f in found if f.path is None):  # nothing to run: graded here, at once
            done(grade(submission_of(item), course, settings, worker=None))
        if client is not None:
            from grader.run.cluster import run_on_cluster

            run_on_cluster(client, read_lazily(present), len(present), course, settings, done, in_flight=workers,
                           note=lambda text: setattr(progress, "note", text))
        else:
            grade_locally(present, course, settings, local_workers, done)
    build_course(out, course)  # OUT/course, for formgrader: the rows' scores, what people graded kept
    return write_class_outputs(out, submissions, collected, settings)
