"""OUT/course: an nbgrader course for formgrader, built from OUT's rows, and what a person grades there read back.

Layout, as nbgrader expects it: `nbgrader_config.py`, `gradebook.db` (the prepared course's assignments and
source cells, hidden tests included, then every student with their test scores written from the grade rows,
never run again), `source/<assignment>/` and `autograded/<student>/<assignment>/<notebook>.ipynb` (the
formgrader's copy of the notebook each grading task returned, manual/notebook.py). There is no `submitted/`:
formgrader's own autograde and feedback buttons cannot run here, and need not.

`build` runs after every autograde (and before formgrader starts): it first `harvest`s what people changed in
the gradebook since the last build into OUT/manual_grades.csv (manual/store.py), then writes each row's
notebook and scores, and each written answer's mark for the answer's present text (none when it changed). What
it wrote is kept in `.synced.json` beside the gradebook, so `harvest` takes only what a person changed there.
The gradebook is updated in place (formgrader may be running), and made afresh when the course's source changed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import nbformat

from grader import results
from grader.course.layout import Notebook
from grader.course.prepared import PreparedCourse
from grader.errors import GraderError
from grader.manual.notebook import formgrader_copy
from grader.manual.scores import apply_marks
from grader.manual.store import Key, Mark, read_marks, write_marks
from grader.results import Row, write_whole

log = logging.getLogger(__name__)

COURSE = "course"
SYNCED = ".synced.json"  # what build wrote into the gradebook, per answer
TEMPLATE = ".prepared"  # the prepared course the gradebook was made from
CONFIG = '''\
# nbgrader's configuration for formgrader over this folder, written by the grader (python -m grader formgrader).
import os

c = get_config()  # noqa: F821
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = ""
# No exchange: students submit through the LMS, and autograding happens outside formgrader.
c.Exchange.root = os.path.join(c.CourseDirectory.root, "exchange")
'''


def course_root(out: Path) -> Path:
    """OUT/course."""
    return out / COURSE


def _db_url(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


def autograded_path(root: Path, student: str, assignment: str, notebook: str) -> Path:
    return root / "autograded" / student / assignment / f"{notebook}.ipynb"


def _read_synced(root: Path) -> dict:
    path = root / SYNCED
    return json.loads(path.read_text()) if path.exists() else {}


def harvest(out: Path) -> int:
    """Copy the scores and comments a person changed in OUT/course's gradebook into OUT/manual_grades.csv, each
    under the text of the answer as formgrader showed it; the number of answers changed."""
    root = course_root(out)
    synced = _read_synced(root)
    if not synced or not (root / "gradebook.db").exists():
        return 0
    from nbgrader.api import Gradebook, MissingEntry

    marks = read_marks(out)
    changed = 0
    with Gradebook(_db_url(root)) as gb:
        for where, answers in synced.items():
            student, assignment, notebook = where.split("/")
            try:
                sub = gb.find_submission_notebook(notebook, assignment, student)
            except MissingEntry:
                continue
            grades = {g.name: g for g in sub.grades}
            comments = {c.name: c for c in sub.comments}
            for gid, was in answers.items():
                grade, comment = grades.get(gid), comments.get(gid)
                score = None if grade is None or grade.manual_score is None else \
                    grade.manual_score + (grade.extra_credit or 0.0)
                text = (comment.manual_comment or "") if comment is not None else ""
                if (score, text) != (was["score"], was["comment"]):
                    mark = Mark(student, assignment, notebook, gid, was["sha"], score, text)
                    marks[mark.key] = mark
                    changed += 1
    if changed:
        write_marks(out, marks)
        log.info("read %d manual grade(s) from %s", changed, root / "gradebook.db")
    return changed


def _fresh(root: Path, prepared: PreparedCourse) -> None:
    """A new course folder: config, the prepared gradebook (assignments, source cells) and source notebooks."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, mode=0o700)
    shutil.copyfile(prepared.gradebook(), root / "gradebook.db")
    shutil.copytree(prepared.root / "source", root / "source")
    (root / "nbgrader_config.py").write_text(CONFIG)
    (root / "exchange").mkdir(mode=0o700)
    (root / TEMPLATE).write_text(prepared.root.name)


