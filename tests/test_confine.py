"""A kernel's whole process tree held to its memory and process count, its run folder a small tmpfs, and what a
dead grading process left behind swept away: on this host's own control groups (root), each with its control."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import uuid

import pytest
from helpers import require

from grader.kernel import confine
from grader.kernel.confine import KernelGroup


@pytest.fixture
def groups():
    require(os.geteuid() == 0 and confine.version() is not None, f"no control groups here: {confine.problem()}")
    made: list[KernelGroup] = []
    yield lambda memory, processes: made.append(KernelGroup(memory, processes)) or made[-1]
    for group in made:
        group.remove()


def run_in(group: KernelGroup | None, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], preexec_fn=group.join if group else None,
                          capture_output=True, text=True, timeout=60)


# Each child holds its slot for a while (its output closed, so nobody waits for it) while the parent forks on.
FORKS = ("import os, time\nmade = 0\nfor _ in range(40):\n    try:\n        pid = os.fork()\n    except OSError:\n"
         "        break\n    if pid == 0:\n        os.close(1); os.close(2); time.sleep(5); os._exit(0)\n    made += 1\n"
         "print(made)\n")


def test_the_processes_of_a_group_are_counted_together(groups):
    assert int(run_in(groups(2**30, 8), FORKS).stdout) < 8
    assert int(run_in(None, FORKS).stdout) == 40, "control: outside the group every fork succeeds"


def test_the_memory_of_a_group_is_counted_together(groups):
    group = groups(96 * 2**20, 64)
    hungry = "block = bytearray(300 * 2**20)\nprint('held')"
    done = run_in(group, hungry)
    assert done.returncode == -9 and "held" not in done.stdout
    assert group.out_of_memory() and group.peak_memory() <= 96 * 2**20
    assert run_in(None, hungry).stdout.strip() == "held", "control: outside the group it gets its memory"


def test_a_removed_group_leaves_no_process_and_no_folder(groups):
    group = groups(2**30, 64)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn=group.join)
    assert group.pids() == [sleeper.pid]
    group.remove()
    assert sleeper.wait(timeout=10) == -9
    assert not any(folder.exists() for folder in group.folders)


def test_what_a_dead_grading_process_left_is_swept(groups):
    gone = subprocess.Popen(["true"])
    gone.wait()
    kind = confine.version()
    roots = [confine.CGROUP_ROOT / confine.PARENT] if kind == "v2" else \
        [confine.CGROUP_ROOT / c / confine.PARENT for c in ("memory", "pids")]
    left = [root / f"kernel-{gone.pid}-{uuid.uuid4().hex[:8]}" for root in roots]
    mine = groups(2**30, 64)  # a live process's group is kept
    for folder in left:
        folder.mkdir()
    swept = confine.sweep()
    assert all(str(folder) in swept and not folder.exists() for folder in left)
    assert all(folder.exists() for folder in mine.folders)


def test_the_run_folder_is_a_small_tmpfs(tmp_path):
    require(os.geteuid() == 0, "mounting needs root")
    folder = tmp_path / "run"
    folder.mkdir()
    assert confine.mount_run_folder(folder, None)
    try:
        with pytest.raises(OSError) as caught, open(folder / "filler", "wb") as f:
            for _ in range(confine.RUN_FOLDER_BYTES // 2**20 + 2):
                f.write(b"z" * 2**20)
                f.flush()
        assert caught.value.errno == errno.ENOSPC
    finally:
        confine.unmount_run_folder(folder)
    with open(folder / "filler", "wb") as f:  # control: the same folder, unmounted, is the disk's
        f.write(b"z" * (confine.RUN_FOLDER_BYTES + 2**20))


def test_without_root_kernels_are_limited_per_process_and_the_report_says_so(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    confine.version.cache_clear()
    try:
        assert confine.version() is None
        assert confine.description() == confine.problem() == \
            "not running as root: kernels are limited per process (rlimits), not as a whole"
    finally:
        monkeypatch.undo()
        confine.version.cache_clear()
    if confine.version() is not None:
        assert confine.problem() is None and confine.description().startswith(f"a cgroup ({confine.version()}) each")
