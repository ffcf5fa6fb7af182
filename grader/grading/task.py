"""Grading one notebook: the one task every way of running the grader calls.

`grade` takes a submitted notebook's bytes and who and what it is, the prepared course, the run's
settings and the worker's resources, and returns a `Result`: the row, its cells, the feedback page as
text, timings and any traceback. It reads nothing from SUBMISSIONS and writes nothing to OUT (the
driver does both), so the same call runs in a local process pool or on a cluster's worker.
"""

from __future__ import annotations

import logging
import resource
import shutil
import time
import traceback
from dataclasses import dataclass, field

import nbformat

from grader.course import cells as cellfacts
from grader.course.cells import NotebookFacts, grade_id, is_test
from grader.course.layout import Notebook
from grader.course.prepared import PreparedCourse, gradebook_scores
from grader.grading.integrity import Scan, scan_answers
from grader.grading.pipeline import generate_feedback, run_autograde
from grader.grading.settings import Settings
from grader.grading.submissions import InvalidNotebook, Repaired, load, repair
from grader.grading.worker import Worker
from grader.pages.feedback import error_page, feedback_page, notice_page
from grader.course.written import answer_hash
from grader.pages.summary import row_message
from grader.results import CellResult, Row, WrittenAnswer

log = logging.getLogger(__name__)
TEMPLATE_RETRIES = 1  # a notebook whose kernel template died under it is graded once more, as for a dead worker


@dataclass(frozen=True)
class Submission:
    """One row to grade: a student's notebook as bytes, or the reason there is none."""

    student: str
    notebook: Notebook
    content: bytes | None
    absent: str = ""  # `missing` or `not_submitted` when there is no content; `invalid_notebook` if unreadable
    detail: str = ""  # what the driver learnt finding it (how it was matched, why it could not be read)

    @property
    def key(self) -> str:
        return f"{self.student}/{self.notebook.key}"


@dataclass
class Result:
    """What grading one notebook produced: the row (with its cells and timings), the feedback page, the notebook
    as nbgrader autograded it (for formgrader; "" when nothing ran), any traceback."""

    row: Row
    feedback: str
    cell_seconds: dict[str, float] = field(default_factory=dict)  # how long each cell ran (by cell id)
    graded: str = ""  # nbgrader's autograded notebook (hidden tests, outputs), kept in OUT for formgrader

    @property
    def traceback(self) -> str:
        """The grader's own traceback, on an `error` row (kept in the row, so that its JSON carries it)."""
        return self.row.traceback


def classify(record: dict, fixed: Repaired, scan: Scan) -> tuple[str, str, bool]:
    """(status, detail, score voided) from what execution and inspection found.

    With the tests in a trusted kernel (`record["split"]`), what the source scan and the kernel audit find
    is listed for a person to review and decides no score; only the one-kernel mode (the tests' controls)
    voids the score on their word, as the grader did before the tests left the student's kernel.
    """
    events = record.get("events", [])
    failed = [e["detail"] for e in events if e["kind"] == "trusted_failed"]
    if failed:
        return "error", "; ".join(failed), False
    findings = [f"{f['detail']} (after cell {f['grade_id'] or f['cell']})" for f in record.get("tampering", [])]
    notes = ["the code " + "; ".join(scan.notes)] if scan.notes else []
    notes += [e["detail"] for e in events if e["kind"] == "noted"]
    if scan.cheats or findings:
        seen = "cheating detected" if not record.get("split") else "cheat attempt seen (it cannot reach the tests)"
        return "tampered", "; ".join([f"{seen}: " + ", ".join(scan.cheats + findings)] + fixed.tampering), \
            not record.get("split")
    if fixed.tampering:
        return "tampered", "; ".join(fixed.tampering + notes), False
    for kind in ("kernel_died", "timeout", "output_limit"):
        hits = [e["detail"] for e in events if e["kind"] == kind]
        if hits:
            return kind, "; ".join(list(dict.fromkeys(hits)) + notes), False
    return "graded", "; ".join(notes), False


def cell_results(facts: NotebookFacts, scores: dict[str, float | None], messages: dict[str, str] | None = None) -> list[CellResult]:
    """One result per test cell of the source notebook, in its order; a cell without a score scored 0; a failed
    cell keeps its whole message (`messages`, by grade id)."""
    found = []
    for t in facts.tests:
        score = scores.get(t.grade_id) or 0.0  # None: not scored
        message = (messages or {}).get(t.grade_id, "") if score < t.points else ""
        found.append(CellResult(t.grade_id, facts.exercise_of(t.grade_id), score, t.points, t.hidden, message))
    return found


def failure_messages(graded: nbformat.NotebookNode) -> dict[str, str]:
    """{grade id: why it failed, whole} for every test cell of an autograded notebook."""
    return {grade_id(c): row_message(c.get("outputs", [])) for c in graded.cells if is_test(c) and grade_id(c)}


