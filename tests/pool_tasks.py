"""Stand-in grading tasks for the pool's tests: module-level, so worker processes can import them."""

from __future__ import annotations

import os
import signal
import time

from grader.grading.task import Result
from grader.results import Row


def quick(submission, course, settings, worker) -> Result:
    """A result at once, naming the process that made it; a `killer` student kills its own process."""
    if submission.student.startswith("killer"):
        os.kill(os.getpid(), signal.SIGKILL)
    if submission.student.startswith("slow"):
        time.sleep(1)
    notebook = submission.notebook
    row = Row(submission.student, notebook.assignment, notebook.name, 1.0, 1.0, "graded", f"pid {os.getpid()}")
    return Result(row, f"page of {submission.student}")
