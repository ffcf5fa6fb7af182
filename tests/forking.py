"""Kernels started the grader's two ways (forked from a template, or fresh), and what a kernel says about itself.

`kernel(template)` starts one sandboxed student kernel as grading does (a leased uid, its control group, its
tmpfs run folder), forked from `template` or fresh when it is None; `run(kc, code)` returns what the code
printed. FACTS is code that prints, as JSON, what a kernel can see of its own confinement.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import asynccontextmanager, contextmanager, nullcontext
from pathlib import Path

from grader.course import layout
from grader.kernel import uids
from grader.kernel.sandbox import SandboxedKernelManager

FACTS = r'''
import json, os, resource, socket, sys
def _status():
    keep = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")
    return {k: v.strip() for k, v in (l.split(":", 1) for l in open("/proc/self/status")) if k in keep}
def _mounts():
    found = {}
    for line in open("/proc/self/mountinfo"):
        left, right = line.split(" - ")
        found[left.split()[4]] = (right.split()[0], left.split()[5])  # mount point -> (type, options)
    return found
def _fds():
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return out
from ipykernel.connect import get_connection_file
print(json.dumps({
    "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(), "status": _status(),
    "ns": {n: os.readlink(f"/proc/self/ns/{n}") for n in ("mnt", "pid", "net", "ipc", "uts", "cgroup")},
    "cgroup": open("/proc/self/cgroup").read().split(), "mounts": _mounts(), "fds": _fds(),
    "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), "pid": os.getpid(),
    "hostname": socket.gethostname(), "interfaces": [name for _, name in socket.if_nameindex()],
    "env": dict(os.environ), "cwd": os.getcwd(), "home": os.listdir(os.path.expanduser("~")), "tmp": os.listdir("/tmp"),
    "run_folder": os.path.dirname(get_connection_file()), "path": sys.path,
    "argv": [a.replace(os.path.dirname(get_connection_file()), "RUN") for a in sys.argv],
    "rlimits": {n: resource.getrlimit(getattr(resource, n)) for n in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE")},
}))
'''


async def run(kc, code: str, timeout: float = 60) -> str:
    """What `code` printed in the kernel (its error, if it raised)."""
    msg_id = kc.execute(code, store_history=False)
    printed = []
    while True:
        msg = await kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            printed.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(printed)


async def facts(kc) -> dict:
    return json.loads(await run(kc, FACTS))


@asynccontextmanager
async def kernel(scratch: Path, template=None, uid: int | None = None, data_dir: Path | None = None):
    """A sandboxed student kernel as grading starts one (forked from `template`, or fresh), under a uid leased
    for it (or `uid`, leased by the caller), reading `data_dir` as its assignment's data: (manager, client, uid)."""
    job = Path(tempfile.mkdtemp(prefix="job-", dir=scratch))
    os.chmod(job, 0o711)
    run_dir = job / "run"
    run_dir.mkdir()
    with (uids.lease(layout.UID_LOCKS) if uid is None else nullcontext(uid)) as uid:
        km = SandboxedKernelManager(kernel_name="python3", mode="bwrap", run_dir=str(run_dir), uid=uid, template=template,
                                    data_dir=str(data_dir or ""))
        await km.start_kernel(extra_arguments=["--HistoryManager.hist_file=:memory:"])
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=120)
            yield km, kc, uid
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)


def scratch_folder(root: Path) -> Path:
    """A worker's scratch folder under `root` (a short path: socket paths must stay under 108 bytes), named as
    the grader names it."""
    folder = Path(tempfile.mkdtemp(prefix=f"grader-worker-{os.getpid()}-", dir=root))
    os.chmod(root, 0o755)
    os.chmod(folder, 0o711)
    return folder


@contextmanager
def short_folder():
    """A folder directly under /tmp, removed afterwards (pytest's tmp_path is too deep for kernel sockets)."""
    folder = Path(tempfile.mkdtemp(prefix="gt-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def host_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as seen from the host."""
    return {k: v.strip() for k, v in (line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())}


def host_ns(pid: int) -> dict[str, str]:
    return {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in ("mnt", "pid", "net", "ipc", "uts", "cgroup")}
