"""Reading an LMS export, a zip or a folder, without trusting it.

Every entry is checked before anything is read: an absolute path, a `..` component, a symlink, an
encrypted or special entry, or one over the size limit is refused with its reason, and reading
stops at the limit whatever the entry's header claims (a zip bomb). The export itself is only ever
opened for reading. Operating-system debris (`__MACOSX`, `.DS_Store`, checkpoints) is skipped.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path, PurePosixPath

from grader.course.layout import IGNORED_NAMES
from grader.course.matching import Filed
from grader.errors import LmsError

MAX_ENTRY_BYTES = 50 * 2**20  # the largest notebook autograde accepts
MAX_TOTAL_BYTES = 2 * 2**30  # all entries together
MAX_ENTRIES = 20_000
# Debris an operating system or a browser leaves in an export; never a submission.
DEBRIS = IGNORED_NAMES | {".DS_Store", "Thumbs.db", "desktop.ini"}
DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Limits:
    """How much one export may hold: per entry, in all, and how many entries."""

    entry_bytes: int = MAX_ENTRY_BYTES
    total_bytes: int = MAX_TOTAL_BYTES
    entries: int = MAX_ENTRIES


@dataclass(frozen=True)
class Entry:
    """One file in the export: its path inside it (POSIX, checked), declared size and time."""

    name: str
    size: int
    mtime: datetime | None = None
    index: int = 0  # position in the export: a zip may hold one name twice

    @property
    def parts(self) -> tuple[str, ...]:
        return PurePosixPath(self.name).parts


def refusal(name: str, reason: str) -> Filed:
    """An entry that is not read, and why: it goes nowhere."""
    return Filed(name, why=reason, entry=name)


class TooLarge(ValueError):
    """An entry produced more bytes than the limit allows."""


def unsafe(name: str) -> str | None:
    """Why an entry name must not be used as a path (None when it is safe)."""
    if "\x00" in name:
        return "its name holds a NUL byte"
    posix = name.replace("\\", "/")
    if posix.startswith("/") or DRIVE.match(posix):
        return "absolute path"
    if ".." in posix.split("/"):
        return "path leaves the export (`..`)"
    return None


def clean(name: str) -> str:
    """A safe entry name in POSIX form, without empty or `.` components."""
    return "/".join(p for p in name.replace("\\", "/").split("/") if p not in {"", "."})


def debris(name: str) -> bool:
    """Hidden files, OS and LMS debris, at any depth."""
    return any(part.startswith(".") or part in DEBRIS for part in PurePosixPath(name).parts)


@dataclass
class Export:
    """An opened export: the entries that may be read, those refused, those skipped as debris."""

    source: Path
    entries: list[Entry] = field(default_factory=list)
    refused: list[Filed] = field(default_factory=list)  # entries not read, each with its reason
    skipped: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    _zip: zipfile.ZipFile | None = None
    _infos: dict[int, zipfile.ZipInfo] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "zip" if self._zip is not None else "folder"

    def read(self, entry: Entry, limit: int | None = None) -> bytes:
        """The entry's bytes; TooLarge past `limit` (default: the per-entry limit), whatever its header says."""
        limit = self.limits.entry_bytes if limit is None else limit
        if self._zip is not None:
            stream = self._zip.open(self._infos[entry.index])
        else:
            fd = os.open(self.source / entry.name, os.O_RDONLY | os.O_NOFOLLOW)
            stream = os.fdopen(fd, "rb")
        with stream:
            data = stream.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(f"holds more than {limit:,} bytes (the limit for one file)")
        return data

    def common_folder(self) -> str | None:
        """The one folder every entry is in, if there is one."""
        tops = {e.parts[0] for e in self.entries if len(e.parts) > 1}
        if len(tops) == 1 and all(len(e.parts) > 1 for e in self.entries):
            return tops.pop()
        return None

    def within(self, folder: str) -> None:
        """Read the export from `folder` inside it, as if that were its root."""
        cut = len(folder) + 1
        self.entries = [replace(e, name=e.name[cut:]) for e in self.entries if e.name.startswith(folder + "/")]
        self.skipped = [s[cut:] if s.startswith(folder + "/") else s for s in self.skipped]
        self.refused = [refusal(r.entry[cut:], r.why) if r.entry.startswith(folder + "/") else r for r in self.refused]
        if self._zip is None:
            self.source = self.source / folder

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> Export:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_export(source: Path, limits: Limits = Limits()) -> Export:
    """Open `source` (a zip or a folder) read-only and sort its entries into usable, refused, skipped."""

    if source.is_dir():
        return _open_folder(source, limits)
    if not source.is_file():
        raise LmsError(f"{source}: no such file or folder (expected the LMS's zip, or the folder it unzipped to)")
    if not zipfile.is_zipfile(source):
        raise LmsError(f"{source}: not a zip file (expected the LMS's zip, or the folder it unzipped to)")
    return _open_zip(source, limits)


