"""The trusted kernel's set-up, without a kernel: the code it runs, how it fails, and when it is replaced."""

from __future__ import annotations

import ast
import asyncio
import copy
import sys
import time
from queue import Empty

import pytest
from nbclient.exceptions import DeadKernelError

from grader.bridge import trusted
from grader.bridge.trusted import BRIDGE_MODULE, SetupFailed, TrustedKernel, execute_quietly, fresh_namespace


class Client:
    """A kernel client whose execute replies are scripted (and preceded by a reply to someone else)."""

    def __init__(self, *contents: dict):
        self.contents, self.sent = list(contents), []

    def execute(self, code, **kwargs) -> str:
        self.sent.append((code, kwargs))
        return f"msg-{len(self.sent)}"

    async def get_shell_msg(self, timeout=None):
        if not self.contents:
            raise TimeoutError
        if getattr(self, "_other", False) is False:
            self._other = True
            return {"parent_header": {"msg_id": "someone-else"}, "content": {"status": "error"}}
        self._other = False
        return {"parent_header": {"msg_id": f"msg-{len(self.sent)}"}, "content": self.contents.pop(0)}


def test_the_bridge_installs_as_a_module_the_kernel_cannot_read_from_disk():
    namespace: dict = {}
    try:
        exec(trusted.install_bridge(), namespace)
        module = sys.modules[BRIDGE_MODULE]
        assert hasattr(module, "StudentSide") and hasattr(module, "TrustedSide")
        assert module.__dict__.get("__file__") is None, "compiled from text: no path into the grader's files"
        assert set(namespace) == {"__builtins__"}, "nothing left in the kernel's namespace"
    finally:
        sys.modules.pop(BRIDGE_MODULE, None)


def test_a_fresh_namespace_holds_the_proxies_and_no_injected_code():
    """The socket path and exercise names are data in the code the kernel runs, whatever characters they hold."""
    path, exercises = "/tmp/it's \"odd\"\n/bridge.sock", {"run_packed": "function", "x'); import os; ('": "module"}
    code = fresh_namespace(path, exercises)
    tree = ast.parse(code)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "TrustedSide"]
    assert [ast.literal_eval(c.args[0]) for c in calls] == [path]
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import) and any(a.name == "os" for a in n.names)]
    assert code.startswith("get_ipython().reset(new_session=True")


def test_quiet_execution_waits_for_its_own_reply():
    client = Client({"status": "ok", "user_expressions": {}})
    content = asyncio.run(execute_quietly(client, "x = 1", timeout=5))
    assert content["status"] == "ok"
    assert client.sent == [("x = 1", {"silent": True, "store_history": False, "allow_stdin": False})]


class Silent:
    """A kernel client that never replies: each wait for a message runs out."""

    def execute(self, code, **kwargs) -> str:
        return "msg-1"

    async def get_shell_msg(self, timeout=None):
        await asyncio.sleep(timeout)
        raise Empty


class Manager:
    """A kernel manager whose kernel dies after `lives` checks (never, if None)."""

    def __init__(self, lives: int | None):
        self.lives, self.checks = lives, 0

    async def is_alive(self) -> bool:
        self.checks += 1
        return self.lives is None or self.checks <= self.lives


def test_a_kernel_that_dies_before_replying_is_noticed_within_a_check(monkeypatch):
    """A trusted kernel forked from a template killed just then answers kernel_info and dies: the wait for its reply
    ends at the next check, not after the whole limit; the control: a live kernel that never replies waits it out."""
    monkeypatch.setattr(trusted, "LIVENESS_SECONDS", 0.05)
    dying = Manager(lives=2)
    started = time.monotonic()
    with pytest.raises(DeadKernelError):
        asyncio.run(execute_quietly(Silent(), "x = 1", timeout=5, km=dying))
    assert time.monotonic() - started < 2 and dying.checks == 3
    alive = Manager(lives=None)
    started = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(execute_quietly(Silent(), "x = 1", timeout=0.5, km=alive))
    assert time.monotonic() - started >= 0.5 and alive.checks >= 5


def kernel(tmp_path, client: Client, alive: bool = True) -> TrustedKernel:
    made = TrustedKernel(tmp_path, "none", -1, 1)
    made.kc = client
    made.started = 0

    async def is_alive() -> bool:
        return alive

    async def start() -> None:
        made.started += 1

    async def stop() -> None:
        pass

    made.alive, made.start, made.stop = is_alive, start, stop
    return made


def test_each_notebook_gets_a_fresh_namespace_then_its_setup_cells_in_order(tmp_path):
    client = Client({"status": "ok"}, {"status": "ok"}, {"status": "ok"})
    made = kernel(tmp_path, client)
    asyncio.run(made.prepare({"run_packed": "function"}, ["import torch", "SEED = 0"]))
    codes = [code for code, _ in client.sent]
    assert codes[0] == fresh_namespace(str(tmp_path / trusted.SOCKET_NAME), {"run_packed": "function"})
    assert codes[1:] == ["import torch", "SEED = 0"]
    assert (made.notebooks, made.started) == (1, 0), "a live kernel is reused"


def test_a_dead_trusted_kernel_is_replaced_before_the_next_notebook(tmp_path):
    made = kernel(tmp_path, Client({"status": "ok"}), alive=False)
    asyncio.run(made.prepare({}, []))
    assert made.started == 1


def test_a_failing_setup_cell_is_the_assignment_s_bug_and_says_which(tmp_path):
    made = kernel(tmp_path, Client({"status": "ok"}, {"status": "ok"},
                                   {"status": "error", "ename": "NameError", "evalue": "name 'np' is not defined"}))
    with pytest.raises(SetupFailed, match="trusted setup cell 2 of the assignment: NameError: name 'np' is not defined"):
        asyncio.run(made.prepare({}, ["import torch", "x = np.zeros(3)"]))


def test_nbgrader_s_deep_copy_of_its_config_shares_the_kernel(tmp_path):
    made = TrustedKernel(tmp_path, "none", -1, 1)
    assert copy.deepcopy({"trusted": made})["trusted"] is made
    assert made.socket_path == tmp_path / trusted.SOCKET_NAME
