"""Student kernels forked from a warm template: the grader's side.

A grading process starts one template (template.py, inside a bubblewrap sandbox of its own) and asks it
for a kernel per notebook. The grader keeps what it does for a fresh kernel: it leases the uid, makes the
control group, mounts the run folder's tmpfs and writes the connection file there; it then hands the run
folder to the template as a detached mount (open_tree), and once the template has forked the kernel's
monitor, puts that process in the kernel's control group before it may go on. `ForkedProvisioner` is what
jupyter_client's kernel manager drives instead of a Popen: the kernel's life is its monitor's.

`problem()` says why forking cannot work here (not root, no sandbox, a kernel without open_tree, a
template that fails its checks); the grader then starts every kernel fresh, as before, and says so.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner

from grader.course.layout import DATA_FOLDER
from grader.kernel.sandbox import (SCRATCH_HOME, STARTUP_TIMEOUT, TMPFS_BYTES, bwrap_problem, bwrap_view,
                                   kernel_env, readonly_roots, running_as_root)

log = logging.getLogger(__name__)
MODES = ("auto", "fork", "fresh")
TEMPLATE_SOURCE = Path(__file__).with_name("template.py").read_text()
# Read the template's source from stdin (the sandbox cannot read the grader's files), then serve.
BOOT = ("import json, os, sys\n"
        "source = sys.stdin.read()\n"
        "null = os.open('/dev/null', os.O_RDONLY); os.dup2(null, 0); os.close(null)\n"
        "exec(compile(source, 'kernel-template', 'exec'))\n"
        "del source, null\n"
        "main(int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]))\n")
# What the template holds when it may fork: the capabilities its children need to isolate themselves, then drop.
TEMPLATE_CAPS = "CAP_SYS_ADMIN,CAP_SETUID,CAP_SETGID,CAP_SETPCAP,CAP_NET_ADMIN"
# Imported before any notebook: the kernel itself and what every course notebook needs.
PRELOAD = ["ipykernel_launcher", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
           "IPython.core.completer", "IPython.core.completerlib", "IPython.core.debugger", "IPython.core.oinspect",
           "IPython.core.logger", "IPython.extensions.storemagic", "sqlite3", "tornado.platform.asyncio",
           "tornado.queues", "matplotlib_inline.backend_inline", "torch", "torch.nn", "torch.nn.functional", "numpy",
           "matplotlib.pyplot"]
# While the template imports: OpenBLAS would start its threads at import, and so would the jemalloc that pyarrow
# bundles (notebook 5's datasets imports it) its background purging thread; a fork keeps only one thread.
IMPORT_ENV = {"OPENBLAS_NUM_THREADS": "1", "JE_ARROW_MALLOC_CONF": "background_thread:false"}
SYS_OPEN_TREE, OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, AT_RECURSIVE = 428, 1, os.O_CLOEXEC, 0x8000
MESSAGE_BYTES = 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class TemplateFailed(RuntimeError):
    """The template could not start, failed its checks, died, or stopped answering."""


def open_tree(path: Path, recursive: bool = True) -> int:
    """A detached copy of the mount at `path` (its tmpfs; or a bind of the folder `path`, without the mounts below
    it unless `recursive`), as a descriptor another mount namespace can attach."""
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    fd = _libc.syscall(SYS_OPEN_TREE, -100, str(path).encode(), flags)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"open_tree {path}: {os.strerror(err)}")
    return fd


def template_command(scratch: Path, info_fd: int, control_fd: int, preload: list[str]) -> list[str]:
    """bubblewrap around the template: the view a kernel has (the grader's scratch folder an empty mount
    point), pid 1 of its own pid namespace, with the capabilities its children need to isolate themselves."""
    cmd = bwrap_view([str(scratch)])
    cmd += ["--dir", str(scratch), "--chdir", SCRATCH_HOME, "--as-pid-1", "--info-fd", str(info_fd),
            "--cap-add", TEMPLATE_CAPS, "--", sys.executable, "-c", BOOT, str(control_fd), json.dumps(preload),
            json.dumps(IMPORT_ENV)]
    return cmd


def covered_roots(folders: list[str]) -> list[str]:
    """The read-only roots a kernel reads (the system, the Python environment) that lie in /tmp, /dev/shm or one of
    `folders`, where a forked kernel mounts a fresh tmpfs: it puts them back on top (a venv under /tmp, say)."""
    covers = [Path(f) for f in ["/tmp", "/dev/shm", *folders]]
    return [root for root in readonly_roots() if any(Path(root).is_relative_to(c) for c in covers)]


def read_info(fd: int) -> dict:
    """bubblewrap's --info-fd report (the sandboxed process's host pid), read up to its closing brace."""
    text = ""
    with os.fdopen(fd) as info:
        while "}" not in text:
            line = info.readline()
            if not line:
                break
            text += line
    return json.loads(text or "{}")


def ns_pids(pid: int) -> list[int]:
    """`pid` in each pid namespace it belongs to, outermost first (NSpid)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(p) for p in line.split()[1:]]
    return [pid]


