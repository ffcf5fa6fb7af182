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
    """A grading process's own resources: a private scratch folder, kernel uids, its trusted kernel, and the
    template its student kernels are forked from."""

    def __init__(self, scratch_root: Path | None = None, keep_scratch: bool = False):
        confine.sweep()
        # The folder names this process: what it leaves behind if it is killed can be found and removed.
        self.scratch = Path(tempfile.mkdtemp(prefix=f"grader-worker-{os.getpid()}-", dir=scratch_root))
        os.chmod(self.scratch, 0o711)  # a kernel's unprivileged uid must reach its run folder inside
        self.keep_scratch = keep_scratch
        self._held = ExitStack()
        self._trusted = None
        self._template = None
        self._template_refused: str | None = None  # why this worker's template could not start: it is not tried again

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

    def launch_template(self, threads: int, sources: list[Path]) -> None:
        """Start the kernel template now, if there is none running, without waiting for its imports."""
        from grader.kernel.forked import KernelTemplate, TemplateFailed, notebook_imports

        if self._template is not None and not self._template.alive():
            log.warning("the kernel template died: starting another")
            self._template.stop()
            self._template = None
        if self._template is None and self._template_refused is None:
            template = KernelTemplate(self.scratch, threads, preload=notebook_imports(sources))
            try:
                template.launch()
            except TemplateFailed as exc:
                self._template_refused = str(exc)
                log.warning("%s: this worker's kernels start fresh", exc)
                return
            self._template = template

    def kernel_template(self, threads: int, sources: list[Path]):
        """The worker's kernel template, ready, started by the first notebook that needs it (or earlier, by
        `launch_template`) and again after it died; None when it cannot start (the notebook's kernel then starts
        fresh: slower, never less confined)."""
        from grader.kernel.forked import TemplateFailed

        self.launch_template(threads, sources)
        if self._template is None:
            return None
        try:
            self._template.wait_ready()
        except TemplateFailed as exc:
            self._template_refused = str(exc)
            log.warning("%s: this worker's kernels start fresh", exc)
            self._template = None
            return None
        return self._template

    @contextmanager
    def kernel_uid(self) -> Iterator[int]:
        """A uid for one kernel, unique on this host while the block runs (-1 when not running as root)."""
        if os.geteuid() != 0:
            yield -1
            return
        with uids.lease(layout.UID_LOCKS) as uid:
            yield uid

    def close(self) -> None:
        """Stop the trusted kernel and the kernel template, give back the trusted kernel's uid, remove the
        scratch folder (unless asked to keep it)."""
        if self._template is not None:
            self._template.stop()
            self._template = None
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
