"""Autograde a folder of submissions: every student x notebook gets a row, whatever it does.

The driver: check the arguments, prepare the course once (measuring the reference's cells for the
default time limits), find and read each submission, hand each to the one grading task (`task.grade`)
on a pool of worker processes, and write what comes back to OUT (one JSON per row, the feedback pages,
grades.csv, the class report). It is the only part that reads SUBMISSIONS or writes OUT.

OUT is the course's record for the term: a run grades the assignments present in SUBMISSIONS (or those
named), replaces each of their rows as it is graded, and only once every one is in removes the rows of
its scope it did not write again; every other assignment's rows, its collect manifest section, its late
policy and the instructor's overrides stay as they were.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import nbformat

from grader import results
from grader.bridge.trusted import BRIDGE_SOURCE
from grader.course import answers, layout, release
from grader.course.layout import Notebook
from grader.course.prepared import PreparedCourse, cached_course
from grader.errors import GraderError
from grader.grading.integrity import reference_objects
from grader.grading.settings import DEFAULT_TIMEOUT, NOTEBOOK_TIMEOUT_CELLS, Settings
from grader.grading.submissions import Found, InvalidNotebook, assignments_in, locate, read_submitted, students_in
from grader.grading.task import Result, Submission, grade
from grader.kernel import confine, forked
from grader.kernel.sandbox import resolve_mode
from grader.lms import manifest
from grader.manual.course import build as build_course
from grader.report import record, sections
from grader.results import Row
from grader.run.progress import Progress
from grader.run.refresh import refresh

log = logging.getLogger(__name__)
__all__ = ["DEFAULT_TIMEOUT", "NOTEBOOK_TIMEOUT_CELLS", "autograde"]
REFERENCE_STUDENT = "(reference)"  # who the reference is while its cells are measured
TIMES_NAME = "reference-times.json"  # in the prepared course's cache entry: {notebook key: {cell id: seconds}}
MEASURING = (600, 1800)  # the limits (per cell, per notebook) the reference is measured under


def select(submissions: Path, assignment: list[str] | None, student: list[str] | None,
           collected: manifest.Manifest | None = None) -> tuple[list[Notebook], list[str]]:
    """The notebooks and students of this run; unknown names are an error that lists the known ones.

    Without `assignment`, the assignments present in SUBMISSIONS (a folder of one under some student, or a
    section of the collect manifest): an assignment nobody was asked to hand in gets no rows."""
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
    if not assignment:
        present = assignments_in(submissions) | set(collected.assignments if collected else ())
        notebooks = [notebook for notebook in notebooks if notebook.assignment in present]
        if not notebooks:
            raise GraderError(f"{submissions}: no assignment to grade: no folder SUBMISSIONS/<student>/<assignment>/ "
                              f"of {', '.join(layout.assignments())}, and no collect manifest; collect the LMS's "
                              f"export first, or name it with --assignment")
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


def run_settings(timeout: int | None, notebook_timeout: int | None, mode: str, warning: str | None, threads: int,
                 keep_scratch: bool, split: bool = True, reference_times: dict | None = None,
                 kernels: str = "auto") -> Settings:
    """How every notebook of this run is graded: `timeout` (and `notebook_timeout`) as given, else each
    notebook's limits from its reference's `reference_times`; student kernels as `kernels` says (forked.resolve)."""
    if timeout is not None and not notebook_timeout:
        notebook_timeout = NOTEBOOK_TIMEOUT_CELLS * timeout
    fork, kernel_start = forked.resolve(kernels, mode)
    return Settings(timeout, notebook_timeout or 0, mode, threads, warning, keep_scratch,
                    reference_objects(layout.course().private_cache(), BRIDGE_SOURCE), split, fork, kernel_start,
                    dict(reference_times or {}))


def reference_times(course: PreparedCourse, notebooks: list[Notebook], grade_all: Callable, say=print) -> dict:
    """{notebook key: {cell id: seconds}}: each notebook's reference solution graded once, cell by cell, as
    submissions are (`grade_all(submissions) -> [Result]`, under the MEASURING limits), and kept in the
    prepared course's cache entry (it changes when the source notebooks do)."""
    path = course.root / TIMES_NAME
    kept = json.loads(path.read_text()) if path.exists() else {}
    missing = [nb for nb in notebooks if nb.key not in kept]
    if missing:
        say(f"measuring the reference solution of {', '.join(nb.key for nb in missing)} for the default time limits "
            f"(once, until the source notebooks change)")
        jobs = [Submission(REFERENCE_STUDENT, nb, nbformat.writes(answers.submission(nb)).encode()) for nb in missing]
        for result in grade_all(jobs):
            row = result.row
            if row.score + row.to_grade < row.max_score or not result.cell_seconds:  # written answers: to grade
                raise GraderError(f"the reference solution of {row.assignment}/{row.notebook} scored {row.score:g}/"
                                  f"{row.max_score:g} ({row.status}: {row.detail or 'no detail'}) when its cells were "
                                  f"timed; fix it, or grade with --timeout SECONDS")
            kept[f"{row.assignment}/{row.notebook}"] = result.cell_seconds
        results.write_whole(path, json.dumps(kept, indent=1, sort_keys=True))
    return {nb.key: kept[nb.key] for nb in notebooks}


def cluster_session(scheduler):
    """The Dask client for `scheduler`, reached before anything else (a wrong address touches nothing); or none."""
    if scheduler is None:
        return nullcontext()
    from grader.run.cluster import session

    return session(scheduler)