class ForkedKernel:
    """One forked kernel, seen from the grader: its monitor's host pid, watched through a pidfd."""

    def __init__(self, template: "KernelTemplate", request_id: int, pid: int):
        self.template, self.request_id, self.pid = template, request_id, pid
        self.pidfd = os.pidfd_open(pid)

    def alive(self) -> bool:
        return self.pidfd >= 0 and not select.select([self.pidfd], [], [], 0)[0]

    def exit_code(self) -> int | None:
        """None while it runs; its monitor's exit code (as the template saw it) once it has exited."""
        if self.alive():
            return None
        return self.template.exit_code(self.request_id)

    def signal(self, signum: int) -> None:
        """Signal the monitor (SIGKILL takes the kernel's whole pid namespace with it)."""
        if self.pidfd >= 0 and self.alive():
            try:
                signal.pidfd_send_signal(self.pidfd, signum)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


class KernelTemplate:
    """A grading process's template: started once, asked for one kernel per notebook."""

    def __init__(self, scratch: Path, threads: int, grading_env: str = "autograde", preload: list[str] | None = None):
        self.scratch, self.threads, self.grading_env = scratch, threads, grading_env
        self.preload = list(dict.fromkeys(PRELOAD + (preload or [])))
        self.process: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.pid: int | None = None  # the template's host pid
        self.pidfd = -1
        self.ready: dict = {}
        self.exits: dict[int, int] = {}
        self.requests = 0
        self.started_at = 0.0

    def __deepcopy__(self, memo):  # nbgrader deep-copies its config into each step: share, never copy
        return self

    def env(self) -> dict[str, str]:
        return kernel_env(self.threads, {"NBGRADER_EXECUTION": self.grading_env})

    def start(self) -> None:
        """Start the template and wait until it has imported everything and passed its checks."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the template; it imports while the caller goes on (`wait_ready` waits for it)."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        info_r, info_w = os.pipe()
        self.scratch.mkdir(parents=True, exist_ok=True)
        with open(self.scratch / "template.log", "ab") as logfile:
            self.process = subprocess.Popen(
                template_command(self.scratch, info_w, child.fileno(), self.preload), stdin=subprocess.PIPE,
                stdout=logfile, stderr=logfile, pass_fds=(info_w, child.fileno()), env=self.env())
        child.close()
        os.close(info_w)
        self.control = parent
        self.started_at = time.monotonic()
        try:
            self.process.stdin.write(TEMPLATE_SOURCE.encode())
            self.process.stdin.close()
            self.pid = read_info(info_r).get("child-pid")
        except (OSError, ValueError) as exc:
            self.stop()
            raise TemplateFailed(f"the kernel template did not start: {exc}; {self.log_tail()}") from None

    def wait_ready(self) -> None:
        """Wait until the launched template has imported everything and passed its checks (at once if it has)."""
        if self.ready:
            return
        if self.process is None:
            raise TemplateFailed("the kernel template was stopped")
        try:
            message = self._receive(lambda m: "ready" in m, STARTUP_TIMEOUT)
        except (OSError, ValueError, TemplateFailed) as exc:
            self.stop()
            raise TemplateFailed(f"the kernel template did not start: {exc}; {self.log_tail()}") from None
        if not message["ready"] or self.pid is None:
            self.stop()
            raise TemplateFailed("the kernel template may not fork: " + "; ".join(message.get("problems") or ["no pid"]))
        self.ready = message
        self.pidfd = os.pidfd_open(self.pid)
        if message.get("not_imported"):
            log.info("the kernel template could not import %s", ", ".join(message["not_imported"]))
        log.info("kernel template %s ready in %.1f s (%d modules)", self.pid, time.monotonic() - self.started_at,
                 message.get("modules", 0))

    def log_tail(self) -> str:
        try:
            return (self.scratch / "template.log").read_text(errors="replace")[-2000:].strip()
        except OSError:
            return ""

    def alive(self) -> bool:
        """Whether the template runs (its sandbox's own process may outlive it by a moment)."""
        if self.process is None or self.process.poll() is not None:
            return False
        return self.pidfd < 0 or not select.select([self.pidfd], [], [], 0)[0]

    def _send(self, message: dict, fds: list[int] = ()) -> None:
        try:
            socket.send_fds(self.control, [json.dumps(message).encode()], list(fds))
        except OSError as exc:
            raise TemplateFailed(f"the kernel template is gone ({exc})") from None

    def _receive(self, wanted, timeout: float) -> dict:
        """The next message `wanted` accepts; exit reports met on the way are kept."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TemplateFailed(f"the kernel template did not answer within {timeout:g} s")
            if not select.select([self.control], [], [], min(left, 1.0))[0]:
                if not self.alive():
                    raise TemplateFailed("the kernel template died")
                continue
            data = self.control.recv(MESSAGE_BYTES)
            if not data:
                raise TemplateFailed("the kernel template died")
            message = json.loads(data)
            if "exited" in message:
                self.exits[message["exited"]] = message["status"]
            if wanted(message):
                return message

    def _drain(self) -> None:
        """Take in the exit reports that arrived meanwhile."""
        while self.control is not None and select.select([self.control], [], [], 0)[0]:
            data = self.control.recv(MESSAGE_BYTES)
            if not data:
                return
            message = json.loads(data)
            if "exited" in message:
                self.exits[message["exited"]] = message["status"]

    def exit_code(self, request_id: int) -> int:
        try:
            self._drain()
        except OSError:
            pass
        return self.exits.pop(request_id, -signal.SIGKILL)

    def _host_pid(self, ns_pid: int) -> int:
        """The host pid of the template's child `ns_pid`."""
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            for child in Path(f"/proc/{self.pid}/task/{tid}/children").read_text().split():
                try:
                    if ns_pids(int(child))[-1] == ns_pid:
                        return int(child)
                except OSError:
                    continue
        raise TemplateFailed(f"the kernel template's child {ns_pid} is not there")

    def spawn(self, argv: list[str], run_dir: Path, uid: int, limits: dict[str, int], group=None,
              env: dict[str, str] | None = None, probe: bool = False, data_dir: str | None = None) -> ForkedKernel:
        """Fork a kernel for the connection file in `run_dir`, as `uid`, in `group`, reading `data_dir` (the
        assignment's data, if any) as data/ in its home folder; running once this returns."""
        if not self.alive():
            raise TemplateFailed("the kernel template died")
        self.requests += 1
        request = {"id": self.requests, "argv": argv, "env": env or self.env(), "uid": uid, "run_dir": str(run_dir),
                   "scratch": str(self.scratch), "home": SCRATCH_HOME, "hostname": "sandbox",
                   "tmpfs_bytes": TMPFS_BYTES, "limits": limits, "threads": self.threads, "probe": probe,
                   "covered_roots": covered_roots([SCRATCH_HOME, str(self.scratch)]),
                   "data": f"{SCRATCH_HOME}/{DATA_FOLDER}" if data_dir else None}
        trees = [open_tree(run_dir)]
        try:
            if data_dir:
                trees.append(open_tree(Path(data_dir), recursive=False))
            self._send(request, trees)
        finally:
            for tree in trees:
                os.close(tree)
        forked = self._receive(lambda m: m.get("forked") == request["id"], 30)
        ok = False
        try:
            pid = self._host_pid(forked["pid"])
            if group is not None:
                group.add(pid)
            kernel = ForkedKernel(self, request["id"], pid)
            ok = True
        finally:
            self._send({"go": request["id"], "ok": ok})
        return kernel

    def provisioner(self, kernel_id: str, kernel_spec, manager) -> "ForkedProvisioner":
        """What `manager` (a SandboxedKernelManager) drives instead of a Popen, for one kernel of this template."""
        provisioner = ForkedProvisioner(kernel_id=kernel_id, kernel_spec=kernel_spec, parent=manager)
        provisioner.template = self
        return provisioner

    def stop(self) -> None:
        """Kill the template (every kernel it forked dies with its pid namespace) and close its socket."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("the kernel template %s did not exit", self.pid)
        if self.control is not None:
            self.control.close()
        if self.pidfd >= 0:
            os.close(self.pidfd)
        self.process = self.control = None
        self.pidfd = -1


class ForkedProvisioner(LocalProvisioner):
    """What jupyter_client's manager drives for a forked kernel: launch asks the template; the kernel's life
    is its monitor's, watched through a pidfd (it is not the grader's child)."""

    template = None  # KernelTemplate
    request: dict = {}  # run_dir, uid, limits, group: set by the manager before the launch
    kernel: ForkedKernel | None = None

    @property
    def has_process(self) -> bool:
        return self.kernel is not None

    async def launch_kernel(self, cmd: list[str], **kwargs) -> dict:
        self.kernel = self.template.spawn(cmd, **self.request)
        self.pid, self.pgid = self.kernel.pid, None
        self.cwd = SCRATCH_HOME
        return self.connection_info

    async def poll(self) -> int | None:
        return self.kernel.exit_code() if self.kernel is not None else 0

    async def wait(self) -> int | None:
        import asyncio

        if self.kernel is None:
            return 0
        while (code := await self.poll()) is None:
            await asyncio.sleep(0.05)
        self.kernel.close()
        self.kernel = None
        return code

    async def send_signal(self, signum: int) -> None:
        if self.kernel is not None:
            self.kernel.signal(signum)

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:  # a disposable sandbox: nothing to save
        await self.send_signal(signal.SIGKILL)

    async def cleanup(self, restart: bool = False) -> None:
        if self.kernel is not None and not self.kernel.alive():
            self.kernel.close()
            self.kernel = None


def notebook_imports(sources: list[Path]) -> list[str]:
    """The modules the course's source notebooks import (the instructor's code: trusted), in order."""
    import ast

    import nbformat

    found: list[str] = []
    for source in sources:
        for cell in nbformat.read(source, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:  # IPython magics: not Python
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found += [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.append(node.module)
    return list(dict.fromkeys(found))


def resolve(mode: str, sandbox: str) -> tuple[bool, str]:
    """(fork or not, the run settings' line) for `--kernels mode` with the resolved sandbox."""
    if mode not in MODES:
        raise ValueError(f"--kernels must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "fresh":
        return False, "a fresh interpreter per notebook (--kernels fresh)"
    why = problem(sandbox)
    if why is None:
        return True, "forked from a warm template per grading process"
    if mode == "fork":
        from grader.errors import GraderError

        raise GraderError(f"--kernels fork: forking is unavailable here: {why}")
    return False, f"a fresh interpreter per notebook: forking is unavailable ({why})"


@cache
def problem(sandbox: str) -> str | None:
    """None when kernels can be forked here (tried once: a template forks one kernel), else why not."""
    if sandbox != "bwrap":
        return "it needs the bubblewrap sandbox"
    if not running_as_root():
        return "it needs root, to give each kernel its uid, namespaces and control group"
    if bwrap_problem() is not None:
        return bwrap_problem()
    return probe()


def probe() -> str | None:
    """Start a bare template (nothing imported) and fork one child through the whole isolation: None when it
    came out as the uid it was given, else what went wrong."""
    import tempfile

    from grader.kernel import confine

    with tempfile.TemporaryDirectory(prefix="grader-fork-probe-") as folder:
        scratch = Path(folder) / "scratch"
        run_dir = scratch / "run"
        run_dir.mkdir(parents=True)
        os.chmod(folder, 0o711)
        os.chmod(scratch, 0o711)
        uid = 65534
        mounted = confine.mount_run_folder(run_dir, uid)
        os.chown(run_dir, uid, uid)
        template = KernelTemplate(scratch, 1)
        template.preload = []
        try:
            template.start()
            kernel = template.spawn([sys.executable], run_dir, uid, {}, probe=True)
            deadline = time.monotonic() + 30
            while kernel.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
            kernel.close()
            said = (run_dir / "probe").read_text() if (run_dir / "probe").exists() else "nothing"
        except (OSError, TemplateFailed) as exc:
            return f"a probe kernel failed: {exc}"
        finally:
            template.stop()
            if mounted:
                confine.unmount_run_folder(run_dir)
    return None if said == str(uid) else f"a probe kernel came out as {said!r}, not uid {uid}"
