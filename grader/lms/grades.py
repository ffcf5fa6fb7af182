"""The class's grades: every row saved in OUT, with the scores people gave written answers, the instructor's
overrides, what collect knew and the export choices (late policy, points) applied.

Built here, once each time they are needed, from the rows as graded (OUT/results): first the manual scores
(read back from formgrader into OUT/manual_grades.csv, grader/manual/), then OUT/overrides.csv, the collect
manifest and the policies. autograde and `refresh` write grades.csv, the report and each feedback page's grade
(and its written answers' points and comments) from them, and `export` totals them for an LMS. Nothing reads
grades.csv back to build on it, so an override is applied to a graded score exactly once, and an edit of
OUT/overrides.csv, of the late policy or a grade given in formgrader after grading reaches grades.csv, the pages
and the LMS alike the next time they are built.

A late penalty is a percentage of the assignment's score (after overrides); each notebook's row carries
its own share of the points taken off, so that the rows of an assignment add up to what the LMS gets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from grader import results
from grader.lms import manifest, policy
from grader.lms.late import lateness, percent_off
from grader.lms.times import iso, parse_time
from grader.manual.course import harvest
from grader.manual.scores import apply_marks
from grader.manual.store import read_marks
from grader.overrides import apply_overrides, read_overrides, unmatched_overrides
from grader.results import Row


@dataclass
class Total:
    """One student's result for one assignment: the sum over its notebooks, the late penalty, the score."""

    student: str
    assignment: str
    raw: float = 0.0  # after overrides, before the late penalty
    max_score: float = 0.0
    rows: list[Row] = field(default_factory=list)
    late_flag: bool | None = None
    submitted_at: str = ""
    due: str = ""
    penalty: float = 0.0
    note: str = ""
    lms_points: float | None = None  # the LMS's points possible, when scores are scaled to them

    @property
    def score(self) -> float:
        """After the late penalty, in the grader's points."""
        return round(self.raw - self.penalty, 2)

    @property
    def lms_score(self) -> float:
        """What the LMS gets: the score, scaled to the LMS's points possible when so chosen."""
        if self.lms_points is None or not self.max_score:
            return self.score
        return round(self.score * self.lms_points / self.max_score, 2)

    @property
    def lms_max(self) -> float:
        return self.max_score if self.lms_points is None else self.lms_points

    @property
    def notebooks(self) -> list[str]:
        """`seq2seq 7/10 graded`, one per notebook."""
        return [f"{r.notebook} {r.score:g}/{r.max_score:g} {r.status}" for r in self.rows]


@dataclass
class Grades:
    """The class's rows as the instructor sees them, their totals per assignment, and the overrides that
    named no row."""

    rows: list[Row]
    unmatched: list[str] = field(default_factory=list)
    totals: dict[tuple[str, str], Total] = field(default_factory=dict)

    @property
    def assignments(self) -> list[str]:
        """The assignments that have grades, in the order of the rows."""
        return list(dict.fromkeys(r.assignment for r in self.rows))


def _flag(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text.strip().lower())


def totals(rows: list[Row]) -> dict[tuple[str, str], Total]:
    """{(student, assignment): Total}: scores summed over notebooks, late flag and latest time per assignment."""
    found: dict[tuple[str, str], Total] = {}
    flags: dict[tuple[str, str], list[bool]] = {}
    for r in rows:
        key = (r.student_id, r.assignment)
        t = found.setdefault(key, Total(*key))
        t.raw += r.score
        t.max_score += r.max_score
        t.rows.append(r)
        flag = _flag(r.late)
        if flag is not None:
            flags.setdefault(key, []).append(flag)
        if r.submitted_at and (not t.submitted_at or parse_time(r.submitted_at) > parse_time(t.submitted_at)):
            t.submitted_at = r.submitted_at
    for key, t in found.items():
        t.late_flag = any(flags[key]) if key in flags else None
        t.raw, t.max_score = round(t.raw, 2), round(t.max_score, 2)
    return found


def apply_policies(found: dict[tuple[str, str], Total], policies: dict[str, policy.AssignmentPolicy]) -> None:
    """Each total's deadline, late penalty (shared out over its rows) and LMS points, in place; with a
    deadline and a submission time, the time decides whether it is late."""
    for t in found.values():
        chosen = policies.get(t.assignment)
        if chosen is None:
            continue
        deadline = chosen.deadline(t.student)
        t.due = iso(deadline)
        late = lateness(parse_time(t.submitted_at) if t.submitted_at else None, t.late_flag, deadline)
        if late.days is not None:
            t.late_flag = late.late
        percent, why = percent_off(chosen.rule(), late)
        t.lms_points = chosen.scaled_to()
        shared = []
        for row in t.rows:
            taken = round(row.score * percent / 100, 2) if why else 0.0
            shared.append(dataclasses.replace(row, late_penalty=taken, late_note=why, lms_points=t.lms_points,
                                              assignment_max=t.max_score))
        t.rows = shared
        t.penalty = round(sum(r.late_penalty for r in shared), 2)
        t.note = f"late: {why}; raw {t.raw:g}" if why else ""


def grade_rows(rows: list[Row], collected: manifest.Collected, policies: dict[str, policy.AssignmentPolicy],
               overrides: list) -> Grades:
    """The class's grades from rows as graded: overrides, then what collect knew, then the export choices."""
    changed = apply_overrides(rows, overrides)
    annotated = manifest.annotate(changed, collected)
    found = totals(annotated)
    apply_policies(found, policies)
    by_key = {(r.student_id, r.assignment, r.notebook): r for t in found.values() for r in t.rows}
    final = [by_key[(r.student_id, r.assignment, r.notebook)] for r in annotated]
    return Grades(final, unmatched_overrides(changed, overrides), found)


def class_grades(out: Path, collected: manifest.Collected | None = None) -> Grades:
    """The rows saved under OUT with the manual scores (what formgrader's gradebook holds read back first) and
    OUT/overrides.csv applied, annotated from OUT's collect manifest (or `collected`), with the late policy and
    points chosen at export (OUT/policy.json)."""
    if collected is None:
        collected = manifest.read(out)
    harvest(out)
    rows = apply_marks(results.load_all(out), read_marks(out))
    return grade_rows(rows, collected, policy.load(out), read_overrides(out))


def bring_up_to_date(out: Path, grades: Grades) -> list[Path]:
    """grades.csv, and the grade block and written answers' blocks of every feedback page, as `grades` say (each
    file written whole, only when it changes; the rest of a page is never rendered again). The pages rewritten."""
    from grader.pages import written
    from grader.pages.summary import anchor, refresh_grade

    results.write_csv(out, grades.rows)
    changed = []
    for row in grades.rows:
        path = results.feedback_path(out, row.student_id, row.assignment, row.notebook)
        if not path.exists():
            continue
        page = path.read_text(encoding="utf-8")
        new = refresh_grade(page, row)
        if row.written:
            new = written.refresh(page if new is None else new, row, anchor)
        if new is not None and new != page:
            results.write_whole(path, new)
            changed.append(path)
    return changed