def written_answers(facts: NotebookFacts, graded: nbformat.NotebookNode,
                    scores: dict[str, float | None]) -> list[WrittenAnswer]:
    """One entry per written question, in notebook order: the answer's hash, ungraded; 0 where nbgrader found it
    left as released (`scores`: its autograded scores) or the cell is gone."""
    found = {cellfacts.grade_id(c): c for c in graded.cells if cellfacts.is_written(c)}
    answers = []
    for q in facts.written:
        cell = found.get(q.grade_id)
        if cell is None:
            answers.append(WrittenAnswer(q.grade_id, q.title, q.points, "", 0.0, note="the answer cell was deleted"))
        elif scores.get(q.grade_id) is not None:
            answers.append(WrittenAnswer(q.grade_id, q.title, q.points, answer_hash(cell.source), scores[q.grade_id],
                                         note="not answered" if scores[q.grade_id] == 0 else ""))
        else:
            answers.append(WrittenAnswer(q.grade_id, q.title, q.points, answer_hash(cell.source)))
    return answers


def error_result(submission: Submission, course: PreparedCourse, detail: str, tb: str = "") -> Result:
    """The `error` row of a notebook the grader itself could not grade, with a neutral feedback page."""
    notebook = submission.notebook
    row = Row(submission.student, notebook.assignment, notebook.name, 0.0, course.facts(notebook).max_score,
              "error", detail, traceback=tb)
    return Result(row, error_page(f"{notebook.key}: feedback for {submission.student}", row))


def grade(submission: Submission, course: PreparedCourse, settings: Settings, worker: Worker) -> Result:
    """Grade one submitted notebook: read, repair, autograde in a sandbox, score, render the feedback."""
    started = time.monotonic()
    notebook, facts = submission.notebook, course.facts(submission.notebook)

    def row(score: float, status: str, detail: str, cells: list[CellResult] | None = None) -> Row:
        return Row(submission.student, notebook.assignment, notebook.name, score, facts.max_score, status, detail,
                   cells or [])

    if submission.content is None:
        result = Result(row(0.0, submission.absent, submission.detail), "")
    else:
        result = _grade_content(submission, course, settings, worker, facts, row)
    if not result.feedback:
        page = error_page if result.row.status == "error" else notice_page
        result.feedback = page(f"{notebook.key}: feedback for {submission.student}", result.row)
    result.row.seconds = time.monotonic() - started
    result.row.timings["worker_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _grade_content(submission, course, settings, worker, facts, row) -> Result:
    notebook = submission.notebook
    jobs = [worker.job_dir(submission.key)]  # one more for each try the kernel template's death costs
    timings: dict[str, float] = {}
    try:
        try:
            nb = load(submission.content)
        except InvalidNotebook as exc:
            return Result(row(0.0, "invalid_notebook", f"{submission.key}: {exc}"), "")
        fixed = repair(nb, nbformat.read(course.released(notebook), as_version=4))
        scan = scan_answers(fixed.nb)
        t0 = time.monotonic()
        trusted = worker.trusted_kernel(settings.sandbox, settings.threads) if settings.split else None
        for _ in range(TEMPLATE_RETRIES + 1):
            template = worker.kernel_template(settings.threads, course.sources()) if settings.fork else None
            if trusted is not None:
                trusted.template = template  # a trusted kernel that has to (re)start is forked from it too
            with worker.kernel_uid() as uid:
                try:
                    private, record = run_autograde(course, notebook, fixed.nb, jobs[-1], settings, uid, trusted,
                                                    template)
                except Exception:
                    if template is None or template.alive():
                        raise
            if template is None or template.alive():
                break
            log.warning("the kernel template died while %s was graded", submission.key)
            jobs.append(worker.job_dir(submission.key))
        else:
            return error_result(submission, course, f"the kernel template died {TEMPLATE_RETRIES + 1} times while "
                                                    "this notebook was graded")
        timings["autograde"] = time.monotonic() - t0
        timings.update(record.get("timings", {}))
        autograded_text = private.autograded(notebook).read_text()
        autograded = nbformat.reads(autograded_text, as_version=4)
        scores = gradebook_scores(private, notebook)
        cells = cell_results(facts, scores, failure_messages(autograded))
        status, detail, voided = classify(record, fixed, scan)
        score = 0.0 if voided else sum(c.score for c in cells)
        detail = "; ".join(filter(None, [submission.detail, detail, settings.sandbox_warning]))
        graded = row(score, status, detail, cells)
        graded.timings = timings
        graded.limits = settings.limits(notebook.key).words()
        graded.written = written_answers(facts, autograded, scores)
        graded.to_grade = sum(w.points for w in graded.written if w.score is None)
        t0 = time.monotonic()
        page = generate_feedback(private, notebook, facts, withhold_outputs=voided)
        if page:
            page = feedback_page(page, graded, autograded, facts.secrets, withhold=voided)
        timings["feedback"] = time.monotonic() - t0
        return Result(graded, page or "", dict(record.get("seconds", {})), autograded_text)
    except Exception as exc:  # a grader bug must cost one row, not the run
        log.exception("grading %s failed", submission.key)
        return error_result(submission, course, f"{type(exc).__name__}: {str(exc).strip()[-2000:]}",
                            traceback.format_exc())
    finally:
        if not settings.keep_scratch:
            for job_dir in jobs:
                shutil.rmtree(job_dir, ignore_errors=True)
