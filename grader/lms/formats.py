"""What an LMS's submissions export says, read from its entry names alone.

- Canvas "Download Submissions": flat files `<lastfirst>_[LATE_]<user id>_<attachment id>_<original name>`,
  or `anon_<anonymous id>_[LATE_]<attachment id>_<original name>` with anonymous grading. Canvas
  renames a second upload of one name `<name>-1.<ext>`. Text entries and URLs come as
  `<lastfirst>_<user id>_text.html` / `_link.html`.
- Moodle "Download all submissions": one folder per student, `<Full Name>_<participant id>_assignsubmission_file_/`
  (older) or `..._assignsubmission_file/` (newer), or flat files
  `<Full Name>_<participant id>_assignsubmission_file_<name>`; with blind marking the name is `Participant`.
- nbgrader's exchange after `nbgrader collect`: `submitted/<student>/<assignment>/<files>` with a
  `timestamp.txt` beside them (the export may be the course folder, `submitted/` or its parent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from grader.lms.archive import Entry
from grader.lms.times import iso, parse_time

LMS_NAMES = ("canvas", "moodle", "nbgrader")
CANVAS = re.compile(r"^(?P<who>[^_/]+?)_(?P<late>LATE_)?(?P<uid>\d+)_(?P<att>\d+)_(?P<file>.+)$")
CANVAS_ANON = re.compile(r"^anon_(?P<anon>[^_/]+)_(?P<late>LATE_)?(?P<att>\d+)_(?P<file>.+)$")
CANVAS_TEXT = re.compile(r"^(?P<who>[^_/]+?)_(?P<late>LATE_)?(?P<uid>\d+)_(?P<kind>text|link)\.html$")
MOODLE_FOLDER = re.compile(r"^(?P<who>.+)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[a-z]+)_?$")
MOODLE_FLAT = re.compile(r"^(?P<who>.+)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.+)$")
MOODLE_BLIND = "Participant"
TIMESTAMP = "timestamp.txt"
SECRET = "submission_secret.txt"  # nbgrader submit's; release_feedback names the feedback page after it


@dataclass(frozen=True)
class Submitted:
    """One entry of the export as its LMS identifies it: whose file it is and when it came, or why it cannot
    be used (then `lms_id` is '' when it belongs to nobody known)."""

    lms_id: str  # Canvas user id or `anon_<id>`, Moodle participant id, nbgrader student id
    name: str  # the student's name as the LMS wrote it ('' when anonymous)
    file: str  # the file name the student uploaded (LMS renames included); the entry's name when unusable
    entry: Entry
    late: bool | None = None  # None: the export does not say
    submitted_at: str = ""  # ISO 8601, '' when the export does not say
    newness: tuple = ()  # larger is newer: Canvas's attachment id, else the time
    unusable: str = ""  # why this entry cannot be graded ('' when it can)


def canvas_ids(entry: str) -> tuple[str, str, str] | None:
    """(lastfirst, user id, attachment id) of a file named as Canvas's "Download Submissions" names it;
    None for any other name (an anonymous one has no user id)."""
    named = None if CANVAS_ANON.match(entry) else CANVAS.match(entry.rsplit("/", 1)[-1])
    return (named["who"], named["uid"], named["att"]) if named else None


def unusable(entry: Entry, reason: str, lms_id: str = "", name: str = "") -> Submitted:
    """An entry that is not a student's notebook file, and why."""
    return Submitted(lms_id, name, entry.name, entry, unusable=reason)


def detect(entries: Iterable[Entry]) -> str | None:
    """Which LMS laid out these entries: `canvas`, `moodle`, `nbgrader`, or None."""
    entries = list(entries)
    if any(e.parts[-1] == TIMESTAMP and len(e.parts) >= 3 for e in entries):
        return "nbgrader"
    if any("_assignsubmission_" in e.parts[0] for e in entries):
        return "moodle"
    if any(len(e.parts) == 1 and (CANVAS.match(e.name) or CANVAS_ANON.match(e.name)) for e in entries):
        return "canvas"
    return None


