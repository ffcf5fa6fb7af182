"""GradedExecute's branches, fed canned kernel messages (as nbclient's own tests do): no kernel needed.

Each test scripts what a kernel would send on its shell and IOPub channels and checks what the
executor makes of it: the output it keeps, the events it records, whether it interrupts or stops the
kernel.
"""

from __future__ import annotations

import asyncio
from queue import Empty

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader.grading.execution import TIMEOUT_ENAME, GradedExecute
from grader.grading.settings import Settings

PARENT = "parent-id"


def stream(text: str, name: str = "stdout") -> dict:
    return {"msg_type": "stream", "content": {"name": name, "text": text}}


def display(data: dict, kind: str = "display_data", **content) -> dict:
    return {"msg_type": kind, "content": {"data": data, "metadata": {}, **content}}


class Channel:
    """One of a fake kernel's channels: gives its messages in order, then `then` forever."""

    def __init__(self, messages: list[dict], then: str):
        self.messages = [{"parent_header": {"msg_id": PARENT}, "header": {"msg_type": m.get("msg_type", "")}, **m}
                         for m in messages]
        self.then = then  # "idle": report the kernel idle; "silent": never answer; "empty": time out at once

    async def get_msg(self, timeout=None):
        if self.messages:
            return self.messages.pop(0)
        if self.then == "idle":
            return {"parent_header": {"msg_id": PARENT}, "header": {"msg_type": "status"}, "msg_type": "status",
                    "content": {"execution_state": "idle"}}
        if self.then == "empty":
            raise Empty
        await asyncio.sleep(3600)


class FakeClient:
    """A kernel client whose replies are scripted."""

    def __init__(self, iopub: list[dict], iopub_then: str = "idle", reply: dict | None = None):
        self.iopub_channel = Channel(iopub, iopub_then)
        replies = [] if reply is None else [{"msg_type": "execute_reply", "content": {"execution_count": 1, **reply}}]
        self.shell_channel = Channel(replies, "empty")

    def execute(self, *args, **kwargs) -> str:
        return PARENT

    async def is_alive(self) -> bool:
        return True


class FakeManager:
    """A kernel manager that records what the executor asked of it."""

    def __init__(self):
        self.interrupted = 0
        self.shut_down = False

    async def interrupt_kernel(self):
        self.interrupted += 1

    async def shutdown_kernel(self, now=False):
        self.shut_down = True

    async def is_alive(self) -> bool:
        return not self.shut_down


def run_cell(client: FakeClient, source: str = "x = 1", cell_output_bytes: int = 2**20, timeout: int = 1):
    """Run one code cell through GradedExecute against `client`; (cell, executor, manager)."""
    nb = new_notebook(cells=[new_code_cell(source)])
    executor = GradedExecute(settings=Settings(timeout), iopub_timeout=1, cell_output_bytes=cell_output_bytes)
    executor.nb = nb
    manager = FakeManager()
    executor.km, executor.kc = manager, client
    executor.start_record(nb, audit=False)
    cell, _ = executor.preprocess_cell(nb.cells[0], {}, 0)
    return cell, executor, manager


def kinds(executor: GradedExecute) -> list[str]:
    return [e["kind"] for e in executor.record()["events"]]


def test_ordinary_output_is_kept_and_nothing_recorded():
    cell, executor, manager = run_cell(FakeClient([stream("hello\n")], reply={"status": "ok"}))
    assert [o.text for o in cell.outputs] == ["hello\n"]
    assert kinds(executor) == [] and manager.interrupted == 0


def test_output_past_the_cap_is_cut_and_the_cell_interrupted():
    flood = [stream("y" * 1000) for _ in range(50)]
    cell, executor, manager = run_cell(FakeClient(flood, reply={"status": "ok"}), cell_output_bytes=10_000)
    kept = "".join(o.get("text", "") for o in cell.outputs)
    assert 9_000 <= kept.count("y") <= 10_000
    assert "[output cut: more than" in kept
    assert kinds(executor) == ["output_limit"]
    assert manager.interrupted == 1, "interrupted once, not once per dropped message"


@pytest.mark.parametrize("message", [
    display({"text/plain": "z" * 30_000}),
    display({"text/plain": "z" * 30_000}, kind="execute_result", execution_count=1),
    {"msg_type": "error", "content": {"ename": "E", "evalue": "z" * 30_000, "traceback": ["z" * 30_000]}},
], ids=["display_data", "execute_result", "error"])
def test_every_kind_of_output_counts_against_the_cap(message):
    cell, executor, _ = run_cell(FakeClient([message], reply={"status": "ok"}), cell_output_bytes=10_000)
    assert kinds(executor) == ["output_limit"]
    assert all("z" * 20_000 not in str(o) for o in cell.outputs)


def test_a_cell_past_its_time_limit_is_interrupted_and_grading_goes_on():
    cell, executor, manager = run_cell(FakeClient([], iopub_then="idle", reply=None))
    assert manager.interrupted == 1 and not manager.shut_down
    assert kinds(executor) == ["timeout"]
    assert "ran longer than 1 s and was stopped" in executor.record()["events"][0]["detail"]
    assert any(o.get("ename") == TIMEOUT_ENAME for o in cell.outputs)
    assert executor._stopped is None, "the next cells still run"


