"""Realistic LMS exports and rosters, built in code for the collect and export tests."""

from __future__ import annotations

import csv
import io
import stat
import zipfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

WHEN = (2025, 3, 7, 12, 0, 0)


def notebook_bytes(tag: str) -> bytes:
    """A small valid notebook whose one cell says `tag` (to tell files apart after collect)."""
    return (nbformat.writes(new_notebook(cells=[new_code_cell(f"# {tag}", id="c1")])) + "\n").encode()


def tag_of(path: Path) -> str:
    """The tag notebook_bytes wrote into a collected file."""
    return nbformat.read(path, as_version=4).cells[0].source.removeprefix("# ")


def write_zip(path: Path, files: dict, times: dict | None = None) -> Path:
    """A zip of {entry name: bytes}; `times` gives some entries their own date_time."""
    times = times or {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=times.get(name, WHEN))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            z.writestr(info, data)
    return path


def add_symlink(path: Path, name: str, target: str) -> None:
    """Append a symlink entry (as `zip -y` stores one) to the zip at `path`."""
    with zipfile.ZipFile(path, "a") as z:
        info = zipfile.ZipInfo(name, date_time=WHEN)
        info.create_system = 3  # unix, so the mode bits count
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, target)


def canvas(lastfirst: str, uid: int, attachment: int, filename: str, late: bool = False) -> str:
    """Canvas's name for one submitted file."""
    return f"{lastfirst}_{'LATE_' if late else ''}{uid}_{attachment}_{filename}"


def canvas_anon(anon: str, attachment: int, filename: str, late: bool = False) -> str:
    return f"anon_{anon}_{'LATE_' if late else ''}{attachment}_{filename}"


def moodle_folder(full_name: str, participant: int, new: bool = False) -> str:
    """Moodle's folder for one student (`..._file_` before Moodle 4, `..._file` after)."""
    return f"{full_name}_{participant}_assignsubmission_file{'' if new else '_'}"


def csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def canvas_gradebook(students: list[tuple[str, int, str, str]], assignments: dict[str, str] | None = None) -> str:
    """Canvas's gradebook export: students as (name "Last, First", user id, SIS user id, SIS login id),
    assignment columns {column: points possible}, the Points Possible row, and the totals Canvas adds."""
    assignments = assignments or {"Packed sequences (4242)": "10.00", "Seq2seq (4243)": "20.00",
                                  "BiLSTM tagger (4244)": "15.00"}
    totals = ["Current Points", "Final Points", "Current Score", "Final Score"]
    rows = [CANVAS_HEADER + list(assignments) + totals,
            ["    Points Possible", "", "", "", ""] + list(assignments.values()) + ["(read only)"] * 4]
    for name, uid, sis, login in students:
        rows.append([name, str(uid), sis, login, "Sequence models 2025"] + ["" for _ in assignments] + ["0.00"] * 4)
    rows.append(["Student, Test", "99", "", "", "Sequence models 2025"] + ["" for _ in assignments] + ["0.00"] * 4)
    return csv_text(rows)


MOODLE_HEADER = ["Identifier", "Full name", "ID number", "Email address", "Status", "Grade", "Maximum Grade",
                 "Grade can be changed", "Last modified (submission)", "Online text", "Last modified (grade)",
                 "Feedback comments"]


def moodle_worksheet(students: list[tuple[int, str, str, str, str, str]], maximum: str = "10.00") -> str:
    """Moodle's grading worksheet: students as (participant id, full name, ID number, email, status,
    last modified (submission))."""
    rows = [MOODLE_HEADER]
    for pid, name, idnumber, email, status, modified in students:
        rows.append([f"Participant {pid}", name, idnumber, email, status, "", maximum, "Yes", modified, "",
                     "-", ""])
    return csv_text(rows)