def canvas(entries: Iterable[Entry]) -> list[Submitted]:
    """Canvas's flat files; the attachment id orders one student's files, `LATE_` flags lateness."""
    found = []
    for e in entries:
        if len(e.parts) != 1:
            found.append(unusable(e, "in a folder: Canvas's export is flat files"))
            continue
        anon = CANVAS_ANON.match(e.name)
        named = None if anon else CANVAS.match(e.name)
        text = CANVAS_TEXT.match(e.name)
        if anon:
            found.append(Submitted(f"anon_{anon['anon']}", "", anon["file"], e, bool(anon["late"]),
                                   newness=(int(anon["att"]),)))
        elif named:
            found.append(Submitted(named["uid"], named["who"], named["file"], e, bool(named["late"]),
                                   newness=(int(named["att"]),)))
        elif text:
            found.append(unusable(e, f"a {'text entry' if text['kind'] == 'text' else 'URL'}, not a file",
                                  text["uid"], text["who"]))
        else:
            found.append(unusable(e, "not named as Canvas names a submission "
                                     "(<lastfirst>_<user id>_<attachment id>_<file>): whose is it?"))
    return found


def moodle(entries: Iterable[Entry]) -> list[Submitted]:
    """Moodle's per-student folders (old and new names) or flat files; the file's time orders them."""
    found = []
    for e in entries:
        top = e.parts[0]
        folder = MOODLE_FOLDER.match(top) if len(e.parts) > 1 else None
        flat = MOODLE_FLAT.match(top) if len(e.parts) == 1 else None
        hit = folder or flat
        if not hit:
            found.append(unusable(e, "not named as Moodle names a submission "
                                     "(<Full Name>_<participant id>_assignsubmission_file_): whose is it?"))
            continue
        who = "" if hit["who"] == MOODLE_BLIND else hit["who"]
        if hit["plugin"] != "file":
            found.append(unusable(e, f"a Moodle {hit['plugin']} submission, not a file", hit["pid"], who))
            continue
        file = "/".join(e.parts[1:]) if folder else flat["file"]
        when = iso(e.mtime)
        found.append(Submitted(hit["pid"], who, file, e, None, when, (when, e.name)))
    return found


def nbgrader(entries: Iterable[Entry], assignment: str, read_text: Callable[[Entry], str],
             beside: dict[str, dict[str, str]] | None = None) -> tuple[list[Submitted], int]:
    """nbgrader's `submitted/<student>/<assignment>/`; timestamp.txt gives the time. Also the number of
    entries that belong to other assignments (left alone). `beside` gets, per student, the text of the files
    nbgrader's exchange needs back beside the feedback (timestamp.txt, submission_secret.txt)."""
    times: dict[str, str] = {}  # student -> when timestamp.txt says they submitted
    placed: list[tuple[Entry, str, str]] = []
    found, others = [], 0
    beside = beside if beside is not None else {}
    for e in entries:
        parts = e.parts
        if "submitted" in parts[:-1]:
            parts = parts[len(parts) - 1 - parts[::-1].index("submitted") + 1:]
        if len(parts) < 3:
            found.append(unusable(e, "not in nbgrader's submitted/<student>/<assignment>/ layout"))
            continue
        student, folder, name = parts[0], parts[1], "/".join(parts[2:])
        if folder != assignment:
            others += 1
        elif name == TIMESTAMP:
            text = read_text(e)
            try:
                times[student] = iso(parse_time(text))
            except ValueError as exc:
                found.append(unusable(e, f"unreadable timestamp: {exc}", student))
            else:
                beside.setdefault(student, {})[TIMESTAMP] = text
        elif name == SECRET:
            beside.setdefault(student, {})[SECRET] = read_text(e)
        else:
            placed.append((e, student, name))
    for e, student, name in placed:
        when = times.get(student, "")
        found.append(Submitted(student, "", name, e, None, when, (when, e.name)))
    return found, others
