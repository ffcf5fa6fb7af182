"""What one grading process holds across the notebooks it grades: set up once, passed to every task."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from grader.course import layout
from grader.kernel import confine, uids

log = logging.getLogger(__name__)


class Worker:
    """A grading process's own resources: a private scratch folder, kernel uids, and its trusted kernel."""

    def __init__(self, scratch_root: Path | None = None, keep_scratch: bool = False):
        confine.sweep()
        # The folder names this process: what it leaves behind if it is killed can be found and removed.
        self.scratch = Path(tempfile.mkdtemp(prefix=f"grader-worker-{os.getpid()}-", dir=scratch_root))
        os.chmod(self.scratch, 0o711)  # a kernel's unprivileged uid must reach its run folder inside
        self.keep_scratch = keep_scratch
        self._held = ExitStack()
        self._trusted = None

    def job_dir(self, key: str) -> Path:
        """A fresh folder for grading one notebook (a short name: socket paths must stay under 108 bytes)."""
        path = Path(tempfile.mkdtemp(prefix="job-", dir=self.scratch))
        os.chmod(path, 0o711)
        return path

    def trusted_kernel(self, sandbox: str, threads: int):
        """The worker's trusted kernel (started by the first notebook that needs it, kept for the others)."""
        from grader.bridge.trusted import TrustedKernel

        if self._trusted is None:
            uid = self._held.enter_context(self.kernel_uid())
            self._trusted = TrustedKernel(self.scratch / "trusted", sandbox, uid, threads)
        return self._trusted

    @contextmanager
    def kernel_uid(self) -> Iterator[int]:
        """A uid for one kernel, unique on this host while the block runs (-1 when not running as root)."""
        if os.geteuid() != 0:
            yield -1
            return
        with uids.lease(layout.UID_LOCKS) as uid:
            yield uid

    def close(self) -> None:
        """Stop the trusted kernel, give back its uid, remove the scratch folder (unless asked to keep it)."""
        if self._trusted is not None:
            from jupyter_core.utils import run_sync

            try:
                run_sync(self._trusted.stop)()
            except Exception:
                log.debug("stopping the trusted kernel failed", exc_info=True)
            self._trusted = None
        self._held.close()
        if not self.keep_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
