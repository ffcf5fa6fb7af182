"""Grading on a Dask cluster: the same task (`task.grade`) on the workers of a running scheduler.

The submission goes out with its task and the result (row and feedback page) comes back with it: no
shared filesystem. The prepared course reaches each worker once, as a zip inside a worker plugin, which
also holds the worker's own grading resources (scratch folder, kernel uids, trusted kernel) and refuses
every task when the worker's grader, nbgrader, torch or Python differs from the client's, or it cannot
sandbox a kernel. What Dask does not do, the grader does: the time limits are the kernels' own, and a
notebook whose grading process dies is retried once and then recorded as `error`, counted by the grader
(in the scheduler's metadata, at each start), not by the scheduler's `allowed-failures`.
Only `autograde --scheduler` imports this module, and with it Dask.
"""

from __future__ import annotations

import io
import logging
import shutil
import tempfile
import uuid
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Callable, Iterator

import dask
from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_client, get_worker
from distributed.client import FutureCancelledError
from distributed.scheduler import KilledWorker

from grader.course.prepared import PreparedCourse
from grader.errors import GraderError
from grader.grading.settings import Settings
from grader.grading.task import Result, Submission, error_result, grade
from grader.grading.worker import Worker
from grader.run.pool import RETRIES

log = logging.getLogger(__name__)
PLUGIN = "seqmodels-grader"
CONNECT_SECONDS = 10


@dataclass(frozen=True)
class Versions:
    """What a worker must share with the client to grade under the same conditions."""

    grader: str
    nbgrader: str
    torch: str
    python: str

    @staticmethod
    def here() -> "Versions":
        import platform
        from importlib.metadata import version

        return Versions(version("seqmodels-course"), version("nbgrader"), version("torch"), platform.python_version())

    def differences(self, other: "Versions") -> list[str]:
        return [f"{name} {getattr(other, name)} (the client has {getattr(self, name)})"
                for name in ("grader", "nbgrader", "torch", "python") if getattr(self, name) != getattr(other, name)]


class WorkerRefused(RuntimeError):
    """A worker that cannot grade under the client's conditions."""


def course_zip(course: PreparedCourse) -> bytes:
    """The prepared course (gradebook, source and release folders) as zip bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(course.root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(course.root).as_posix())
    return buf.getvalue()


class GraderPlugin(WorkerPlugin):
    """On each worker: the prepared course, unpacked once, and the worker's grading resources."""

    name = PLUGIN

    def __init__(self, course: bytes, versions: Versions, sandbox: str):
        self.course_bytes, self.versions, self.sandbox = course, versions, sandbox
        self.course: PreparedCourse | None = None
        self.resources: Worker | None = None
        self.problem: str | None = None

    def setup(self, worker) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="grader-course-"))
        with zipfile.ZipFile(io.BytesIO(self.course_bytes)) as zf:
            zf.extractall(self.folder)
        self.course = PreparedCourse(self.folder)
        problems = Versions.here().differences(self.versions) if self.versions else []
        if self.sandbox == "bwrap":
            from grader.kernel.sandbox import bwrap_problem

            if bwrap_problem():
                problems.append(f"no sandbox: {bwrap_problem()}")
        if problems:
            self.problem = (f"the Dask worker {worker.address} cannot grade: it has " + "; ".join(problems) +
                            ". Install the same versions of this project, nbgrader and torch (and bubblewrap) on every worker")

    def teardown(self, worker) -> None:
        if self.resources is not None:
            self.resources.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _attempt(run_id: str, key: str) -> int:
    """Count one more start of this submission's grading, in the scheduler (it outlives any worker)."""
    client = get_client()
    seen = client.get_metadata(["grader", run_id, key], 0) + 1
    client.set_metadata(["grader", run_id, key], seen)
    return seen


def grade_remotely(submission: Submission, settings: Settings, run_id: str, task: Callable = grade) -> Result:
    """The task each worker runs: refuse, or record a grading process that died twice, or grade."""
    plugin = get_worker().plugins[PLUGIN]
    if plugin.problem:
        raise WorkerRefused(plugin.problem)
    starts = _attempt(run_id, submission.key)
    if starts > 1 + RETRIES:
        return error_result(submission, plugin.course,
                            f"the grading process died {starts - 1} times while grading this notebook (on the cluster)")
    if plugin.resources is None:
        plugin.resources = Worker(keep_scratch=settings.keep_scratch)
    return task(submission, plugin.course, settings, plugin.resources)


@contextmanager
def session(scheduler) -> Iterator[Client]:
    """A client of the scheduler at `scheduler` for the length of the block (and the LocalCluster, if asked)."""
    client, cluster = connect(scheduler)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def connect(scheduler) -> tuple[Client, LocalCluster | None]:
    """A client of the scheduler at `scheduler` (an address, `local`, or a Dask cluster object)."""
    dask.config.set({"distributed.scheduler.allowed-failures": 10})  # the grader counts deaths itself
    if scheduler == "local":
        import os

        cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        return Client(cluster), cluster
    if not isinstance(scheduler, str):  # a cluster object (LocalCluster, dask-jobqueue's SLURMCluster, ...)
        return Client(scheduler), None
    try:
        return Client(scheduler, timeout=CONNECT_SECONDS), None
    except (OSError, TimeoutError) as exc:
        raise GraderError(f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__}: {exc}); "
                          "is `dask scheduler` running there, and is the address right?") from None


def worker_threads(client: Client) -> int:
    return sum(w.get("nthreads", 1) for w in client.scheduler_info(n_workers=-1)["workers"].values()) or 1


def run_on_cluster(client: Client, submissions: Iterator[Submission], total: int, course: PreparedCourse,
                   settings: Settings, done: Callable[[Result], None], in_flight: int | None = None,
                   task: Callable = grade, note: Callable[[str], None] = lambda text: None) -> None:
    """Grade every submission on the cluster `client` reaches, at most `in_flight` at a time; `done` gets each result."""
    if total == 0:
        return
    client.register_plugin(GraderPlugin(course_zip(course), Versions.here(), settings.sandbox))
    limit = in_flight or max(2, 2 * worker_threads(client))
    run_id = uuid.uuid4().hex
    pending: dict[str, Submission] = {}
    futures = as_completed()

    def submit(submission: Submission) -> None:
        future = client.submit(grade_remotely, submission, settings, run_id, task, pure=False,
                               key=f"grade-{submission.key}-{uuid.uuid4().hex[:8]}")
        pending[future.key] = submission
        futures.add(future)

    for submission in islice(submissions, limit):
        submit(submission)
    for future in futures:
        submission = pending.pop(future.key)
        try:
            result = future.result()
        except WorkerRefused as exc:
            raise GraderError(str(exc)) from None
        except (KilledWorker, FutureCancelledError) as exc:
            result = error_result(submission, course, f"the grading process died while grading this notebook "
                                                      f"and the scheduler gave up on it ({type(exc).__name__})")
        except Exception as exc:  # the task itself never raises; anything here is the cluster's
            log.exception("grading %s on the cluster failed", submission.key)
            result = error_result(submission, course, f"grading on the cluster failed: {type(exc).__name__}: {exc}")
        note(f"{len(client.scheduler_info(n_workers=-1)['workers'])} workers")
        done(result)
        following = next(submissions, None)
        if following is not None:
            submit(following)
