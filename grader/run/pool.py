"""Grading on this machine's cores: a small supervised pool of worker processes.

Each worker process holds its `Worker` resources for its whole life and grades one submission at a time
with `task.grade`. The pool always knows which submission each process is grading, so a process that
dies (out of memory, killed) costs at most that submission: it is retried once in a fresh process and
then recorded as an `error` row that says the grading process died; every other submission is graded
as if nothing happened. (concurrent.futures' pool instead fails every pending job when one process dies.)
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Callable, Iterator

from grader import logs
from grader.course.prepared import PreparedCourse
from grader.grading.settings import Settings
from grader.grading.task import Result, Submission, error_result, grade
from grader.grading.worker import Worker

log = logging.getLogger(__name__)
RETRIES = 1  # a submission whose grading process dies is graded once more, then recorded as `error`


def describe_exit(exitcode: int | None) -> str:
    """How a process ended, in words."""
    if exitcode is None:
        return "it vanished"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        why = " (out of memory, or killed from outside)" if name == "SIGKILL" else ""
        return f"it was killed by {name}{why}"
    return f"it exited with status {exitcode}"


def _serve(conn: Connection, course: PreparedCourse, settings: Settings, scratch_root, log_level: int,
           task: Callable) -> None:
    """A worker process: grade each submission received on `conn` and send back its result."""
    logs.configure(log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    with Worker(scratch_root, settings.keep_scratch) as worker:
        if settings.fork:  # its imports go on while the first submission arrives
            worker.launch_template(settings.threads, course.sources())
        while True:
            try:
                submission = conn.recv()
            except EOFError:
                return
            if submission is None:
                return
            conn.send(task(submission, course, settings, worker))


@dataclass
class _Slot:
    """One worker process and the submission it is grading."""

    process: multiprocessing.Process
    conn: Connection
    job: Submission | None = None


@dataclass
class LocalPool:
    """Grade submissions on `workers` processes; call `done` with each result as it arrives."""

    course: PreparedCourse
    settings: Settings
    workers: int
    scratch_root: object = None
    task: Callable[[Submission, PreparedCourse, Settings, Worker], Result] = grade  # a module-level function
    attempts: dict[str, int] = field(default_factory=dict)

    def _start(self, ctx) -> _Slot:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(child, self.course, self.settings, self.scratch_root,
                                                   logging.getLogger("grader").getEffectiveLevel(), self.task),
                              daemon=True)
        process.start()
        child.close()
        return _Slot(process, parent)

    def run(self, submissions: Iterator[Submission], total: int, done: Callable[[Result], None]) -> None:
        """Grade every submission; each gets exactly one result, whatever happens to the processes.

        `submissions` is consumed lazily, one as each process becomes free; `total` is how many it yields.
        """
        if total == 0:
            return
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["grader.grading.task", "grader.grading.execution", "nbgrader.apps"])
        queue: deque[Submission] = deque()  # submissions to retry come first
        slots = [self._start(ctx) for _ in range(min(self.workers, total))]

        def next_job() -> Submission | None:
            return queue.popleft() if queue else next(submissions, None)

        try:
            while True:
                for slot in slots:
                    if slot.job is None:
                        slot.job = next_job()
                        if slot.job is not None:
                            try:
                                slot.conn.send(slot.job)
                            except OSError:  # the process is gone: its sentinel says so below
                                pass
                if not any(s.job for s in slots):
                    break
                busy = [s for s in slots if s.job is not None]
                wait([s.conn for s in busy] + [s.process.sentinel for s in busy])
                for i, slot in enumerate(slots):
                    if slot.job is None:
                        continue
                    if slot.conn.poll():
                        try:
                            result = slot.conn.recv()
                        except (EOFError, OSError):  # the process closed its end: it is exiting
                            slot.process.join(timeout=10)
                        else:
                            slot.job = None
                            done(result)
                            continue
                    if not slot.process.is_alive():
                        slot.process.join()
                        self._lost(slot, queue, done)
                        slots[i] = self._start(ctx)
        except BaseException:  # Ctrl-C or a bug here: stop every process now (their kernels die with them)
            for slot in slots:
                slot.process.kill()
            raise
        for slot in slots:
            try:
                slot.conn.send(None)
            except OSError:
                pass
        for slot in slots:
            slot.process.join(timeout=10)
            if slot.process.is_alive():
                slot.process.kill()

    def _lost(self, slot: _Slot, queue: deque, done: Callable[[Result], None]) -> None:
        """The process grading `slot.job` died: retry the job once, then record it as an error."""
        job, how = slot.job, describe_exit(slot.process.exitcode)
        slot.job = None
        self.attempts[job.key] = self.attempts.get(job.key, 0) + 1
        log.warning("the process grading %s died: %s", job.key, how)
        if self.attempts[job.key] <= RETRIES:
            queue.appendleft(job)
        else:
            done(error_result(job, self.course, f"the grading process died {self.attempts[job.key]} times while "
                                                f"grading this notebook; the last time {how}"))
