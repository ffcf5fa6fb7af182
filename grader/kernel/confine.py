"""Limits on a kernel's whole process tree, and on the one folder it may write outside its sandbox.

rlimits bind one process each (three processes of 4 GiB make 12): a control group per kernel bounds
the memory and the number of processes of everything the kernel starts, together. cgroup v2 is used
where the host delegates its `memory` and `pids` controllers; otherwise v1's `memory` and `pids`
hierarchies (root can create groups there on these machines); where neither can be made, the kernel
runs with its rlimits only, and `problem()` says why (the report shows it).

The kernel's run folder (its connection file, sockets and log, the only host folder it can write) is a
small tmpfs of its own when the grader runs as root: nothing the kernel writes there reaches the disk.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
import uuid
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)
CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "grader"
RUN_FOLDER_BYTES = 16 * 2**20


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


@cache
def version() -> str | None:
    """`v2`, `v1`, or None when no memory and pids groups can be made here."""
    if os.geteuid() != 0:
        return None
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if controllers.exists() and {"memory", "pids"} <= set(controllers.read_text().split()):
        try:
            parent = CGROUP_ROOT / PARENT
            parent.mkdir(exist_ok=True)
            _write(CGROUP_ROOT / "cgroup.subtree_control", "+memory +pids")
            _write(parent / "cgroup.subtree_control", "+memory +pids")
            return "v2"
        except OSError as exc:
            log.info("cgroup v2 not usable: %s", exc)
    try:
        for controller in ("memory", "pids"):
            (CGROUP_ROOT / controller / PARENT).mkdir(exist_ok=True)
        return "v1"
    except OSError as exc:
        log.info("cgroup v1 not usable: %s", exc)
        return None


def problem() -> str | None:
    """None when kernels get a control group, else why not."""
    if version() is not None:
        return None
    if os.geteuid() != 0:
        return "not running as root: kernels are limited per process (rlimits), not as a whole"
    return f"no usable memory and pids cgroups under {CGROUP_ROOT}: kernels are limited per process (rlimits) only"


def description() -> str:
    """How kernel process trees are bounded here, in a line for the report's run settings."""
    return f"a cgroup ({version()}) each: memory and processes together" if version() else problem() or ""


class KernelGroup:
    """One kernel's control group: its memory and processes, counted together."""

    def __init__(self, memory_bytes: int, processes: int):
        self.name = f"kernel-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.kind = version()
        self.folders: list[Path] = []
        if self.kind == "v2":
            folder = CGROUP_ROOT / PARENT / self.name
            folder.mkdir()
            _write(folder / "memory.max", str(memory_bytes))
            if (folder / "memory.swap.max").exists():
                _write(folder / "memory.swap.max", "0")
            _write(folder / "pids.max", str(processes))
            self.folders = [folder]
        elif self.kind == "v1":
            memory, pids = CGROUP_ROOT / "memory" / PARENT / self.name, CGROUP_ROOT / "pids" / PARENT / self.name
            memory.mkdir()
            pids.mkdir()
            self.folders = [memory, pids]
            _write(memory / "memory.limit_in_bytes", str(memory_bytes))
            _write(pids / "pids.max", str(processes))

    def join(self) -> None:
        """Put the calling process (a kernel about to start) in the group: its children follow it."""
        self.add(0)

    def add(self, pid: int) -> None:
        """Put process `pid` (0: the caller) in the group, before it starts any other."""
        for folder in self.folders:
            _write(folder / "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        return group_pids(self.folders)

    def peak_memory(self) -> int | None:
        """The most memory the group used, in bytes (None where the kernel does not say)."""
        for folder, name in [(f, n) for f in self.folders for n in ("memory.peak", "memory.max_usage_in_bytes")]:
            try:
                return int((folder / name).read_text())
            except (OSError, ValueError):
                continue
        return None

    def out_of_memory(self) -> bool:
        """Whether the kernel's out-of-memory killer acted in this group."""
        for folder in self.folders:
            for name in ("memory.events", "memory.oom_control"):
                try:
                    for line in (folder / name).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and int(value) > 0:
                            return True
                except (OSError, ValueError):
                    continue
        return False

    def remove(self) -> None:
        """Kill whatever is left in the group, then remove it."""
        remove_groups(self.folders)


def group_pids(folders: list[Path]) -> list[int]:
    """The processes in the control group folders."""
    found = set()
    for folder in folders:
        try:
            found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
        except OSError:
            pass
    return sorted(found)


def remove_groups(folders: list[Path]) -> None:
    """Kill whatever is left in the control group folders, then remove them."""
    for _ in range(20):
        left = group_pids(folders)
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    for folder in folders:
        try:
            folder.rmdir()
        except OSError as exc:
            log.debug("could not remove %s: %s", folder, exc)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


WORKER_FOLDER = re.compile(r"/grader-worker-(\d+)-[^/]+")


def sweep() -> list[str]:
    """Unmount the run folders and remove the control groups of grading processes that died (killed, out of
    memory) before they could: each names the process that made it. What was swept, for the log."""
    swept = []
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        found = WORKER_FOLDER.search(parts[1]) if len(parts) > 1 else None
        if found and parts[0] == "tmpfs" and not pid_alive(int(found.group(1))):
            unmount_run_folder(Path(parts[1]))
            swept.append(parts[1])
    kind = version()
    if kind is not None:
        roots = [CGROUP_ROOT / PARENT] if kind == "v2" else [CGROUP_ROOT / c / PARENT for c in ("memory", "pids")]
        for root in roots:
            for group in root.glob("kernel-*"):
                owner = group.name.split("-")[1]
                if owner.isdigit() and not pid_alive(int(owner)):
                    remove_groups([group])
                    swept.append(str(group))
    if swept:
        log.info("removed what dead grading processes left: %s", ", ".join(swept))
    return swept


def mount_run_folder(folder: Path, uid: int | None) -> bool:
    """Make `folder` a small tmpfs owned by the kernel's uid (root only); whether it could."""
    if os.geteuid() != 0:
        return False
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={RUN_FOLDER_BYTES},mode=0700{owner}", "tmpfs",
                           str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        log.info("no tmpfs for %s: %s", folder, done.stderr.strip())
        return False
    return True


def unmount_run_folder(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)
