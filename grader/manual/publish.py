"""What a person's grading changes in OUT's pages: each student's page shows its written answers as graded.

The pages are built while grading, before anyone has read the answers; here each page of a row with written
answers has its blocks (pages/written.py: the points and comment beside each answer, the summary's section,
the totals) rewritten from the row as the class's grades now have it. Nothing else on the page is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from grader.pages.summary import anchor
from grader.pages.written import refresh
from grader.results import Row, feedback_path, write_whole


def refresh_pages(out: Path, rows: Sequence[Row]) -> int:
    """Rewrite the written-answer blocks of every page whose row has written answers; how many changed."""
    changed = 0
    for row in rows:
        if not row.written:
            continue
        path = feedback_path(out, row.student_id, row.assignment, row.notebook)
        if not path.exists():
            continue
        page = path.read_text()
        new = refresh(page, row, anchor)
        if new != page:
            write_whole(path, new)
            changed += 1
    return changed
