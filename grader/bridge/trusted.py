"""The trusted kernel: it runs the test cells, and never a line of student code.

One per worker, sandboxed like a student's kernel but under a uid of its own, started once (forked from the
worker's kernel template when there is one, as the student kernels are) and given a fresh namespace for every
notebook: the bridge's proxies for the notebook's exercise names, then the
setup cells the instructor marked safe for it (imports, constants, given helpers). The tests then run
here while the student's kernel serves their calls (protocol.py, relay.py). A trusted kernel that dies, or
stops answering, is replaced before the next notebook.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from queue import Empty

from nbclient.exceptions import DeadKernelError

from grader.kernel.sandbox import STARTUP_TIMEOUT, SandboxedKernelManager, close_context

log = logging.getLogger(__name__)
BRIDGE_SOURCE = (Path(__file__).with_name("protocol.py")).read_text()
BRIDGE_MODULE = "grader_bridge"
SOCKET_NAME = "bridge.sock"
LIVENESS_SECONDS = 1.0  # how often a wait for a reply checks that the kernel still runs


def install_bridge() -> str:
    """Code that makes protocol.py importable as `grader_bridge` in a kernel (it cannot read the grader's files)."""
    return (f"import sys as _s, types as _t\n"
            f"_m = _t.ModuleType({BRIDGE_MODULE!r})\n"
            f"_s.modules[{BRIDGE_MODULE!r}] = _m\n"
            f"exec(compile({BRIDGE_SOURCE!r}, {BRIDGE_MODULE!r}, 'exec'), _m.__dict__)\n"
            f"del _s, _t, _m\n")


def fresh_namespace(socket_path: str, exercises: dict[str, str]) -> str:
    """Code that empties the trusted kernel's namespace and puts the exercise proxies in it (and makes its
    tracebacks show the student's frames instead of the bridge's)."""
    return (f"get_ipython().reset(new_session=True, aggressive=False)\n"
            f"import sys as _s, torch as _torch\n"
            f"_torch.set_grad_enabled(True)\n"
            f"_torch.set_default_dtype(_torch.float32)\n"
            f"_s.modules[{BRIDGE_MODULE!r}].install_traceback_display(get_ipython())\n"
            f"get_ipython().user_ns.update(_s.modules[{BRIDGE_MODULE!r}].TrustedSide({socket_path!r})"
            f".proxies({json.dumps(exercises)}))\n"
            f"del _s, _torch\n")


async def execute_quietly(kc, code: str, timeout: float, km=None) -> dict:
    """Run `code` in a kernel without output or history; the content of its execute reply. With its manager `km`,
    a kernel that dies meanwhile raises DeadKernelError within a second instead of waiting out `timeout`."""
    msg_id = kc.execute(code, silent=True, store_history=False, allow_stdin=False)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            reply = await kc.get_shell_msg(timeout=max(0.0, min(left, LIVENESS_SECONDS if km is not None else left)))
        except Empty:
            if time.monotonic() >= deadline:
                raise
            if not await km.is_alive():
                raise DeadKernelError("the kernel died before it replied") from None
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


class SetupFailed(RuntimeError):
    """A trusted setup cell of the source notebook raised: the assignment's bug, not the student's."""


class TrustedKernel:
    """A sandboxed kernel for test cells, started once per worker, reset for each notebook."""

    def __init__(self, run_dir: Path, sandbox: str, uid: int, threads: int):
        self.run_dir, self.sandbox, self.uid, self.threads = run_dir, sandbox, uid, threads
        self.km: SandboxedKernelManager | None = None
        self.kc = None
        self.notebooks = 0
        self.template = None  # the worker's KernelTemplate, if any: the kernel is forked from it when it (re)starts

    def __deepcopy__(self, memo):  # nbgrader's config is deep-copied into each step: share, never copy
        return self

    @property
    def socket_path(self) -> Path:
        return self.run_dir / SOCKET_NAME

    async def start(self) -> None:
        """Start the kernel and teach it the bridge."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.run_dir, 0o700)
        template = self.template if self.template is not None and self.template.alive() else None
        self.km = SandboxedKernelManager(kernel_name="python3", mode=self.sandbox, run_dir=str(self.run_dir),
                                         uid=self.uid, threads=self.threads, template=template)
        await self.km.start_kernel(extra_arguments=["--HistoryManager.hist_file=:memory:"], cwd=str(self.run_dir))
        self.kc = self.km.client()
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
        await self.run(install_bridge(), "installing the bridge")
        log.info("trusted kernel %s in %s", "forked" if template is not None else "started", self.run_dir)

    async def alive(self) -> bool:
        return self.km is not None and await self.km.is_alive()

    async def run(self, code: str, what: str, timeout: float = 120) -> None:
        """Run `code` silently; raise SetupFailed with the kernel's error if it fails."""
        content = await execute_quietly(self.kc, code, timeout, self.km)
        if content.get("status") != "ok":
            raise SetupFailed(f"{what}: {content.get('ename')}: {content.get('evalue')}")

    async def prepare(self, exercises: dict[str, str], setup: list[str]) -> None:
        """A fresh namespace for the next notebook: its proxies, then its trusted setup cells."""
        if not await self.alive():
            await self.stop()
            await self.start()
        await self.run(fresh_namespace(str(self.socket_path), exercises), "resetting the trusted kernel")
        for i, code in enumerate(setup):
            await self.run(code, f"trusted setup cell {i + 1} of the assignment")
        self.notebooks += 1

    async def stop(self) -> None:
        """Kill the kernel (it holds nothing worth a graceful exit) and close its sockets."""
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None:
            try:
                await self.km.shutdown_kernel(now=True)
            except Exception:
                log.debug("the trusted kernel was already gone", exc_info=True)
            close_context(self.km)
        self.km = self.kc = None
