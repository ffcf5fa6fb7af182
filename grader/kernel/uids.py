"""Unprivileged uids for sandboxed kernels, unique on this host across concurrent grading runs.

A kernel runs as its own uid so that RLIMIT_NPROC and file permissions bind it, and no two kernels, in
this run or another one on the same machine, ever share a uid (processes a student leaves behind count
against the uid's process limit). A uid is leased by holding an exclusive lock on its file under
`layout.UID_LOCKS`; the lock dies with the process that holds it, so a crash never leaks a uid.
"""

from __future__ import annotations

import fcntl
import os
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grader.errors import GraderError

FIRST_UID = 20000
UID_COUNT = 10000


def running_processes_of(uid: int) -> bool:
    """Whether any process on this host runs as `uid` (a leftover would eat into its process limit)."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    return True
            except OSError:
                continue
    return False


@contextmanager
def lease(locks: Path) -> Iterator[int]:
    """Hold a uid no other kernel on this host holds, for the duration of the block."""
    locks.mkdir(mode=0o700, parents=True, exist_ok=True)
    start = random.randrange(UID_COUNT)  # concurrent runs rarely probe the same uids
    for i in range(UID_COUNT):
        uid = FIRST_UID + (start + i) % UID_COUNT
        fd = os.open(locks / str(uid), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if running_processes_of(uid):
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)  # releases the lock
        return
    raise GraderError(f"no free uid in {FIRST_UID}..{FIRST_UID + UID_COUNT - 1}: too many kernels on this host")
