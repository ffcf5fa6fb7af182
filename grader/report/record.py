"""What the class report needs beyond the rows, kept in OUT so that it can be rebuilt without the
submissions: the last run's settings and sandbox warning, and the similar-submissions findings of each
notebook as its last grading found them (a term's assignments are graded from different folders).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.report import similarity
from grader.results import write_whole

RECORD_NAME = "report-data.json"


@dataclass
class ReportRecord:
    settings: dict[str, str] = field(default_factory=dict)  # the last run's (sandbox, grader version, when)
    warning: str | None = None  # the last run's sandbox warning
    similarity: dict[str, similarity.Similarity] = field(default_factory=dict)  # notebook key -> findings


def load(out: Path) -> ReportRecord:
    path = out / RECORD_NAME
    if not path.exists():
        return ReportRecord()
    data = json.loads(path.read_text(encoding="utf-8"))
    return ReportRecord(data.get("settings", {}), data.get("warning"), similarity.from_json(data.get("similarity", {})))


def update(out: Path, settings: dict[str, str], warning: str | None,
           found: dict[str, similarity.Similarity]) -> ReportRecord:
    """The record after a run: its settings and warning, its notebooks' findings replacing earlier ones."""
    record = load(out)
    record = ReportRecord(settings, warning, {**record.similarity, **found})
    write_whole(out / RECORD_NAME, json.dumps({"settings": record.settings, "warning": record.warning,
                                               "similarity": similarity.to_json(record.similarity)}, indent=1))
    return record
