"""Autograde a folder of submissions: every student x notebook gets a row, whatever it does.

`grade_notebook` is everything that happens to one submitted notebook, in a private copy of a
course prepared once per run; `autograde` finds the submissions, grades them in parallel worker
processes and writes grades.csv, the feedback and the class report.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nbformat
from traitlets.config import Config

from . import layout, release, report, results
from .course import GraderError, PreparedCourse, api, cached_course, check, read_grades
from .feedback import STATUS_TEXT, banner, feedback_config, standalone, with_banner
from .hidden import secrets_of
from .integrity import reference_objects
from .layout import Notebook
from .progress import Progress
from .results import CellResult, Row
from .report_sections import run_settings
from .sandbox import resolve_mode
from .similarity import of_submissions
from .submissions import InvalidNotebook, Job, Repaired, collect, load, repair, students_in
from .summary import summarised

NBGRADER_STUDENT = "student"  # each notebook is graded in its own course, always as this student
FIRST_UID = 20000  # kernels run as FIRST_UID + job index when the grader is root
DEFAULT_TIMEOUT = 60
# Library warnings on stderr must not zero a test cell (nbgrader scores any stderr output 0).
STDERR_IGNORED = r"Warning: "


@dataclass(frozen=True)
class Settings:
    """How every notebook of one run is graded."""

    out: Path
    course: PreparedCourse
    scratch: Path
    timeout: int = DEFAULT_TIMEOUT
    sandbox: str = "bwrap"
    threads: int = 1
    sandbox_warning: str | None = None
    keep_scratch: bool = False
    reference_objects: dict | None = None  # what the audited functions look like untouched


@dataclass(frozen=True)
class NotebookFacts:
    """What the source notebook says about grading it."""

    test_cells: dict[str, float]  # grade id -> points, in notebook order
    hidden_cells: tuple[str, ...]
    secrets: frozenset[str]

    @property
    def max_score(self) -> float:
        return sum(self.test_cells.values())


@cache
def facts(nb: Notebook) -> NotebookFacts:
    """Test cells, points and hidden-test lines of `nb`'s source notebook."""
    source = nbformat.read(nb.source, as_version=4)
    tests, hidden = {}, []
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            tests[meta["grade_id"]] = float(meta.get("points", 0))
            if "### BEGIN HIDDEN TESTS" in cell.source:
                hidden.append(meta["grade_id"])
    return NotebookFacts(tests, tuple(hidden), secrets_of(source).hidden)


