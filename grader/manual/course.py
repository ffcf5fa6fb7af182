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
SYNCED = ".synced.json"  # per notebook, what build wrote: the copy (made from which file) and each answer's mark
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


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """A notebook nbgrader wrote, read without validating it again (the schema check costs more than the rest)."""
    return nbformat.from_dict(json.loads(path.read_text(encoding="utf-8")))


def write_notebook(nb: nbformat.NotebookNode) -> str:
    """A notebook as nbformat writes it (sorted keys, one space of indent), without validating it again."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def _read_synced(root: Path) -> dict:
    path = root / SYNCED
    return json.loads(path.read_text()) if path.exists() else {}


Where = tuple[str, str, str]  # student, assignment, notebook


def _cells(gb, model) -> dict[Where, dict[str, object]]:
    """{(student, assignment, notebook): {grade id: row}} of every Grade or Comment in the gradebook, in one query
    (nbgrader's own accessors load them one by one: minutes for a large class)."""
    from nbgrader.api import Assignment, BaseCell, Notebook, SubmittedAssignment, SubmittedNotebook

    query = (gb.db.query(model, SubmittedAssignment.student_id, Assignment.name, Notebook.name, BaseCell.name)
             .join(BaseCell, model.cell_id == BaseCell.id)
             .join(SubmittedNotebook, model.notebook_id == SubmittedNotebook.id)
             .join(Notebook, SubmittedNotebook.notebook_id == Notebook.id)
             .join(SubmittedAssignment, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
             .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id))
    found: dict[Where, dict[str, object]] = {}
    for entry, student, assignment, notebook, cell in query:
        found.setdefault((student, assignment, notebook), {})[cell] = entry
    return found


def _add_submissions(gb, wanted: set[tuple[str, str]]) -> None:
    """Every (student, assignment) in `wanted` in the gradebook, with its notebooks' grades and comments, as
    nbgrader's `add_student` and `add_submission` make them, in one transaction (they commit one by one)."""
    from nbgrader.api import Assignment, Comment, Grade, Student, SubmittedAssignment, SubmittedNotebook

    present = set(gb.db.query(SubmittedAssignment.student_id, Assignment.name)
                  .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id))
    students = {s.id: s for s in gb.db.query(Student)}
    assignments = {a.name: a for a in gb.db.query(Assignment)}
    with gb.db.no_autoflush:
        for student, assignment in sorted(wanted - present):
            if student not in students:
                students[student] = Student(id=student)
                gb.db.add(students[student])
            submission = SubmittedAssignment(assignment=assignments[assignment], student=students[student])
            gb.db.add(submission)
            for notebook in assignments[assignment].notebooks:
                submitted = SubmittedNotebook(notebook=notebook, assignment=submission)
                gb.db.add(submitted)
                gb.db.add_all([Grade(cell_id=cell.id, notebook=submitted) for cell in notebook.grade_cells] +
                              [Comment(cell_id=cell.id, notebook=submitted) for cell in notebook.solution_cells])
    gb.db.commit()


def harvest(out: Path) -> int:
    """Copy the scores and comments a person changed in OUT/course's gradebook into OUT/manual_grades.csv, each
    under the text of the answer as formgrader showed it; the number of answers changed."""
    root = course_root(out)
    synced = _read_synced(root)
    if not synced or not (root / "gradebook.db").exists():
        return 0
    from nbgrader.api import Comment, Grade, Gradebook

    marks = read_marks(out)
    changed = 0
    with Gradebook(_db_url(root)) as gb:
        grades, comments = _cells(gb, Grade), _cells(gb, Comment)
        for where, written in synced.items():
            student, assignment, notebook = where.split("/")
            for gid, was in written["answers"].items():
                grade = grades.get((student, assignment, notebook), {}).get(gid)
                comment = comments.get((student, assignment, notebook), {}).get(gid)
                score = None if grade is None or grade.manual_score is None else \
                    float(grade.manual_score) + float(grade.extra_credit or 0.0)
                text = (comment.manual_comment or "") if comment is not None else ""
                if grade is not None and (score, text) != (was["score"], was["comment"]):
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


