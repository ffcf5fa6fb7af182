"""Manual scores into the rows: each written answer's score and comment from OUT/manual_grades.csv, by its text.

`apply_marks` is called once, on the rows as graded (OUT/results), where the class's grades are built
(lms/grades.py), before the overrides: a row's score becomes its tests' points plus the written answers'
(`manual_score`), `to_grade` counts the points nobody has graded yet, and the detail says which answers
those are, and which changed since they were graded. The status is left as it is.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Sequence

from grader.manual.store import Key, Mark
from grader.results import Row, WrittenAnswer


COMMENT_CHARS = 120  # a longer comment is cut in the detail (OUT/manual_grades.csv and the page have it whole)


def _points(x: float) -> str:
    return f"{x:g} point{'' if x == 1 else 's'}"


def graded_note(answer: WrittenAnswer) -> str:
    """`written_why_pack 1.5/2 ("Packing, yes; ...")`: a graded answer in the row's detail."""
    comment = " ".join(answer.comment.split())
    if len(comment) > COMMENT_CHARS:
        comment = comment[:COMMENT_CHARS - 1] + "…"
    return f"{answer.grade_id} {answer.score:g}/{answer.points:g}" + (f' ("{comment}")' if comment else "")


def graded_before(row: Row, answer: WrittenAnswer, marks: dict[tuple[str, str, str, str], list[Mark]]) -> Mark | None:
    """The last score given to another text of this answer (the student changed it since), if any."""
    earlier = [m for m in marks.get((row.student_id, row.assignment, row.notebook, answer.grade_id), [])
               if m.answer_sha256 != answer.answer_sha256 and m.score is not None]
    return earlier[-1] if earlier else None


def marked(row: Row, marks: dict[Key, Mark], by_answer: dict) -> Row:
    """`row` with its written answers' marks in, its score, manual score, points to grade and detail."""
    written, notes = [], []
    for answer in row.written:
        mark = marks.get((row.student_id, row.assignment, row.notebook, answer.grade_id, answer.answer_sha256))
        if mark is not None and answer.answer_sha256:
            answer = dataclasses.replace(answer, comment=mark.comment) if mark.score is None else \
                dataclasses.replace(answer, score=mark.score, comment=mark.comment, note="")
        if answer.score is None:
            before = graded_before(row, answer, by_answer)
            if before is not None:
                answer = dataclasses.replace(answer, note=f"changed since it was graded ({before.score:g} / "
                                                          f"{answer.points:g} for the earlier text)")
                notes.append(f"written answer {answer.grade_id} changed since it was graded "
                             f"({before.score:g} / {answer.points:g} for the earlier text): grade it again")
        written.append(answer)
    manual = sum(w.score for w in written if w.score is not None)
    pending = [w for w in written if w.score is None]
    to_grade = sum(w.points for w in pending)
    graded = [w for w in written if w.score is not None and not w.note]
    if graded:
        notes.insert(0, "written answers graded: " + ", ".join(map(graded_note, graded)))
    if pending:
        notes.insert(0, f"written answers to grade ({_points(to_grade)}): " + ", ".join(w.grade_id for w in pending))
    detail = "; ".join(filter(None, [row.detail] + notes))
    return dataclasses.replace(row, written=written, score=row.score + manual, manual_score=manual,
                               to_grade=to_grade, detail=detail)


def apply_marks(rows: Sequence[Row], marks: dict[Key, Mark]) -> list[Row]:
    """The rows as graded, with every written answer's mark applied (rows without written answers unchanged)."""
    by_answer: dict[tuple[str, str, str, str], list[Mark]] = defaultdict(list)
    for mark in marks.values():
        by_answer[mark.key[:4]].append(mark)
    return [marked(r, marks, by_answer) if r.written else r for r in rows]