def test_a_kernel_that_ignores_the_interrupt_is_stopped():
    cell, executor, manager = run_cell(FakeClient([], iopub_then="silent", reply=None))
    assert manager.interrupted == 1 and manager.shut_down
    assert kinds(executor) == ["timeout"]
    assert "ran past 1 s and ignored the interrupt" in executor.record()["events"][0]["detail"]
    assert executor._stopped and "timed out" in executor._stopped


def test_a_reply_without_its_output_means_a_message_was_dropped():
    """ZeroMQ drops a message over the size limit; the reply comes, the output stream goes silent."""
    cell, executor, manager = run_cell(FakeClient([], iopub_then="silent", reply={"status": "ok"}))
    assert kinds(executor) == ["output_limit"] and manager.shut_down
    assert "sent one output over" in executor.record()["events"][0]["detail"]


def test_cells_after_a_stop_are_not_run():
    nb = nbformat.v4.new_notebook(cells=[new_code_cell("1"), new_code_cell("2")])
    executor = GradedExecute(settings=Settings(timeout=1))
    executor.start_record(nb, audit=False)
    executor._stopped = "not run: the kernel died in cell 0"
    cell, _ = executor.preprocess_cell(nb.cells[1], {}, 1)
    assert [o.ename for o in cell.outputs] == ["CellNotRun"]


def test_a_message_over_the_size_limit_is_noticed_though_the_stream_recovers(tmp_path):
    """ZeroMQ drops a message over MAXMSGSIZE by disconnecting the peer (then reconnects): the monitor on the
    output socket is how the executor knows that a cell's output was lost."""
    import zmq
    import zmq.asyncio

    context = zmq.asyncio.Context()
    address = f"ipc://{tmp_path}/iopub"
    publisher = zmq.Context.instance().socket(zmq.PUB)
    publisher.bind(address)
    subscriber = context.socket(zmq.SUB)
    subscriber.setsockopt(zmq.MAXMSGSIZE, 1000)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"")
    subscriber.connect(address)

    class Client:
        iopub_channel = type("Channel", (), {"socket": subscriber})()

    Client.context = context
    executor = GradedExecute(settings=Settings(timeout=1))
    executor.kc = Client()
    try:
        assert executor._dropped_messages() == 0
        import time

        time.sleep(0.3)
        publisher.send(b"y" * 5000)
        time.sleep(0.5)
        assert executor._dropped_messages() == 1
        assert executor._dropped_messages() == 0, "each drop is told once"
    finally:
        publisher.close(0)
        context.destroy(0)


def test_each_cell_s_limit_reaches_nbclient_through_its_hook():
    """The run's settings give nbclient each cell's limit as the cell starts (`timeout_func`), the per-cell limit
    or what the notebook's own limit leaves; `timeout` itself is never rewritten."""
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    executor = GradedExecute(settings=Settings(timeout=60, notebook_timeout=300))
    configured = executor.timeout
    executor.start_record(nb, audit=False)
    assert executor._get_timeout(nb.cells[0]) == 60, "nbclient's own reading of the limit"
    executor.clock.deadline -= 290  # ten seconds of the notebook's limit left
    assert executor._get_timeout(nb.cells[0]) in (9, 10)
    assert executor.timeout == configured


def test_a_cell_cut_short_by_the_notebook_s_limit_says_so():
    nb = new_notebook(cells=[new_code_cell("while True: pass")])
    executor = GradedExecute(settings=Settings(timeout=60, notebook_timeout=3), iopub_timeout=1)
    executor.nb = nb
    manager = FakeManager()
    executor.km, executor.kc = manager, FakeClient([], iopub_then="idle", reply=None)
    executor.start_record(nb, audit=False)
    executor.preprocess_cell(nb.cells[0], {}, 0)
    assert manager.interrupted == 1
    assert "ran longer than the 2 s the notebook's 3 s limit left it" in executor.record()["events"][0]["detail"]
    executor.clock.deadline -= 3
    cell, _ = executor.preprocess_cell(new_code_cell("y = 2"), {}, 1)
    assert kinds(executor) == ["timeout", "timeout"] and [o.ename for o in cell.outputs] == ["CellNotRun"]
    assert "ran past its 3 s limit before a cell you added before the first exercise" in executor.record()["events"][1]["detail"]


class FakePair:
    """The kernel pair of a split run, as far as the executor reads it: one test cell's outcome."""

    def __init__(self, ename: str):
        self.ename = ename

    async def run_test(self, cell, index):
        return {"passed": False, "ename": self.ename, "student_stuck": False}


@pytest.mark.parametrize("ename,noted", [("StudentDataError", True), ("MemoryError", True), ("RecursionError", True),
                                         ("AssertionError", False), ("StudentSideGone", False)])