def _record(row: Row, marks: dict[Key, Mark], grades: dict, comments: dict) -> dict[str, dict]:
    """Write one row's scores into its gradebook entries: the tests as autograded, each written answer's mark for
    its present text; what was written, per written answer."""
    where = (row.student_id, row.assignment, row.notebook)
    tests = {c.grade_id: c.score for c in row.cells}
    answers = {w.grade_id: w for w in row.written}
    marked = {gid: marks.get((*where, gid, w.answer_sha256)) for gid, w in answers.items()}
    for gid, grade in grades.get(where, {}).items():
        grade.extra_credit = None
        if gid in answers:
            grade.auto_score = answers[gid].score  # 0 when left unanswered, else None
            grade.manual_score = marked[gid].score if marked[gid] is not None else None
            grade.needs_manual_grade = grade.auto_score is None and grade.manual_score is None
        else:
            grade.auto_score, grade.manual_score, grade.needs_manual_grade = tests.get(gid, 0.0), None, False
    for gid, answer in answers.items():
        comment = comments.get(where, {}).get(gid)
        if comment is not None:
            comment.manual_comment = marked[gid].comment if marked[gid] is not None and marked[gid].comment else None
            comment.auto_comment = "No response." if answer.score is not None else None
    return {gid: {"sha": w.answer_sha256,
                  "score": marked[gid].score if marked[gid] is not None else None,
                  "comment": marked[gid].comment if marked[gid] is not None else ""} for gid, w in answers.items()}


def _prune(gb, root: Path, kept: set[Where]) -> None:
    """Remove the submissions (and notebooks) of rows that no longer have a graded notebook."""
    from nbgrader.api import Grade

    present: dict[tuple[str, str], set[str]] = {}
    for student, assignment, notebook in _cells(gb, Grade):
        present.setdefault((student, assignment), set()).add(notebook)
    for (student, assignment), notebooks in present.items():
        for name in notebooks - {n for s, a, n in kept if (s, a) == (student, assignment)}:
            autograded_path(root, student, assignment, name).unlink(missing_ok=True)
        if not any((student, assignment, name) in kept for name in notebooks):
            gb.remove_submission(assignment, student)


def build(out: Path, prepared: PreparedCourse) -> Path:
    """OUT/course from the rows saved in OUT (after reading back what people graded there); its root (not made
    while no row has an autograded notebook)."""
    from nbgrader.api import Comment, Grade, Gradebook

    out = out.resolve()
    harvest(out)
    root = course_root(out)
    rows = [r for r in results.load_all(out) if results.graded_path(out, r.student_id, r.assignment, r.notebook)
            .exists() and prepared.source(Notebook(r.assignment, r.notebook)).exists()]
    if not rows and not (root / "gradebook.db").exists():
        return root  # no notebook ran: nothing to grade by hand yet
    if not (root / "gradebook.db").exists() or not (root / TEMPLATE).exists() or \
            (root / TEMPLATE).read_text() != prepared.root.name:
        _fresh(root, prepared)
    marks = read_marks(out)
    before, synced, kept = _read_synced(root), {}, set()
    sources: dict[Notebook, nbformat.NotebookNode] = {}
    with Gradebook(_db_url(root)) as gb:
        _add_submissions(gb, {(r.student_id, r.assignment) for r in rows})
        grades, comments = _cells(gb, Grade), _cells(gb, Comment)
        for row in rows:
            graded = results.graded_path(out, row.student_id, row.assignment, row.notebook)
            notebook = Notebook(row.assignment, row.notebook)
            where = f"{row.student_id}/{row.assignment}/{row.notebook}"
            dest = autograded_path(root, row.student_id, row.assignment, row.notebook)
            notes = {w.grade_id: w.note for w in apply_marks([row], marks)[0].written}
            made_from = f"{graded.stat().st_mtime_ns}:{graded.stat().st_size}:{json.dumps(notes, sort_keys=True)}"
            if not dest.exists() or before.get(where, {}).get("copy") != made_from:  # a large class: copy what changed
                if notebook not in sources:
                    sources[notebook] = nbformat.read(prepared.source(notebook), as_version=4)
                copy = formgrader_copy(read_notebook(graded), sources[notebook], prepared.facts(notebook),
                                       {c.grade_id: c.score for c in row.cells}, notes)
                write_whole(dest, write_notebook(copy))
            synced[where] = {"copy": made_from, "answers": _record(row, marks, grades, comments)}
            kept.add((row.student_id, row.assignment, row.notebook))
        _prune(gb, root, kept)
        gb.db.commit()  # once: a commit per row costs a disk sync each
    write_whole(root / SYNCED, json.dumps(synced, indent=1))
    os.chmod(root, 0o700)  # the gradebook and the notebooks hold every hidden test
    return root


def require_results(out: Path) -> None:
    """An error that says what to do when OUT holds no graded rows."""
    if not any(results.results_dir(out).glob("*/*/*.json")):
        raise GraderError(f"{out}: no graded rows; run `python -m grader autograde SUBMISSIONS --out {out}` first")