def nbgrader_config(job_dir: Path, index: int, settings: Settings) -> Config:
    """Autograde config for one job: our Execute step, its sandboxed kernel, its time limit."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput,
                                        SaveAutoGrades)

    from .execution import GradedExecute
    from .sandbox import SandboxedKernelManager

    c = Config()
    c.Autograde.autograde_preprocessors = [GradedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                           SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    c.GradedExecute.timeout = settings.timeout
    c.GradedExecute.startup_timeout = 120
    c.GradedExecute.shutdown_kernel = "immediate"  # a disposable sandbox: a graceful exit costs ~2 s and saves nothing
    c.GradedExecute.record_path = str(job_dir / "execution.json")
    c.GradedExecute.kernel_manager_class = SandboxedKernelManager
    c.GradedExecute.reference_objects = settings.reference_objects or reference_objects()
    c.SandboxedKernelManager.mode = settings.sandbox
    c.SandboxedKernelManager.run_dir = str(job_dir / "run")
    c.SandboxedKernelManager.uid = FIRST_UID + index
    c.SandboxedKernelManager.threads = settings.threads
    c.IgnorePattern.enabled = True
    c.IgnorePattern.pattern = STDERR_IGNORED
    return c


def absent_row(job: Job) -> Row:
    nb = job.notebook
    return Row(job.student, nb.assignment, nb.name, 0.0, facts(nb).max_score, job.absent, job.detail)


def cell_results(nb: Notebook, grades) -> list[CellResult]:
    info = facts(nb)
    by_id = {g.grade_id: g for g in grades}
    return [CellResult(gid, nb.exercise_of(gid), by_id[gid].score if gid in by_id else 0.0, points,
                       gid in info.hidden_cells)
            for gid, points in info.test_cells.items()]


def classify(record: dict, fixed: Repaired) -> tuple[str, str, bool]:
    """(status, detail, score voided) from what execution and inspection found."""
    findings = [f"{f['detail']} (after cell {f['grade_id'] or f['cell']})" for f in record.get("tampering", [])]
    notes = ["the code " + "; ".join(fixed.notes)] if fixed.notes else []
    if fixed.cheats or findings:
        return "tampered", "; ".join(["cheating detected: " + ", ".join(fixed.cheats + findings)] + fixed.tampering), True
    if fixed.tampering:
        return "tampered", "; ".join(fixed.tampering + notes), False
    events = record.get("events", [])
    for kind in ("kernel_died", "timeout", "output_limit"):
        hits = [e["detail"] for e in events if e["kind"] == kind]
        if hits:
            return kind, "; ".join(list(dict.fromkeys(hits)) + notes), False
    return "graded", "; ".join(notes), False


def run_autograde(job: Job, index: int, settings: Settings, notebook: nbformat.NotebookNode, job_dir: Path) -> dict:
    """nbgrader autograde of `notebook` in a private copy of the course; the execution record."""
    nb = job.notebook
    course_dir = settings.course.copy_for(nb, job_dir / "course")
    submitted = course_dir / "submitted" / NBGRADER_STUDENT / nb.assignment / nb.filename
    submitted.parent.mkdir(parents=True)
    nbformat.write(notebook, submitted)
    (job_dir / "run").mkdir()
    check(api(course_dir, nbgrader_config(job_dir, index, settings)).autograde(nb.assignment, NBGRADER_STUDENT),
          f"autograde of {job.student}/{nb.key}")
    record = job_dir / "execution.json"
    return json.loads(record.read_text()) if record.exists() else {}


def write_feedback(job: Job, row: Row, settings: Settings, course_dir: Path | None, withhold: bool = False) -> None:
    """OUT/feedback/<student>/<assignment>/<notebook>.html: nbgrader's feedback, scrubbed, or a notice."""
    nb = job.notebook
    dest = results.feedback_path(settings.out, job.student, nb.assignment, nb.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    notice = banner(row.status, row.detail, row.score, row.max_score)
    page = None
    if course_dir is not None:
        info = facts(nb)
        nbg = api(course_dir, feedback_config(info.secrets, list(info.hidden_cells), withhold))
        result = nbg.generate_feedback(nb.assignment, NBGRADER_STUDENT)
        html_file = course_dir / "feedback" / NBGRADER_STUDENT / nb.assignment / f"{nb.name}.html"
        graded = course_dir / "autograded" / NBGRADER_STUDENT / nb.assignment / nb.filename
        if result.get("success") and html_file.exists() and graded.exists():  # the summary replaces the banner
            page = summarised(with_banner(html_file.read_text(), ""), nbformat.read(graded, as_version=4), row,
                              info.secrets, STATUS_TEXT.get(row.status, ""), withhold)
        elif result.get("success") and html_file.exists():
            page = with_banner(html_file.read_text(), notice)
    dest.write_text(page or standalone(f"{nb.key}: feedback for {job.student}", notice))


def grade_notebook(job: Job, index: int, settings: Settings) -> Row:
    """Grade one submitted notebook: read, repair, autograde in a sandbox, score, feedback."""
    nb = job.notebook
    started = time.monotonic()
    if job.path is None:
        row = absent_row(job)
        write_feedback(job, row, settings, None)
        return row
    job_dir = Path(tempfile.mkdtemp(prefix=f"job{index}-", dir=settings.scratch))
    os.chmod(job_dir, 0o711)  # the kernel's unprivileged uid must reach job_dir/run
    course_dir = None
    voided = False
    timings: dict[str, float] = {}
    try:
        try:
            submitted = load(job.path)
        except InvalidNotebook as exc:
            row = Row(job.student, nb.assignment, nb.name, 0.0, facts(nb).max_score, "invalid_notebook",
                      f"{job.student}/{nb.key}: {exc}")
        else:
            released = nbformat.read(settings.course.released(nb), as_version=4)
            fixed = repair(submitted, released)
            t0 = time.monotonic()
            record = run_autograde(job, index, settings, fixed.notebook, job_dir)
            timings["autograde"] = time.monotonic() - t0
            course_dir = job_dir / "course"
            cells = cell_results(nb, read_grades(course_dir, nb, NBGRADER_STUDENT))
            status, detail, voided = classify(record, fixed)
            score = 0.0 if voided else sum(c.score for c in cells)
            if settings.sandbox_warning:
                detail = "; ".join(filter(None, [detail, settings.sandbox_warning]))
            row = Row(job.student, nb.assignment, nb.name, score, facts(nb).max_score, status, detail, cells)
        t0 = time.monotonic()
        write_feedback(job, row, settings, course_dir, withhold=voided)
        timings["feedback"] = time.monotonic() - t0
    except Exception as exc:  # a grader bug must cost one row, not the run
        row = Row(job.student, nb.assignment, nb.name, 0.0, facts(nb).max_score, "error",
                  f"{type(exc).__name__}: {str(exc).strip()[-2000:]}")
        (job_dir / "traceback.txt").write_text(traceback.format_exc())
    else:
        if not settings.keep_scratch:
            shutil.rmtree(job_dir, ignore_errors=True)
    row.seconds = time.monotonic() - started
    timings["worker_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row.timings = timings
    return row


def run_jobs(jobs: list[Job], settings: Settings, workers: int, progress: Progress) -> list[Row]:
    """Grade `jobs` on `workers` processes (in this process when 1); a row for every job."""
    rows = []

    def done(row: Row) -> None:
        results.save(settings.out, row)
        rows.append(row)
        progress.advance(f"{row.student_id}/{row.assignment}/{row.notebook}: {row.status} {row.score:g}/{row.max_score:g}")

    order = sorted(range(len(jobs)), key=lambda i: jobs[i].path is None)  # real work first
    if workers <= 1:
        for i in order:
            done(grade_notebook(jobs[i], i, settings))
        return rows
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["grader.autograde", "grader.execution", "nbgrader.apps"])
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(grade_notebook, jobs[i], i, settings): jobs[i] for i in order}
        for future in as_completed(futures):
            job = futures[future]
            try:
                done(future.result())
            except Exception as exc:  # the worker process itself died
                nb = job.notebook
                done(Row(job.student, nb.assignment, nb.name, 0.0, facts(nb).max_score, "error",
                         f"the grading process failed: {type(exc).__name__}: {exc}"))
    return rows


