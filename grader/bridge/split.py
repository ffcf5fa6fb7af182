"""One notebook across two kernels: the student's code in its kernel, the test cells in the trusted one.

`KernelPair` joins the student kernel that nbclient started for the notebook (inside `GradedExecute`)
with the worker's trusted kernel (trusted.py). For each test cell it starts the bridge's serve loop in
the student kernel, runs the test cell in the trusted kernel while the relay carries the test's calls
across (protocol.py, relay.py), then ends the serve loop (interrupting, and at worst stopping, a student
kernel that does not finish). The cell's verdict is the trusted kernel's: it passes when it raised
nothing there. What the student's code printed during the test is shown with the cell's output, as
text, and decides nothing.
"""

from __future__ import annotations

import asyncio
import logging
from queue import Empty

from nbclient import NotebookClient
from nbformat import NotebookNode
from nbformat.v4 import new_output

from grader.bridge.relay import Relay
from grader.bridge.trusted import BRIDGE_MODULE, TrustedKernel, execute_quietly, install_bridge

log = logging.getLogger(__name__)
STUDENT_SIDE = "__grader_side__"
STUDENT_SOCKET = "serve.sock"
GRACE_SECONDS = 5
STUDENT_OUTPUT_HEADER = "[what your code printed while this test called it]\n"


def student_setup() -> str:
    """Code run in the student's kernel before its first cell: the bridge, and the side that serves the tests."""
    return install_bridge() + (f"import sys as _s\n{STUDENT_SIDE} = _s.modules[{BRIDGE_MODULE!r}]"
                               f".StudentSide(get_ipython().user_ns)\ndel _s\n")


def text_of(msg: dict) -> str:
    """What one IOPub message of the student's kernel says, as plain text."""
    content, kind = msg.get("content", {}), msg.get("msg_type")
    if kind == "stream":
        return str(content.get("text", ""))
    if kind in ("display_data", "execute_result", "update_display_data"):
        return str(content.get("data", {}).get("text/plain", "")) + "\n"
    if kind == "error":
        return f"{content.get('ename', 'Error')}: {content.get('evalue', '')}\n"
    return ""


def settle_outputs(cell: NotebookNode, passed: bool, student_text: str, ename: str = "") -> None:
    """A test cell's outputs as nbgrader will score them: an error output exactly when it failed.

    Only the trusted kernel's reply decides: a value the test displays is not credit (nbgrader would read
    a number as partial credit), a warning on stderr is not a failure, and the student's own output is
    plain text.
    """
    outputs = []
    if student_text:
        outputs.append(new_output("stream", name="stdout", text=STUDENT_OUTPUT_HEADER + student_text))
    for out in cell.outputs:
        if out.output_type == "execute_result":
            out = new_output("display_data", data=out.get("data", {}), metadata=out.get("metadata", {}))
        elif out.output_type == "stream" and out.get("name") == "stderr":
            out = new_output("stream", name="stdout", text=out.get("text", ""))
        elif out.output_type == "error" and passed:
            continue
        outputs.append(out)
    if not passed and not any(o.output_type == "error" for o in outputs):
        outputs.append(new_output("error", ename=ename or "TestFailed", evalue="the test did not pass",
                                  traceback=[f"{ename or 'TestFailed'}: the test did not pass"]))
    cell.outputs = outputs


class TrustedCells(NotebookClient):
    """nbclient on the trusted kernel: runs one test cell at a time, output capped like the student's."""

    def __init__(self, nb, trusted: TrustedKernel, cap, **kw):
        super().__init__(nb, km=trusted.km, **kw)
        self.kc = trusted.kc
        self.cap = cap
        self.replies: dict[int, dict] = {}
        self.on_cell_executed = self._remember_reply

    def _remember_reply(self, cell, cell_index, execute_reply):
        self.replies[cell_index] = execute_reply

    def process_message(self, msg, cell, cell_index):
        if self.cap(msg, cell, cell_index):
            return super().process_message(msg, cell, cell_index)
        return None


