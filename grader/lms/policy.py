"""What the instructor chose at export, kept per assignment in OUT/policy.json: the late policy and how
points meet the LMS's.

`export` records its choices for each assignment it writes (`--late-penalty` with `--due` and each
student's own deadline; `--scale-to-lms` or `--points-as-graded` when the LMS's points possible differ
from the grader's maximum), so that grades.csv, the report, every feedback page and the next export
all state the same grade, and a later export (after an override, say) applies them again without being
told. `--late-penalty none` removes an assignment's late policy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from grader.errors import LmsError
from grader.lms.late import Policy, parse_policy
from grader.lms.times import parse_time
from grader.results import write_whole

POLICY_NAME = "policy.json"
SCALE, AS_GRADED = "scale", "as_graded"


@dataclass(frozen=True)
class AssignmentPolicy:
    """One assignment's export choices."""

    late_penalty: str = ""  # the rule as given to --late-penalty ('' for none)
    due: str = ""  # the deadline, ISO 8601 ('' when not given)
    dues: dict[str, str] = field(default_factory=dict)  # student -> their own deadline (extensions, roster)
    points: str = ""  # SCALE or AS_GRADED when the LMS's points possible differ; '' otherwise
    lms_points: float | None = None  # the LMS's points possible for the assignment, when known

    def rule(self) -> Policy | None:
        return parse_policy(self.late_penalty) if self.late_penalty else None

    def deadline(self, student: str) -> datetime | None:
        """The student's own deadline, else the assignment's."""
        text = self.dues.get(student) or self.due
        return parse_time(text) if text else None

    def scaled_to(self) -> float | None:
        """The LMS's points, when scores are scaled to them."""
        return self.lms_points if self.points == SCALE else None


def policy_path(out: Path) -> Path:
    return out / POLICY_NAME


def load(out: Path) -> dict[str, AssignmentPolicy]:
    """{assignment: its choices}, empty when nothing was exported yet."""
    path = policy_path(out)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {a: AssignmentPolicy(**p) for a, p in data.items()}
    except (OSError, ValueError, TypeError) as exc:
        raise LmsError(f"{path}: unreadable ({exc}); remove it and export again with --late-penalty") from None


def save(out: Path, policies: dict[str, AssignmentPolicy]) -> Path:
    path = policy_path(out)
    write_whole(path, json.dumps({a: asdict(p) for a, p in sorted(policies.items())}, indent=1) + "\n")
    return path
