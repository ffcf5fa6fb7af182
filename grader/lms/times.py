"""Reading the dates LMSs write (nbgrader's timestamp.txt, Moodle's worksheet, a `--due`) as aware datetimes.

A time that names no zone is taken in `tz`, the grading machine's local zone unless told otherwise:
that is how an instructor writes `--due 2025-03-07 23:59` and how Moodle prints its dates.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone, tzinfo

# Moodle prints dates in the site's language; these are the English forms (UK, US) and ISO.
FORMATS = (
    "%A, %d %B %Y, %I:%M %p",  # Wednesday, 23 September 2020, 9:00 PM (Moodle's default)
    "%A, %B %d, %Y, %I:%M %p",  # Wednesday, September 23, 2020, 9:00 PM
    "%A, %d %B %Y, %H:%M",
    "%d %B %Y, %I:%M %p",
    "%d %B %Y, %H:%M",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
UTC_NAMES = re.compile(r"\s*(UTC|GMT|Z)$", re.IGNORECASE)


def parse_time(text: str | None, tz: tzinfo | None = None) -> datetime | None:
    """`text` as an aware datetime; None for blank or `-` (Moodle's "never"); ValueError if unreadable."""
    text = " ".join((text or "").split())
    if text in {"", "-"}:
        return None
    zone = tz
    if UTC_NAMES.search(text) and not re.search(r"[+-]\d\d:?\d\d$", text):
        text, zone = UTC_NAMES.sub("", text), timezone.utc
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for fmt in FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"cannot read {text!r} as a date and time (expected e.g. 2025-03-07 23:59)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone) if zone is not None else parsed.astimezone()
    return parsed


def iso(moment: datetime | None) -> str:
    """ISO 8601 with its offset, to the second ('' for None): how the manifest and grades.csv write times."""
    return moment.isoformat(timespec="seconds") if moment is not None else ""