class KernelPair:
    """The student's kernel and the trusted kernel, joined for one notebook."""

    def __init__(self, executor, trusted: TrustedKernel, exercises: dict[str, str], setup: list[str]):
        self.executor = executor  # GradedExecute: owns the student kernel, the record and the limits
        self.trusted = trusted
        self.exercises, self.setup = exercises, setup
        self.relay: Relay | None = None
        self.tests: TrustedCells | None = None

    async def begin(self, nb: NotebookNode) -> None:
        """Reset the trusted kernel for this notebook, teach the student kernel the bridge, start the relay."""
        await self.trusted.prepare(self.exercises, self.setup)
        await execute_quietly(self.executor.kc, student_setup(), timeout=60, km=self.executor.km)
        student_socket = self.executor.run_dir / STUDENT_SOCKET
        self.relay = Relay(self.trusted.socket_path, student_socket)
        await self.relay.start()
        # Each test cell's limit is the student's cells' own: the executor's clock, through nbclient's hook.
        self.tests = TrustedCells(nb, self.trusted, self.executor.cap_output, timeout_func=self.executor.timeout_func,
                                  interrupt_on_timeout=True, error_on_timeout=self.executor.error_on_timeout,
                                  allow_errors=True, iopub_timeout=self.executor.iopub_timeout,
                                  raise_on_iopub_timeout=True, record_timing=False)


    async def run_test(self, cell: NotebookNode, index: int) -> dict:
        """Run one test cell in the trusted kernel while the student kernel serves it; what happened."""
        self.relay.begin_cell(wait_for_student=self.executor.timeout_func(cell))  # the cell's limit, as nbclient's
        serve = f"{STUDENT_SIDE}.serve({str(self.relay.student_path)!r})"
        serve_id = self.executor.kc.execute(serve, store_history=False, allow_stdin=False, stop_on_error=False)
        printed: list[str] = []
        watch = asyncio.ensure_future(self._watch_student(serve_id, printed, index))
        outcome = {"passed": False, "ename": "", "student_stuck": False, "trusted_died": False}
        try:
            await self.tests.async_execute_cell(cell, index)
            reply = self.tests.replies.get(index, {}).get("content", {})
            outcome["passed"] = reply.get("status") == "ok"
            outcome["ename"] = reply.get("ename", "")
        finally:
            timed_out = bool(outcome["ename"]) and outcome["ename"] == self.executor.error_on_timeout.get("ename")
            outcome["broken"] = await self.relay.end_cell()
            outcome["student_stuck"] = not await self._finish_student(watch, at_once=timed_out)
            settle_outputs(cell, outcome["passed"], "".join(printed), outcome["ename"])
        return outcome

    async def _watch_student(self, serve_id: str, printed: list[str], index: int) -> None:
        """Collect what the student's code prints while serving, until the serve cell ends or the kernel dies."""
        kc, used, limit = self.executor.kc, 0, self.executor.cell_output_bytes
        while True:
            try:
                msg = await kc.get_iopub_msg(timeout=1)
            except Empty:
                if not await self.executor.km.is_alive():
                    self.relay.student_finished("the student's kernel died")
                    return
                continue
            if msg.get("parent_header", {}).get("msg_id") != serve_id:
                continue
            if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                self.relay.student_finished("the student's kernel stopped serving the test")
                return
            if msg["msg_type"] == "error":
                continue  # the serve loop's own end (a broken pipe after a timeout), not something the student printed
            text = text_of(msg)
            if used <= limit:
                printed.append(text[: max(0, limit - used)])
                used += len(text)
                if used > limit:
                    printed.append("\n[output cut]\n")
                    self.executor.flood(index)

    async def _finish_student(self, watch: asyncio.Future, at_once: bool = False) -> bool:
        """Wait for the serve loop to end; interrupt it if it does not (`at_once`: the test ran out of time, so
        the student's code may still be working on a call the test gave up on). False: it would not stop."""
        if at_once and not watch.done():
            await self.executor.interrupt_async()
        for attempt in range(2):
            try:
                await asyncio.wait_for(asyncio.shield(watch), GRACE_SECONDS)
                return True
            except asyncio.TimeoutError:
                if attempt == 0:
                    await self.executor.interrupt_async()
        watch.cancel()
        return False

    async def end(self) -> None:
        if self.relay is not None:
            await self.relay.close()
