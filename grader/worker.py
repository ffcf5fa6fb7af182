"""What one grading process holds across the notebooks it grades: set up once, passed to every task."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import layout, uids


class Worker:
    """A grading process's own resources: a private scratch folder, and a lease on kernel uids."""

    def __init__(self, scratch_root: Path | None = None, keep_scratch: bool = False):
        self.scratch = Path(tempfile.mkdtemp(prefix="grader-worker-", dir=scratch_root))
        os.chmod(self.scratch, 0o711)  # a kernel's unprivileged uid must reach its run folder inside
        self.keep_scratch = keep_scratch

    def job_dir(self, key: str) -> Path:
        """A fresh folder for grading one notebook."""
        path = Path(tempfile.mkdtemp(prefix=re.sub(r"[^\w.-]+", "_", key)[:60] + "-", dir=self.scratch))
        os.chmod(path, 0o711)
        return path

    @contextmanager
    def kernel_uid(self) -> Iterator[int]:
        """A uid for one kernel, unique on this host while the block runs (-1 when not running as root)."""
        if os.geteuid() != 0:
            yield -1
            return
        with uids.lease(layout.UID_LOCKS) as uid:
            yield uid

    def close(self) -> None:
        """Remove the scratch folder (unless asked to keep it)."""
        if not self.keep_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