def test_a_test_that_failed_on_what_the_student_s_code_sent_back_is_noted_in_the_record(ename, noted):
    """The row's detail says so (grading/task.py's classify reads the `noted` events); an ordinary failure, or the
    student's side gone, is no note (the control)."""
    cell, executor, _ = run_cell(FakeClient([], reply={"status": "ok"}))
    executor._pair = FakePair(ename)
    executor._run_test_cell(cell, 0, "the test `test_x`")
    notes = [e["detail"] for e in executor.record()["events"] if e["kind"] == "noted"]
    assert bool(notes) is noted and all(ename in n and "`test_x` failed" in n for n in notes), notes


# --- limits from the reference --------------------------------------------------------------------------

REFERENCE = {"setup": 3.0, "define": 0.01, "test_f": 0.5, "test_g": 1.2, "train": 0.3}


def test_default_limits_come_from_the_reference():
    """Per cell max(10 s, 10 x the reference's time); per notebook max(60 s, 5 x its total); a cell the
    student added gets the largest cell limit."""
    limits = Settings(reference_times={"a/nb": REFERENCE}).limits("a/nb")
    assert [limits.cell_seconds(c) for c in ("setup", "define", "test_f", "test_g")] == [30, 10, 10, 12]
    assert limits.cell_seconds("the student's own cell") == 30
    assert limits.notebook_seconds() == 60
    assert Settings(reference_times={"a/nb": {"x": 20.0}}).limits("a/nb").notebook_seconds() == 100
    assert limits.words() == ("per cell 10-30 s (2-9 s once an exercise it calls timed out), notebook 60 s "
                              "(from the reference)")


def test_given_limits_override_the_reference():
    limits = Settings(timeout=7, notebook_timeout=40, reference_times={"a/nb": REFERENCE}).limits("a/nb")
    assert {limits.cell_seconds(c) for c in REFERENCE} == {7} and limits.cell_seconds("x", retimed=True) == 7
    assert limits.notebook_seconds() == 40
    assert limits.words() == "per cell 7 s, notebook 40 s (--timeout, --notebook-timeout)"
    assert Settings(timeout=7).limits("a/nb").notebook_seconds() == 0, "a bare Settings: the cell's limit only"


def test_an_exercise_that_timed_out_gets_short_limits_in_every_later_cell_that_calls_it():
    clock = Settings(reference_times={"a/nb": REFERENCE}).clock("a/nb", ["f", "g"])
    test_f = new_code_cell("assert f(1) == 2", id="test_f")
    test_g = new_code_cell("assert g(f(1)) == 3", id="test_g")
    other = new_code_cell("assert g(2) == 4\nassert draw_f(3)", id="test_g")
    assert clock.for_cell(test_f) == 10
    clock.ran_past(test_f)
    assert clock.timed_out == {"f"}
    assert clock.for_cell(test_g) == 4, "max(2 s, 3 x 1.2 s): it calls f"
    assert clock.for_cell(other) == 12, "g alone (draw_f is another name): its own limit"
    assert clock.for_cell(new_code_cell("f (0)", id="define")) == 2, "max(2 s, 3 x 0.01 s)"


def test_a_timeout_in_a_cell_shortens_the_next_call_of_its_exercise(monkeypatch):
    """Through the executor: the cell that runs past its limit marks the exercise it calls."""
    from grader.grading import settings as limits

    monkeypatch.setattr(limits, "CELL_FLOOR", 1)
    monkeypatch.setattr(limits, "RETRY_FLOOR", 1)
    nb = new_notebook(cells=[new_code_cell("f(1)", id="first"), new_code_cell("f(2)", id="second")])
    executor = GradedExecute(settings=Settings(reference_times={"a/nb": {"first": 0.15, "second": 0.15}}),
                             notebook="a/nb", exercises={"f": "function"}, iopub_timeout=1)
    executor.nb = nb
    manager = FakeManager()
    executor.km, executor.kc = manager, FakeClient([], iopub_then="idle", reply=None)
    executor.start_record(nb, audit=False)
    assert executor._get_timeout(nb.cells[1]) == 2
    executor.preprocess_cell(nb.cells[0], {}, 0)
    assert manager.interrupted == 1 and kinds(executor) == ["timeout"]
    assert "ran longer than 2 s" in executor.record()["events"][0]["detail"]
    assert executor._get_timeout(nb.cells[1]) == 1, "max(1 s, 3 x 0.15 s), where it was 2"
    assert executor.clock.timed_out == {"f"}
    assert set(executor.record()["seconds"]) == {"first"}, "each cell's time, by cell id"


def test_a_cell_that_hands_an_exercise_to_a_helper_counts_as_calling_it():
    """The short limit after a timeout reaches a test that passes the exercise on (`changed_arguments(lstm_cell, ...)`),
    not a cell that only has a longer name or an attribute of the same spelling."""
    from grader.grading.settings import calls

    exercises = {"lstm_cell", "run_packed"}
    assert calls({"source": "_, _changed = changed_arguments(lstm_cell, x, h)"}, exercises) == {"lstm_cell"}
    assert calls({"source": "y = lstm_cell (x, h, c)\nrun_packed(batch)"}, exercises) == {"lstm_cell", "run_packed"}
    assert calls({"source": "model.lstm_cell(x)\nmy_lstm_cell(x)\nrun_packed_twice = 1"}, exercises) == set()
