"""nbgrader's Execute step, made to survive hostile notebooks and to say what happened.

Stock nbgrader fails a whole submission when a kernel dies or ignores an interrupt, and holds a
cell's entire output in memory. `GradedExecute` instead records the event, gives the cells it
could not run an error output (so they score 0 while earlier tests keep their points), caps output
bytes as they arrive, and writes what happened to `record_path` for the grader to read.

Given a trusted kernel, it runs the test cells there and everything else in the student's kernel
(bridge/split.py); without one it runs the whole notebook in the student's kernel, as stock nbgrader does
(kept for the tests' controls and the benchmark).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Any, Dict, Instance, Int, List, Unicode

from grader.course import cells
from grader.grading import integrity
from grader.grading.settings import Settings
from grader.kernel.sandbox import MAX_MESSAGE_BYTES, close_context

TIMEOUT_ENAME = "CellTimeoutError"
# A test cell that failed with one of these in the trusted kernel failed on the student's data (the bridge
# turns running out of memory or stack while taking a result into StudentDataError): noted in the row.
STUDENT_DATA_ERRORS = ("StudentDataError", "MemoryError", "RecursionError")


def content_size(content) -> int:
    """Roughly how many bytes a message's content holds: every string, key and value in it, at any depth."""
    size, stack = 0, [content]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, dict):
            size += sum(len(str(k)) for k in value)
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            size += len(value)
            stack.extend(value)
        else:
            size += 8
    return size


class TrustedKernelFailed(RuntimeError):
    """The trusted kernel died or stopped answering during a test cell."""


