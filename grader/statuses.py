"""The status vocabulary of grades.csv: each status defined once, read by the CSV, feedback, report and README.

A status says what happened to one student x notebook. Its definition here holds everything any
reader needs: the name in grades.csv, what it means for the instructor, how the score is counted,
what the student's feedback page says, and how the class report shows it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Status:
    """One status: its name and what each reader is told about it."""

    name: str
    meaning: str  # for the instructor: README table, report
    score: str  # how the score is counted
    student: str  # the feedback page's words ("" where the score says it all)
    colour: str  # the report's colour for it
    needs_look: bool = True  # listed under "rows that need a look" in the report


_ALL = [
    Status("graded", "ran to the end, every cell within its time limit", "the tests that passed",
           "", "#060", needs_look=False),
    Status("timeout", "a cell hit the per-cell limit and was interrupted; grading went on (if the kernel ignored "
                      "the interrupt it was stopped and the remaining cells count as failed)",
           "the tests that passed",
           "A cell ran past the time limit and was interrupted; the tests that passed still count.", "#b00"),
    Status("kernel_died", "the kernel died (a crash, `os._exit`, running out of memory)",
           "the tests that passed before it died; the cells after it score 0",
           "The Python kernel died while running your notebook; tests that passed before that still count.", "#b00"),
    Status("output_limit", "a cell printed more than the output limit (2 MB): the rest was dropped and the cell "
                           "interrupted, grading went on; or it sent a single output over 64 MB, which is dropped "
                           "unread and the kernel stopped (the cells after it count as failed)",
           "the tests that passed",
           "A cell printed too much output; it was cut and the cell interrupted.", "#b00"),
    Status("invalid_notebook", "not JSON, not a valid notebook, or over 50 MB",
           "0", "Your file could not be read as a Jupyter notebook, so nothing could be graded.", "#b00"),
    Status("missing", "the student submitted the assignment, but not this notebook (the detail lists what was found)",
           "0", "This notebook was not found in your submission.", "#888"),
    Status("not_submitted", "the student has no folder for this assignment", "0",
           "You did not submit this assignment.", "#888"),
    Status("tampered", "grade or test cells deleted, duplicated, renamed or their metadata edited (restored, then "
                       "graded), or a cheat attempt seen in the code or the kernel (listed for review)",
           "as graded after restoring: the tests run where the student's code cannot reach them, so an attempt "
           "changes nothing",
           "Your notebook changed or worked around the grading cells; they were restored before grading, and an "
           "instructor will review it.", "#b00"),
    Status("error", "the grader itself failed on this notebook: a bug (the detail says where; the traceback is kept "
                    "in `OUT/results/<student>/<assignment>/<notebook>.json`), the kernel running the tests died or "
                    "stopped answering, or the grading process died twice",
           "0", "The grader could not grade this notebook because of a problem on our side, not in your work. "
                "Your instructor has been told and will grade it again.", "#b00"),
]
STATUSES: dict[str, Status] = {s.name: s for s in _ALL}


def status(name: str) -> Status:
    """The definition of status `name`."""
    return STATUSES[name]


def readme_table() -> str:
    """The README's table of statuses, as Markdown."""
    lines = ["| status | meaning | score |", "| --- | --- | --- |"]
    lines += [f"| `{s.name}` | {s.meaning} | {s.score} |" for s in _ALL]
    return "\n".join(lines)


def report_css() -> str:
    """CSS classes `s-<status>` for the report."""
    return "\n".join(f".s-{s.name} {{ color: {s.colour};{' font-weight: bold;' if s.needs_look and s.colour == '#b00' else ''} }}"
                     for s in _ALL)
