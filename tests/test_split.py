"""One notebook across two kernels, without kernels: a test cell's outputs as nbgrader will score them, what the
student's side printed, and the pair's limits, which are the executor's own (nbclient's hook, the relay's wait)."""

from __future__ import annotations

import asyncio
import copy

import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output
from nbgrader.utils import determine_grade

from grader.bridge.split import STUDENT_OUTPUT_HEADER, STUDENT_SIDE, KernelPair, settle_outputs, student_setup, text_of
from grader.bridge.trusted import BRIDGE_MODULE
from grader.grading.execution import GradedExecute
from grader.grading.settings import Settings


def graded_test_cell(*outputs) -> dict:
    cell = new_code_cell("assert double(2) == 4", metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": "test_double", "points": 2, "schema_version": 3}})
    cell.outputs = list(outputs)
    return cell


def score(cell) -> float:
    return float(determine_grade(cell)[0])


def test_a_value_the_test_displays_is_not_credit():
    shown = new_output("execute_result", data={"text/plain": "0.5"}, execution_count=1)
    assert score(graded_test_cell(copy.deepcopy(shown))) == 0.5, "control: nbgrader reads a number as partial credit"
    passed, failed = graded_test_cell(copy.deepcopy(shown)), graded_test_cell(copy.deepcopy(shown))
    settle_outputs(passed, True, "")
    settle_outputs(failed, False, "")
    assert score(passed) == 2 and [o.output_type for o in passed.outputs] == ["display_data"]
    assert score(failed) == 0 and failed.outputs[-1].ename == "TestFailed"


def test_a_warning_is_not_a_failure_and_only_the_trusted_verdict_decides():
    warned = graded_test_cell(new_output("stream", name="stderr", text="UserWarning: slow\n"))
    assert score(copy.deepcopy(warned)) == 0, "control: nbgrader scores stderr output 0"
    settle_outputs(warned, True, "")
    assert score(warned) == 2 and warned.outputs[0].name == "stdout"
    errored = graded_test_cell(new_output("error", ename="AssertionError", evalue="", traceback=[]))
    settle_outputs(errored, True, "")
    assert errored.outputs == [] and score(errored) == 2, "an error output the trusted kernel did not raise goes"
    timed_out = graded_test_cell()
    settle_outputs(timed_out, False, "", "CellTimeoutError")
    assert timed_out.outputs[0].ename == "CellTimeoutError" and score(timed_out) == 0


def test_what_the_student_s_code_printed_is_shown_as_text_and_decides_nothing():
    cell = graded_test_cell()
    settle_outputs(cell, True, "hello from the student\n")
    assert cell.outputs[0].text == STUDENT_OUTPUT_HEADER + "hello from the student\n" and score(cell) == 2


@pytest.mark.parametrize("msg, text", [
    ({"msg_type": "stream", "content": {"name": "stdout", "text": "hi\n"}}, "hi\n"),
    ({"msg_type": "display_data", "content": {"data": {"text/plain": "<Figure>", "image/png": "..."}}}, "<Figure>\n"),
    ({"msg_type": "error", "content": {"ename": "ValueError", "evalue": "bad"}}, "ValueError: bad\n"),
    ({"msg_type": "status", "content": {"execution_state": "busy"}}, ""),
])
def test_the_student_s_side_is_read_as_plain_text(msg, text):
    assert text_of(msg) == text


def test_the_student_kernel_learns_the_bridge_and_its_serving_side():
    code = student_setup()
    compile(code, "setup", "exec")
    assert f"_s.modules[{BRIDGE_MODULE!r}] = _m" in code and f"{STUDENT_SIDE} = " in code


# --- the pair's limits are the executor's ---------------------------------------------------------

class StudentClient:
    """The student kernel's client: every execute answered at once, every serve loop ending at once."""

    def __init__(self):
        self.sent: list[str] = []

    def execute(self, code, **kwargs) -> str:
        self.sent.append(code)
        return f"msg-{len(self.sent)}"

    async def get_shell_msg(self, timeout=None):
        return {"parent_header": {"msg_id": f"msg-{len(self.sent)}"}, "content": {"status": "ok"}}

    async def get_iopub_msg(self, timeout=None):
        return {"parent_header": {"msg_id": f"msg-{len(self.sent)}"}, "msg_type": "status",
                "content": {"execution_state": "idle"}}


class StudentManager:
    def __init__(self, run_dir):
        self.run_dir = str(run_dir)

    async def is_alive(self) -> bool:
        return True


class Trusted:
    km = kc = None

    def __init__(self, folder):
        self.socket_path = folder / "bridge.sock"

    async def prepare(self, exercises, setup):
        self.prepared = (exercises, setup)


def test_each_test_cell_gets_the_executor_s_limit_in_nbclient_and_in_the_relay(tmp_path):
    nb = new_notebook(cells=[graded_test_cell()])
    executor = GradedExecute(settings=Settings(timeout=7, notebook_timeout=100))
    executor.km, executor.kc = StudentManager(tmp_path), StudentClient()
    executor.start_record(nb, audit=False)
    pair = KernelPair(executor, Trusted(tmp_path), {"double": "function"}, ["import torch"])
    seen = []

    async def execute_cell(cell, index):  # the trusted kernel's nbclient: what limit would it wait for?
        seen.append(pair.tests._get_timeout(cell))
        pair.tests.replies[index] = {"content": {"status": "ok"}}

    async def scenario():
        await pair.begin(nb)
        pair.tests.async_execute_cell = execute_cell
        try:
            first = await pair.run_test(nb.cells[0], 0)
            waits = [pair.relay.wait_for_student]
            executor.clock.deadline -= 97  # three seconds of the notebook's limit left
            await pair.run_test(nb.cells[0], 0)
            waits.append(pair.relay.wait_for_student)
            return first, waits
        finally:
            await pair.end()

    first, waits = asyncio.run(scenario())
    assert first["passed"] and not first["student_stuck"]
    assert pair.trusted.prepared == ({"double": "function"}, ["import torch"])
    assert seen[0] == waits[0] == 7, "the per-cell limit, in nbclient and in the relay alike"
    assert seen[1] == waits[1] and seen[1] in (2, 3), "what the notebook's limit leaves, in both alike"