def select(submissions: Path, assignment: list[str] | None, student: list[str] | None) -> tuple[list[Notebook], list[str]]:
    """The notebooks and students of this run; unknown names are an error that lists the known ones."""
    notebooks = layout.available()
    if assignment:
        for name in assignment:
            layout.notebooks_of(name)  # raises on an unknown assignment
        notebooks = [nb for nb in notebooks if nb.assignment in assignment]
    if not notebooks:
        raise GraderError("no released notebooks to grade: run `python -m grader release` first")
    students = students_in(submissions)
    if student:
        unknown = [s for s in student if s not in students]
        if unknown:
            raise GraderError(f"{submissions}: no student folder {', '.join(unknown)} (found: {', '.join(students) or 'none'})")
        students = [s for s in students if s in student]
    return notebooks, students


def autograde(submissions: Path, out: Path, *, workers: int | None = None, timeout: int = DEFAULT_TIMEOUT,
              assignment: list[str] | None = None, student: list[str] | None = None, sandbox: str = "auto",
              keep_scratch: bool = False, progress_stream=None) -> list[Row]:
    """Grade every student x notebook under `submissions` into `out`; return all rows in `out`."""
    submissions, out = submissions.resolve(), out.resolve()
    if not submissions.is_dir():
        raise GraderError(f"{submissions}: no such folder (expected SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb)")
    if out == submissions or submissions in out.parents:
        raise GraderError(f"--out {out} is inside {submissions}: the submissions folder is never written to; choose another")
    notebooks, students = select(submissions, assignment, student)
    mode, warning = resolve_mode(sandbox)
    workers = max(1, workers or os.cpu_count() or 1)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="grader-"))
    os.chmod(scratch, 0o755)
    try:
        course = cached_course(layout.CACHE, layout.available())  # one entry, whatever this run selects
        stale = release.out_of_date(course, notebooks)
        if stale:
            keys = ", ".join(nb.key for nb in stale)
            raise GraderError(f"notebooks/ is out of date with solutions/ ({keys}): run `python -m grader release`")
        jobs, unplaced = collect(submissions, notebooks, students)
        settings = Settings(out, course, scratch, timeout, mode, max(1, (os.cpu_count() or 1) // workers), warning,
                            keep_scratch, reference_objects(layout.CACHE))
        results.clear(out, student, assignment)
        results.save_unplaced(out, unplaced, students)
        run_jobs(jobs, settings, min(workers, max(1, len(jobs))), Progress(len(jobs), progress_stream))
    finally:
        if keep_scratch:
            print(f"grading folders kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    rows = results.load_all(out)
    results.write_csv(out, rows)
    report.write(out, rows, results.load_unplaced(out), warning, settings=run_settings(timeout, mode),
                 similarity=of_submissions(submissions, layout.available()))
    return rows