def _admit(export: Export, name: str, size: int, mtime: datetime | None, total: list[int]) -> bool:
    """Refuse, skip or accept one regular file of the export; True when accepted."""
    limits = export.limits
    reason = unsafe(name)
    if reason:
        export.refused.append(refusal(name, reason))
        return False
    name = clean(name)
    if debris(name):
        export.skipped.append(name)
        return False
    if len(export.entries) >= limits.entries:
        export.refused.append(refusal(name, f"the export holds more than {limits.entries:,} files"))
    elif size > limits.entry_bytes:
        export.refused.append(refusal(name, f"{size:,} bytes is over the {limits.entry_bytes:,}-byte limit for one file"))
    elif total[0] + size > limits.total_bytes:
        export.refused.append(refusal(name, f"the export is over {limits.total_bytes:,} bytes in all"))
    else:
        total[0] += size
        export.entries.append(Entry(name, size, mtime, len(export.entries)))
        return True
    return False


def _open_zip(source: Path, limits: Limits) -> Export:

    try:
        archive = zipfile.ZipFile(source, "r")
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise LmsError(f"{source}: cannot read the zip ({exc})") from None
    export = Export(source, limits=limits, _zip=archive)
    total = [0]
    for info in infos:
        mode = info.external_attr >> 16
        if info.is_dir():
            reason = unsafe(info.filename)
            if reason:
                export.refused.append(refusal(info.filename, reason))
            continue
        if stat.S_ISLNK(mode):
            export.refused.append(refusal(info.filename, "a symbolic link"))
        elif mode and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            export.refused.append(refusal(info.filename, "not a regular file"))
        elif info.flag_bits & 0x1:
            export.refused.append(refusal(info.filename, "encrypted"))
        elif _admit(export, info.filename, info.file_size, _zip_time(info), total):
            export._infos[export.entries[-1].index] = info
    return export


def _zip_time(info: zipfile.ZipInfo) -> datetime | None:
    try:
        return datetime(*info.date_time).astimezone()
    except ValueError:
        return None


def _open_folder(source: Path, limits: Limits) -> Export:
    export = Export(source, limits=limits)
    total = [0]
    stack = [source]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as found:
            items = sorted(found, key=lambda e: e.name)
        for item in items:
            rel = Path(item.path).relative_to(source).as_posix()
            if item.is_symlink():
                export.refused.append(refusal(rel, "a symbolic link"))
            elif item.is_dir(follow_symlinks=False):
                if debris(rel):
                    export.skipped.append(rel)
                else:
                    stack.append(Path(item.path))
            elif not item.is_file(follow_symlinks=False):
                export.refused.append(refusal(rel, "not a regular file"))
            else:
                info = item.stat(follow_symlinks=False)
                _admit(export, rel, info.st_size, datetime.fromtimestamp(info.st_mtime).astimezone(), total)
    return export
