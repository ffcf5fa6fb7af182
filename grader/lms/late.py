"""The late policy applied at export: `--late-penalty RULE`, the raw score always kept beside.

Rules:
- `zero`: a late submission scores 0;
- `P%` (e.g. `20%`): P percent off anything late, however late;
- `P%/day` with an optional cap, `P%/day,max=C%` (e.g. `10%/day,max=50%`): P percent per started
  day after the deadline, at most C percent (100 without a cap);
- `none`: no penalty (at export: removes the policy an earlier export recorded).
Lateness: with a deadline (`--due`, moved per student by an extension) and a submission time
(Moodle's worksheet, nbgrader's timestamp.txt), the time decides. Without a time, the LMS's own late
flag decides (Canvas's `LATE_` in its file names); a per-day rule then charges one day, and says so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from grader.errors import LmsError

RULE = re.compile(r"^\s*(?:(?P<zero>zero)|(?P<pct>\d+(?:\.\d+)?)%(?P<day>\s*/\s*day(?:\s*,\s*max\s*=\s*(?P<cap>\d+(?:\.\d+)?)%)?)?)\s*$",
                  re.IGNORECASE)


@dataclass(frozen=True)
class Policy:
    kind: str  # zero | flat | per_day | none (`--late-penalty none`: no penalty, an earlier one removed)
    percent: float = 100.0
    cap: float = 100.0

    def text(self) -> str:
        """The rule as `--late-penalty` takes it."""
        if self.kind in ("zero", "none"):
            return self.kind
        if self.kind == "flat":
            return f"{self.percent:g}%"
        return f"{self.percent:g}%/day" + (f",max={self.cap:g}%" if self.cap < 100 else "")

    def describe(self) -> str:
        if self.kind == "none":
            return "no late penalty"
        if self.kind == "zero":
            return "late work scores 0"
        if self.kind == "flat":
            return f"{self.percent:g}% off late work"
        return f"{self.percent:g}% off per started day late, at most {self.cap:g}%"


@dataclass(frozen=True)
class Lateness:
    """Whether a submission is late, by how many started days (None: not known), and how that was decided."""

    late: bool
    days: int | None = None
    how: str = ""


def parse_policy(text: str) -> Policy:
    if (text or "").strip().lower() == "none":
        return Policy("none", 0.0)
    found = RULE.match(text or "")
    if not found:
        raise LmsError(f"--late-penalty {text!r}: expected zero, a percentage for anything late (20%), "
                       f"a percentage per day with an optional cap (10%/day or 10%/day,max=50%), or none")
    if found["zero"]:
        return Policy("zero")
    percent = float(found["pct"])
    cap = float(found["cap"]) if found["cap"] else 100.0
    if percent > 100 or cap > 100:
        raise LmsError(f"--late-penalty {text!r}: a percentage over 100")
    return Policy("per_day" if found["day"] else "flat", percent, cap)


def lateness(submitted_at: datetime | None, flag: bool | None, due: datetime | None) -> Lateness:
    """Late or not: the time against the deadline where both are known, else the LMS's flag."""
    if submitted_at is not None and due is not None:
        if submitted_at <= due:
            return Lateness(False, 0, f"submitted {submitted_at:%Y-%m-%d %H:%M}, due {due:%Y-%m-%d %H:%M}")
        days = math.ceil((submitted_at - due).total_seconds() / 86400)
        return Lateness(True, days, f"submitted {submitted_at:%Y-%m-%d %H:%M}, {days} day(s) after "
                                    f"the deadline {due:%Y-%m-%d %H:%M}")
    if flag:
        return Lateness(True, None, "marked late by the LMS, no submission time")
    return Lateness(False, None, "" if flag is None else "on time per the LMS")


def percent_off(policy: Policy | None, late: Lateness) -> tuple[float, str]:
    """(percent taken off, why in words: how lateness was decided and the rule) for a submission; (0, '')
    when nothing is taken."""
    if policy is None or policy.kind == "none" or not late.late:
        return 0.0, ""
    if policy.kind in ("zero", "flat"):
        return (100.0 if policy.kind == "zero" else policy.percent), f"{late.how}; {policy.describe()}"
    days = late.days if late.days is not None else 1
    charged = "" if late.days is not None else "; charged as 1 day"
    percent = min(policy.cap, policy.percent * days)
    return percent, f"{late.how}{charged}; {policy.describe()}, so {percent:g}% off"


def penalise(policy: Policy | None, raw: float, late: Lateness) -> tuple[float, float, str]:
    """(score, points taken off, a note) for a raw assignment score."""
    percent, why = percent_off(policy, late)
    if not why:
        return raw, 0.0, ""
    taken = round(raw * percent / 100, 2)
    return round(raw - taken, 2), taken, why
