"""The grader's relay between the trusted kernel's calls and the student kernel's serve loop.

Each kernel reaches only a socket in its own run folder; the grader listens on both and forwards whole
frames (the format of protocol.py: a 12-byte prefix, a JSON header, raw buffers), checking each frame's
size on the way. The relay keeps count of the calls the test has made that the student's side has not
answered: when the student's side stops answering (its kernel died, it closed the connection, it sent
something over the limit), each waiting call gets the relay's own error instead of waiting forever; a
frame from the student's side in the relay's name breaks the serve loop the same way, so that no one
reads the student's words as the grader's. When the test gives up on a call (its cell timed out), the
student's side is out of step for the rest of that test cell and any further call fails at once. Every
test cell starts with a fresh serve loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
from pathlib import Path

log = logging.getLogger(__name__)

# The frame format of protocol.py (kept in step by tests/test_bridge.py; protocol.py imports torch).
PREFIX = struct.Struct(">QI")
MAX_FRAME_BYTES = 256 * 2**20
MAX_HEADER_BYTES = 8 * 2**20
REQUESTS_FROM_TEST = ("call", "backward")
REPLIES = ("return", "raise")
CHUNK = 2**20
RELAY_MARK = "relay"  # the key of the relay's own error frames (protocol.py reads them as StudentSideGone)


class FrameError(Exception):
    """A frame that breaks the format or the size limit."""


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, dict, int]:
    """The next frame's prefix and header bytes, its parsed header and how many buffer bytes follow."""
    prefix = await reader.readexactly(PREFIX.size)
    total, header_len = PREFIX.unpack(prefix)
    if total > MAX_FRAME_BYTES or header_len > min(total, MAX_HEADER_BYTES):
        raise FrameError(f"a message over the {MAX_FRAME_BYTES // 2**20} MB limit")
    text = await reader.readexactly(header_len)
    try:
        header = json.loads(text)
    except (ValueError, RecursionError):
        raise FrameError("a message that is not valid JSON") from None
    if not isinstance(header, dict):
        raise FrameError("a message without a header")
    return prefix + text, header, total - header_len


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen) -> None:
    """Copy one whole frame from `reader` to `writer` (buffers in chunks), showing `seen` its header first."""
    head, header, remaining = await read_frame(reader)
    seen(header)
    writer.write(head)
    while remaining:
        chunk = await reader.readexactly(min(CHUNK, remaining))
        writer.write(chunk)
        remaining -= len(chunk)
        await writer.drain()
    await writer.drain()


def error_frame(message: str, kind: str = "RuntimeError") -> bytes:
    """A `raise` frame, as protocol.py reads it, marked as the relay's own (the student's side said nothing)."""
    text = json.dumps({"op": "raise", "type": kind, "message": message, "token": None, RELAY_MARK: True,
                       "buffers": []}).encode()
    return PREFIX.pack(len(text), len(text)) + text


def stop_frame() -> bytes:
    text = json.dumps({"op": "stop", "buffers": []}).encode()
    return PREFIX.pack(len(text), len(text)) + text


class Relay:
    """Listens at `trusted_path` (the test's calls) and `student_path` (the serve loop of each test cell)."""

    def __init__(self, trusted_path: Path, student_path: Path, wait_for_student: float = 30.0):
        self.trusted_path, self.student_path = Path(trusted_path), Path(student_path)
        self.wait_for_student = wait_for_student
        self.servers: list[asyncio.AbstractServer] = []
        self.student: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.student_ready = asyncio.Event()
        self.broken: str | None = None
        self.outstanding = 0  # calls from the test not yet answered
        self.calls = 0

    async def start(self) -> None:
        for path, handler in ((self.trusted_path, self._test_connected), (self.student_path, self._student_connected)):
            if path.exists() or path.is_symlink():
                path.unlink()
            self.servers.append(await asyncio.start_unix_server(handler, path=str(path)))
            os.chmod(path, 0o666)  # each kernel's run folder is private to it; the socket needs its write bit

    def begin_cell(self, wait_for_student: float | None = None) -> None:
        """Expect a new serve loop for the next test cell, for at most `wait_for_student` seconds (None: as before)."""
        if wait_for_student is not None:
            self.wait_for_student = wait_for_student
        self.student = None
        self.student_ready = asyncio.Event()
        self.broken = None
        self.outstanding = 0

    def student_finished(self, reason: str) -> None:
        """The serve loop's cell ended (or never started): calls from now on fail at once."""
        self.broken = self.broken or reason
        self.student_ready.set()

    async def _student_connected(self, reader, writer) -> None:
        if self.student is not None:  # one serve loop per test cell
            writer.close()
            return
        self.student = (reader, writer)
        self.student_ready.set()

    async def _test_connected(self, reader, writer) -> None:
        """One top-level call of the test (and everything nested in it), until the test closes the connection."""
        try:
            await asyncio.wait_for(self.student_ready.wait(), self.wait_for_student)
        except asyncio.TimeoutError:
            self.broken = self.broken or "the student's kernel did not start serving the test"
        if self.student is None:
            self.broken = self.broken or "the student's kernel is not serving the test"
        if self.broken:
            writer.write(error_frame(self.broken))
            await self._close(writer)
            return
        s_reader, s_writer = self.student
        to_student = asyncio.ensure_future(self._pump_test(reader, s_writer))
        to_test = asyncio.ensure_future(self._pump_student(s_reader, writer))
        done, pending = await asyncio.wait({to_student, to_test}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if to_student in done and self.outstanding > 0:
            # The test left while the student's code was still working on its call.
            self.broken = self.broken or "the student's code did not finish an earlier call in this test"
        if to_test in done:
            for _ in range(self.outstanding):
                try:
                    writer.write(error_frame(self.broken or "the student's kernel stopped answering"))
                except Exception:
                    break
        await self._close(writer)

    def _request(self, header: dict) -> None:
        if header.get("op") in REQUESTS_FROM_TEST:
            self.outstanding += 1
            self.calls += 1

    def _reply(self, header: dict) -> None:
        if RELAY_MARK in header:  # only the relay speaks for a student's side that is gone
            raise FrameError("a message in the relay's name")
        if header.get("op") in REPLIES:
            self.outstanding = max(0, self.outstanding - 1)

    async def _pump_test(self, reader, s_writer) -> None:
        try:
            while True:
                await forward(reader, s_writer, self._request)
        except (asyncio.IncompleteReadError, ConnectionError, FrameError, OSError):
            return

    async def _pump_student(self, s_reader, writer) -> None:
        try:
            while True:
                await forward(s_reader, writer, self._reply)
        except FrameError as exc:
            self.broken = f"the student's code sent {exc}"
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self.broken = self.broken or "the student's kernel stopped answering (it died or was stopped)"

    @staticmethod
    async def _close(writer) -> None:
        try:
            writer.close()
            await writer.wait_closed()
        except Exception:
            pass

    async def end_cell(self) -> str | None:
        """Tell the serve loop to stop; why the student's side went wrong in this cell, if it did."""
        if self.student is not None:
            _, writer = self.student
            try:
                writer.write(stop_frame())
                await writer.drain()
            except Exception:
                pass
            await self._close(writer)
        self.student = None
        return self.broken

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for path in (self.trusted_path, self.student_path):
            try:
                path.unlink()
            except OSError:
                pass