def grade_submissions(client, course: PreparedCourse, settings: Settings, jobs: Iterator[Submission], total: int,
                      workers: int, in_flight: int | None, done: Callable[[Result], None],
                      note: Callable[[str], None] = lambda text: None) -> None:
    """Grade `total` submissions on the cluster `client` reaches (at most `in_flight` at once), or on
    `workers` local processes, each with a scratch folder under one for the run; `done` gets each result."""
    if client is not None:
        from grader.run.cluster import run_on_cluster

        run_on_cluster(client, jobs, total, course, settings, done, in_flight=in_flight, note=note)
        return
    from grader.run.pool import LocalPool

    scratch = Path(tempfile.mkdtemp(prefix="grader-"))
    os.chmod(scratch, 0o755)
    try:
        LocalPool(course, settings, min(workers, max(1, total)), scratch).run(jobs, total, done)
    finally:
        if settings.keep_scratch:
            print(f"grading folders kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def write_class_outputs(out: Path, submissions: Path, settings: Settings, notebooks: list[Notebook]) -> list[Row]:
    """grades.csv, every page's grade and report.html from every row saved in OUT (overrides, the collect
    manifest and the late policy applied, run/refresh.py); the run's similarity findings and settings kept."""
    from grader.report.similarity import of_submissions

    record.update(out, sections.run_settings(settings.timeout, settings.sandbox,
                                             notebook_timeout=settings.notebook_timeout or None,
                                             confinement=confine.description(),
                                             kernel_start=settings.kernel_start),
                  settings.sandbox_warning, of_submissions(submissions, notebooks))
    return refresh(out).grades.rows


def autograde(submissions: Path, out: Path, *, workers: int | None = None, timeout: int | None = None,
              notebook_timeout: int | None = None, assignment: list[str] | None = None,
              student: list[str] | None = None, sandbox: str = "auto", keep_scratch: bool = False,
              progress_stream=None, split: bool = True, scheduler=None, kernels: str = "auto") -> list[Row]:
    """Grade the assignments present in `submissions` (or `assignment`) for every student into `out`; return
    all rows in `out`, every assignment graded into it so far.

    `timeout`/`notebook_timeout` (seconds) replace the limits measured from each notebook's reference.
    `kernels`: `fork` student kernels from a warm template per worker, start each `fresh`, or `auto` (fork
    where it works: root, the bubblewrap sandbox, a Linux kernel with open_tree).
    `scheduler` (an address, `local`, or a Dask cluster object) grades on a Dask cluster, with `workers`
    the most notebooks in flight; without it, `workers` local processes grade.

    `split=False` runs the test cells in the student's own kernel, as stock nbgrader does: only for the
    tests' controls and the benchmark, never for grades.
    """
    submissions, out = submissions.resolve(), out.resolve()
    with cluster_session(scheduler) as client:
        check_folders(submissions, out)
        laid_out = manifest.load(submissions)
        notebooks, students = select(submissions, assignment, student, laid_out)
        assignments = list(dict.fromkeys(notebook.assignment for notebook in notebooks))
        collected = manifest.collected_from(laid_out, assignments)
        students = manifest.students_to_grade(students, collected, student)  # roster students without a folder too
        mode, warning = resolve_mode(sandbox)
        local_workers = max(1, workers or os.cpu_count() or 1)
        layout.private_folder(out)  # OUT holds graded work, tracebacks, rosters, every hidden test: its owner's alone
        course = prepared_course(notebooks)
        found, unplaced = locate(submissions, notebooks, students)
        # A kernel's threads: the machine's cores shared among the local workers; one on a cluster's worker.
        threads = 1 if client is not None else max(1, (os.cpu_count() or 1) // local_workers)
        settings = run_settings(timeout, notebook_timeout, mode, warning, threads, keep_scratch, split, kernels=kernels)
        ran = [nb for nb in notebooks if any(f.notebook == nb and f.path is not None for f in found)]
        if timeout is None and ran:  # the notebooks that will run get their limits from their reference
            def measure(jobs: list[Submission]) -> list[Result]:
                got: list[Result] = []
                grade_submissions(client, course, replace(settings, timeout=MEASURING[0], notebook_timeout=MEASURING[1]),
                                  iter(jobs), len(jobs), local_workers, workers, got.append)
                return got

            times = reference_times(course, ran, measure, lambda text: print(text, file=progress_stream or sys.stderr))
            settings = replace(settings, reference_times=times)
        progress = Progress(len(found), progress_stream)
        written: set[tuple[str, str, str]] = set()

        def done(result: Result) -> None:
            row = result.row
            results.save(out, row, result.feedback, result.graded or None)
            written.add((row.student_id, row.assignment, row.notebook))
            progress.advance(f"{row.student_id}/{row.assignment}/{row.notebook}: {row.status} {row.score:g}/{row.max_score:g}")

        present = [f for f in found if f.path is not None]
        for item in (f for f in found if f.path is None):  # nothing to run: graded here, at once
            done(grade(submission_of(item), course, settings, worker=None))
        grade_submissions(client, course, settings, read_lazily(present), len(present), local_workers, workers, done,
                          note=lambda text: setattr(progress, "note", text))
    # Every row of the run is in: only now is what it did not write again removed.
    results.remove_stale(out, written, assignments, student)
    results.save_unplaced(out, unplaced, assignments, student)
    manifest.keep_in(out, laid_out, assignments, student)
    build_course(out, course)  # OUT/course, for formgrader: the rows' scores, what people graded kept
    return write_class_outputs(out, submissions, settings, notebooks)

