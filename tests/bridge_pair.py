"""Both sides of the bridge and the grader's relay in one process, for tests that need no kernel.

The student's side serves from a thread per test cell, the relay runs on its own event loop in a thread,
and the test's side calls from the test itself: the same code and the same sockets as in grading, minus
the two kernels around them.
"""

from __future__ import annotations

import asyncio
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

    @contextmanager
    def cell(self):
        """One test cell: a serve loop on the student's side for its duration."""
        self.loop.call_soon_threadsafe(self.relay.begin_cell)
        serving = threading.Thread(target=self.student.serve, args=(str(self.student_path),), daemon=True)
        serving.start()
        try:
            yield self.proxies
        finally:
            self.run(self.relay.end_cell())
            serving.join(timeout=10)

    def close(self) -> None:
        self.run(self.relay.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
