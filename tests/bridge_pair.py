"""Both sides of the bridge and the grader's relay, for tests that need no kernel.

The relay runs on its own event loop in a thread, and the test's side calls from the test itself. The
student's side serves each test cell from a thread of this process (`Pair`), or from a process of its
own (`ProcessPair`), where what its code does to torch's global state (the RNG) stays on its side as it
does in grading: the same code and the same sockets as in grading, minus the two kernels around them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from contextlib import contextmanager
from pathlib import Path

from grader.bridge.protocol import StudentSide, TrustedSide
from grader.bridge.relay import Relay


class Pair:
    """A test's side and a student's side joined by a relay, with the student's namespace given."""

    def __init__(self, folder: Path, namespace: dict, exercises: dict[str, str] | None = None):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.student_path, trusted_path = folder / "student.sock", folder / "trusted.sock"
        self.relay = Relay(trusted_path, self.student_path, wait_for_student=5)
        self.run(self.relay.start())
        self.student = StudentSide(namespace)
        self.trusted = TrustedSide(str(trusted_path))
        self.proxies = self.trusted.proxies(exercises or {})

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def serve(self) -> None:
        """Start the student's serve loop for one test cell."""
        self.serving = threading.Thread(target=self.student.serve, args=(str(self.student_path),), daemon=True)
        self.serving.start()

    def served(self) -> None:
        """Wait for the serve loop of the cell that just ended."""
        self.serving.join(timeout=10)

    @contextmanager
    def cell(self):
        """One test cell: a serve loop on the student's side for its duration."""
        self.loop.call_soon_threadsafe(self.relay.begin_cell)
        self.serve()
        try:
            yield self.proxies
        finally:
            self.run(self.relay.end_cell())
            self.served()

    def close(self) -> None:
        self.run(self.relay.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def _serve_cells(source: str, path: str, orders, done) -> None:
    """The student's process: run `source`, then serve one test cell per order."""
    namespace: dict = {}
    exec(source, namespace)
    side = StudentSide(namespace)
    done.put("ready")
    while orders.get() == "serve":
        side.serve(path)
        done.put(True)


class ProcessPair(Pair):
    """A Pair whose student's side is another process, running `source`."""

    def __init__(self, folder: Path, source: str, exercises: dict[str, str] | None = None):
        super().__init__(folder, {}, exercises)
        context = multiprocessing.get_context("spawn")
        self.orders, self.done = context.Queue(), context.Queue()
        self.process = context.Process(target=_serve_cells, args=(source, str(self.student_path), self.orders, self.done),
                                       daemon=True)
        self.process.start()
        self.done.get(timeout=300)  # torch imported, `source` run: it can serve

    def serve(self) -> None:
        self.orders.put("serve")

    def served(self) -> None:
        self.done.get(timeout=30)

    def close(self) -> None:
        self.orders.put("stop")
        self.process.join(timeout=10)
        super().close()