def _record(gb, row: Row, marks: dict[Key, Mark]) -> dict[str, dict]:
    """Write one row into the gradebook: the student, the submission, test scores as autograded, each written
    answer's mark for its present text; what was written, per written answer."""
    from nbgrader.api import MissingEntry

    gb.update_or_create_student(row.student_id)
    try:
        gb.find_submission(row.assignment, row.student_id)
    except MissingEntry:
        gb.add_submission(row.assignment, row.student_id)
    sub = gb.find_submission_notebook(row.notebook, row.assignment, row.student_id)
    tests = {c.grade_id: c.score for c in row.cells}
    answers = {w.grade_id: w for w in row.written}
    marked = {gid: marks.get((row.student_id, row.assignment, row.notebook, gid, w.answer_sha256))
              for gid, w in answers.items()}
    for grade in sub.grades:
        grade.extra_credit = None
        if grade.name in answers:
            mark = marked[grade.name]
            grade.auto_score = answers[grade.name].score  # 0 when left unanswered, else None
            grade.manual_score = mark.score if mark is not None else None
            grade.needs_manual_grade = grade.auto_score is None and grade.manual_score is None
        else:
            grade.auto_score, grade.manual_score = tests.get(grade.name, 0.0), None
            grade.needs_manual_grade = False
    for comment in sub.comments:
        if comment.name in answers:
            mark = marked[comment.name]
            comment.manual_comment = mark.comment if mark is not None and mark.comment else None
            comment.auto_comment = "No response." if answers[comment.name].score is not None else None
    gb.db.commit()
    return {gid: {"sha": w.answer_sha256,
                  "score": marked[gid].score if marked[gid] is not None else None,
                  "comment": marked[gid].comment if marked[gid] is not None else ""} for gid, w in answers.items()}


def _prune(gb, root: Path, kept: set[tuple[str, str, str]]) -> None:
    """Remove the submissions (and notebooks) of rows that no longer have a graded notebook."""
    for assignment in gb.assignments:
        for submission in list(assignment.submissions):
            student = submission.student.id
            names = [n.notebook.name for n in submission.notebooks]
            for name in names:
                if (student, assignment.name, name) not in kept:
                    autograded_path(root, student, assignment.name, name).unlink(missing_ok=True)
            if not any((student, assignment.name, name) in kept for name in names):
                gb.remove_submission(assignment.name, student)


def build(out: Path, prepared: PreparedCourse) -> Path:
    """OUT/course from the rows saved in OUT (after reading back what people graded there); its root."""
    from nbgrader.api import Gradebook

    out = out.resolve()
    harvest(out)
    root = course_root(out)
    if not (root / "gradebook.db").exists() or not (root / TEMPLATE).exists() or \
            (root / TEMPLATE).read_text() != prepared.root.name:
        _fresh(root, prepared)
    marks = read_marks(out)
    synced, kept = {}, set()
    with Gradebook(_db_url(root)) as gb:
        for row in results.load_all(out):
            graded = results.graded_path(out, row.student_id, row.assignment, row.notebook)
            notebook = Notebook(row.assignment, row.notebook)
            if not graded.exists() or not prepared.source(notebook).exists():
                continue
            notes = {w.grade_id: w.note for w in apply_marks([row], marks)[0].written}
            copy = formgrader_copy(nbformat.read(graded, as_version=4),
                                   nbformat.read(prepared.source(notebook), as_version=4),
                                   prepared.facts(notebook), {c.grade_id: c.score for c in row.cells}, notes)
            text = nbformat.writes(copy)
            dest = autograded_path(root, row.student_id, row.assignment, row.notebook)
            if not dest.exists() or dest.read_text() != text:
                write_whole(dest, text)
            synced[f"{row.student_id}/{row.assignment}/{row.notebook}"] = _record(gb, row, marks)
            kept.add((row.student_id, row.assignment, row.notebook))
        _prune(gb, root, kept)
    write_whole(root / SYNCED, json.dumps(synced, indent=1))
    os.chmod(root, 0o700)  # the gradebook and the notebooks hold every hidden test
    return root


def require_results(out: Path) -> None:
    """An error that says what to do when OUT holds no graded rows."""
    if not any(results.results_dir(out).glob("*/*/*.json")):
        raise GraderError(f"{out}: no graded rows; run `python -m grader autograde SUBMISSIONS --out {out}` first")