def error_output(ename: str, evalue: str) -> NotebookNode:
    """An error output as a kernel would have produced it."""
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class GradedExecute(Execute):
    """Execute every cell; record timeouts, kernel deaths, output floods and tampering."""

    record_path = Unicode("", help="Where to write the JSON record of this execution").tag(config=True)
    cell_output_bytes = Int(2 * 2**20, help="Output bytes kept per cell; the rest is dropped").tag(config=True)
    shutdown_kernel = Unicode("immediate").tag(config=True)
    settings = Instance(Settings, args=(30,), help="The run's settings: the time limits (each cell's reaches nbclient "
                        "through `timeout_func`) and what clean looks like to the audit").tag(config=True)
    trusted = Any(None, help="The worker's TrustedKernel: test cells run there (None: in the student's kernel)").tag(config=True)
    exercises = Dict(help="Exercise name -> function, class or module: the proxies in the trusted kernel").tag(config=True)
    notebook = Unicode("", help="The notebook's key (assignment/notebook): its limits come from its reference").tag(config=True)
    trusted_setup = List(Unicode(), help="Sources of the setup cells the trusted kernel runs").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        """Run the notebook, then write the record whatever happened."""
        self.start_record(nb)
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self._end_pair()
            self._write_record()
            close_context(self.km)

    def start_record(self, nb, audit: bool = True) -> None:
        """Forget any earlier notebook: no events, nothing stopped, no output counted yet."""
        self._events: list[dict] = []
        self._stopped: str | None = None
        self._cell_bytes: dict[int, int] = {}
        self._audit = integrity.Audit(self) if audit else integrity.NoAudit()
        code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
        self._last_code_cell = code[-1] if code else -1
        self._pair = None
        self._verdicts: dict[str, bool] = {}
        self._seconds: dict[str, float] = {}
        self.clock = self.settings.clock(self.notebook, tuple(self.exercises))
        self.timeout_func = self.clock.for_cell  # nbclient asks it for each cell's limit as the cell starts
        self._times = {"begin": time.monotonic()}  # kernel ready, first code cell done, last cell done

    def record(self) -> dict:
        """What happened so far: events (timeouts, deaths, floods), the audit's findings, the test verdicts, and
        where the time went (kernel start, the first code cell: the notebook's imports, the other cells)."""
        times = self._times
        ready = times.get("ready", times["begin"])
        first = times.get("first", ready)
        timings = {"start": ready - times["begin"], "import": first - ready, "cells": times.get("last", first) - first}
        return {"events": self._events, "tampering": self._audit.findings(), "verdicts": self._verdicts,
                "split": self.trusted is not None, "seconds": self._seconds, "timings": timings}

    @property
    def run_dir(self) -> Path:
        """The student kernel's run folder (its sockets live there)."""
        return Path(self.km.run_dir)

    def _event(self, kind: str, cell_index: int | None, detail: str) -> None:
        self._events.append({"kind": kind, "cell": cell_index, "detail": detail})

    def _cell_label(self, cell: NotebookNode, index: int) -> str:
        """A cell as a student finds it: by its exercise, not its index (which the notebook does not show)."""
        gid = cells.grade_id(cell)
        if gid and cells.is_test(cell):
            return f"the test `{gid}`"
        if gid and cells.is_solution(cell):
            return f"the cell defining `{gid}`"
        before = [cells.grade_id(c) for c in self._cells()[:index] if cells.is_solution(c) and cells.grade_id(c)]
        which = "a given cell" if cells.is_given(cell) else "a cell you added"
        return f"{which} after the one defining `{before[-1]}`" if before else f"{which} before the first exercise"

    def _cells(self) -> list:
        """The cells of the notebook being run (none before nbclient is given one)."""
        nb = getattr(self, "nb", None)
        return list(nb.get("cells", [])) if isinstance(nb, dict) else []

    def _code_in(self, cell: NotebookNode, index: int) -> str:
        """What ran in a cell, in words: a test, or the student's code in a cell."""
        label = self._cell_label(cell, index)
        return label if cells.is_test(cell) or cells.is_given(cell) else f"your code in {label}"

    def preprocess_cell(self, cell, resources, index):
        """Execute one cell unless the kernel is gone; never let one cell end the notebook."""
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        self._times.setdefault("ready", time.monotonic())
        try:
            return self._run_cell(cell, resources, index)
        finally:
            self._times.setdefault("first", time.monotonic())
            self._times["last"] = time.monotonic()

    def _run_cell(self, cell, resources, index):
        label = self._cell_label(cell, index)
        if not self._stopped and not self._within_notebook_limit(label, index):
            self._kill_kernel()
        if self._stopped:
            cell.outputs = [error_output("CellNotRun", self._stopped)]
            return cell, resources
        self._interrupted_at_limit = False
        started, self._uncounted = time.monotonic(), 0.0
        try:
            self._dropped_messages()  # what came before this cell is not this cell's
            self._audit.before_cell(cell, index)
            if self.trusted is not None and cells.is_test(cell):
                self._run_test_cell(cell, index, label)
            else:
                cell, resources = super().preprocess_cell(cell, resources, index)
            if not self._stopped and self._dropped_messages():
                self._event("output_limit", index, f"{label} sent one output over {MAX_MESSAGE_BYTES // 2**20} MB; "
                                                   "it was dropped")
                cell.outputs.append(new_output("stream", name="stdout", text=f"\n[an output over "
                                               f"{MAX_MESSAGE_BYTES // 2**20} MB was dropped]\n"))
            if self._worth_auditing(cell, index) and not self._stopped:
                self._audit.after_cell(cell, index)
        except TrustedKernelFailed as exc:
            self._event("trusted_failed", index, f"the kernel running the tests {exc} during {label}")
            self._stopped = "not run: the kernel running the tests failed"
            cell.outputs.append(error_output("TestKernelFailed", "the kernel running the tests failed here"))
        except DeadKernelError:
            memory = getattr(self.km, "out_of_memory", lambda: False)()
            why = f": its processes used all of their {self.km.memory_bytes / 2**30:g} GiB of memory" if memory else ""
            self._event("kernel_died", index, f"the kernel died while running {label}{why}; the cells after it did not run")
            self._stopped = f"not run: the kernel died in {label}"
            cell.outputs.append(error_output("DeadKernelError", "the kernel died while running this cell"))
        except CellTimeoutError:
            if not self._interrupted_at_limit:
                # The reply came but the output stream went silent: ZeroMQ dropped a message over
                # the size limit, and with it the connection.
                self._event("output_limit", index, f"{label} sent one output over {MAX_MESSAGE_BYTES // 2**20} MB; "
                                                   "it was dropped and the kernel stopped")
                self._stopped = f"not run: the kernel was stopped after {label} sent too much output"
            else:  # interrupted at the time limit, and never answered: it swallowed the interrupt
                self._event("timeout", index, f"{self._code_in(cell, index)} ran past {self.clock.given} s and ignored the "
                                              f"interrupt, so the kernel was stopped; the cells after it did not run")
                self._stopped = f"not run: the kernel was stopped after {label} timed out"
            cell.outputs.append(error_output(TIMEOUT_ENAME, self._stopped.removeprefix("not run: ")))
            self.clock.ran_past(cell)
            self._kill_kernel()
        self._seconds[cell.get("id") or f"#{index}"] = round(time.monotonic() - started - self._uncounted, 3)
        return cell, resources

    def _within_notebook_limit(self, label: str, index: int) -> bool:
        """False, and recorded, when the notebook's own limit leaves no time for the next cell."""
        if not self.clock.out_of_time():
            return True
        limit = self.clock.notebook_seconds
        self._event("timeout", index, f"the notebook ran past its {limit} s limit before {label}; the cells from there "
                                      "on did not run")
        self._stopped = f"not run: the notebook ran past its {limit} s limit"
        return False

    # -- test cells in the trusted kernel ---------------------------------------------------------

    def _run_test_cell(self, cell, index: int, label: str) -> None:
        """Run a test cell in the trusted kernel while the student's kernel serves its calls."""
        from jupyter_core.utils import run_sync

        from grader.bridge.split import KernelPair

        if self._pair is None:
            joined = time.monotonic()
            self._pair = KernelPair(self, self.trusted, dict(self.exercises), list(self.trusted_setup))
            run_sync(self._pair.begin)(self.nb)
            self._uncounted = time.monotonic() - joined  # joining the kernels is not the cell's time
        try:
            outcome = run_sync(self._pair.run_test)(cell, index)
        except DeadKernelError:
            raise TrustedKernelFailed("died") from None
        except CellTimeoutError:
            run_sync(self.trusted.stop)()
            raise TrustedKernelFailed("stopped answering") from None
        self._verdicts[cells.grade_id(cell)] = outcome["passed"]
        if outcome["ename"] in STUDENT_DATA_ERRORS:
            self._event("noted", index, f"{label} failed: the kernel running the tests ran out of memory or stack "
                                        f"on what the student's code returned ({outcome['ename']})")
        if outcome["ename"] == TIMEOUT_ENAME:
            self._event("timeout", index, f"{label} ran longer than {self.clock.words()} and was stopped: the code "
                                          "of yours it called did not return in time")
            self.clock.ran_past(cell)
        if outcome["student_stuck"]:
            self._kill_kernel()
            if not self._stopped:
                self._event("timeout", index, f"your code called by {label} ignored the interrupt, so the kernel was "
                                              "stopped; the cells after it did not run")
                self._stopped = f"not run: the kernel was stopped after {label} timed out"
        elif not run_sync(self.km.is_alive)():
            self._event("kernel_died", index, f"the kernel died while running {label}; the cells after it did not run")
            self._stopped = f"not run: the kernel died in {label}"

    def _end_pair(self) -> None:
        from jupyter_core.utils import run_sync

        if getattr(self, "_pair", None) is not None:
            try:
                run_sync(self._pair.end)()
            finally:
                self._pair = None

    def cap_output(self, msg: dict, cell, cell_index: int) -> bool:
        """Count a message against the cell's output cap; whether to keep it (see process_message)."""
        if msg.get("msg_type") in ("status", "execute_input", "clear_output"):
            return True
        size = content_size(msg.get("content", {}))
        used = self._cell_bytes.get(cell_index, 0) + size
        self._cell_bytes[cell_index] = used
        if used <= self.cell_output_bytes:
            return True
        if used - size <= self.cell_output_bytes:
            limit_mb = self.cell_output_bytes / 2**20
            cell.outputs.append(new_output("stream", name="stdout", text=f"\n[output cut: more than {limit_mb:g} MB]\n"))
            self.flood(cell_index)
        return False

    def flood(self, cell_index: int) -> None:
        """A cell's output went over the cap: say so once, and interrupt the student's kernel."""
        limit_mb = self.cell_output_bytes / 2**20
        cells_ = self._cells()
        label = self._cell_label(cells_[cell_index], cell_index) if 0 <= cell_index < len(cells_) else "a cell"
        self._event("output_limit", cell_index, f"{label} printed more than {limit_mb:g} MB; the rest was dropped and "
                                                "the cell interrupted")
        self._interrupt()

    async def interrupt_async(self) -> None:
        try:
            await self.km.interrupt_kernel()
        except Exception:
            pass

    def _dropped_messages(self) -> int:
        """How many times ZeroMQ dropped the kernel's output connection since last asked: it does so, and
        reconnects, when one message is over the size limit (a monitor on the IOPub socket says so)."""
        if getattr(self, "kc", None) is None or not hasattr(getattr(self.kc, "iopub_channel", None), "socket"):
            return 0
        if getattr(self, "_monitor_of", None) is not self.kc:
            import zmq

            address = f"inproc://iopub-monitor-{id(self)}-{id(self.kc)}"
            self.kc.iopub_channel.socket.monitor(address, zmq.EVENT_DISCONNECTED)
            self._watcher = self.kc.context.socket(zmq.PAIR)
            self._watcher.connect(address)
            self._monitor, self._monitor_of = zmq.Socket.shadow(self._watcher.underlying), self.kc
        count = 0
        while self._monitor.poll(0):
            self._monitor.recv_multipart()
            count += 1
        return count

    def _worth_auditing(self, cell, index: int) -> bool:
        """After the student's cells, the tests and the last cell: what a patch made anywhere else
        (say, in a given cell calling the student's code) is still there at the next of these."""
        return not cells.is_given(cell) or index == self._last_code_cell

    async def _async_handle_timeout(self, timeout, cell=None):
        self._interrupted_at_limit = True
        return await super()._async_handle_timeout(timeout, cell)

    def _kill_kernel(self) -> None:
        from jupyter_core.utils import run_sync

        if self.km is not None:
            run_sync(self.km.shutdown_kernel)(now=True)

    def on_cell_executed(self, **kwargs):
        """Record a cell that hit the time limit and was interrupted."""
        super().on_cell_executed(**kwargs)
        reply = kwargs["execute_reply"]["content"]
        if reply.get("status") == "error" and reply.get("ename") == TIMEOUT_ENAME:
            index = kwargs["cell_index"]
            said = self._code_in(kwargs["cell"], index)
            self._event("timeout", index, f"{said} ran longer than {self.clock.words()} and was stopped"
                                          + ("" if cells.is_test(kwargs["cell"]) else "; the tests that use it may fail"))
            self.clock.ran_past(kwargs["cell"])

    def process_message(self, msg, cell, cell_index):
        """Keep at most `cell_output_bytes` per cell of whatever the kernel sends, counted as it arrives.

        Every message that can carry output counts, whole (data, metadata, text, tracebacks): streams,
        displays and their updates, results, errors, comms. Past the cap a message is dropped before
        nbclient applies it, the cell is interrupted once, and a note says the output was cut.
        """
        if self.cap_output(msg, cell, cell_index):
            return super().process_message(msg, cell, cell_index)
        return None

    def _interrupt(self) -> None:
        from jupyter_core.utils import run_sync

        try:
            run_sync(self.km.interrupt_kernel)()
        except Exception:
            pass

    def _write_record(self) -> None:
        if not self.record_path:
            return
        Path(self.record_path).write_text(json.dumps(self.record(), indent=1))
