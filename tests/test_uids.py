"""Kernel uids: one per kernel on this host, across concurrent grading runs, released when their holder ends."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading

import nbformat
import pytest
from helpers import descendants, require, student_processes, wait_until, with_cell, write_submission

from grader.course import answers, cells, layout
from grader.errors import GraderError
from grader.kernel import uids
from grader.kernel.sandbox import bwrap_problem
from grader.run.autograde import autograde

NB = layout.SERIES[0]


@pytest.fixture
def first_uid_first(monkeypatch):
    """Leases probe the uids in order from FIRST_UID (they start at a random one)."""
    monkeypatch.setattr(uids.random, "randrange", lambda n: 0)


def test_two_leases_never_share_a_uid_and_a_released_one_is_free(tmp_path):
    with uids.lease(tmp_path) as a, uids.lease(tmp_path) as b:
        assert a != b and all(uids.FIRST_UID <= u < uids.FIRST_UID + uids.UID_COUNT for u in (a, b))
    fd = os.open(tmp_path / str(a), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # would raise if the lease still held it
    finally:
        os.close(fd)
    assert oct(tmp_path.stat().st_mode & 0o777) == "0o700"


def test_a_uid_another_process_holds_is_skipped(tmp_path, first_uid_first):
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(tmp_path / str(uids.FIRST_UID))!r}, os.O_CREAT | os.O_RDWR)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(30)\n"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with uids.lease(tmp_path) as uid:
            assert uid == uids.FIRST_UID + 1
    finally:
        holder.kill()
        holder.wait()
    with uids.lease(tmp_path) as uid:
        assert uid == uids.FIRST_UID, "the lock died with the process that held it"


def test_a_uid_that_still_runs_processes_is_skipped(tmp_path, first_uid_first, monkeypatch):
    monkeypatch.setattr(uids, "running_processes_of", lambda uid: uid == uids.FIRST_UID)
    with uids.lease(tmp_path) as uid:
        assert uid == uids.FIRST_UID + 1


def test_when_every_uid_is_taken_the_error_says_so(tmp_path, first_uid_first, monkeypatch):
    monkeypatch.setattr(uids, "UID_COUNT", 2)
    with uids.lease(tmp_path), uids.lease(tmp_path):
        with pytest.raises(GraderError, match="no free uid in 20000..20001: too many kernels on this host"):
            with uids.lease(tmp_path):
                pass


def test_processes_are_found_by_uid():
    assert uids.running_processes_of(os.getuid())
    assert not uids.running_processes_of(uids.FIRST_UID + uids.UID_COUNT + 4242)


# --- two runs at once (real kernels) -------------------------------------------------------------

HOG = '''
import os, time
children = 0
for _ in range(60):
    try:
        if os.fork() == 0:
            time.sleep(40)
            os._exit(0)
        children += 1
    except OSError:
        break
print("holding", children, "processes")
time.sleep(15)
'''


@pytest.mark.slow
@pytest.mark.sandbox
def test_two_runs_at_once_do_not_share_a_kernel_uid(tmp_path):
    """Run A's student keeps dozens of processes alive; run B, started meanwhile, grades as usual."""
    require(bwrap_problem() is None, f"bubblewrap unavailable: {bwrap_problem()}")
    released = nbformat.read(NB.released, as_version=4)
    full = sum(cells.points(c) for c in released.cells if cells.is_test(c))
    good = answers.submission(NB)
    write_submission(tmp_path / "a", "hog", NB, with_cell(good, HOG, after="run_packed"))
    write_submission(tmp_path / "b", "honest", NB, good)
    first = threading.Thread(target=autograde, args=(tmp_path / "a", tmp_path / "out-a"),
                             kwargs={"workers": 1, "timeout": 30, "assignment": [NB.assignment]}, daemon=True)
    first.start()
    wait_until(lambda: len(student_processes(os.getpid())) >= 20, 300, "run A's student to hold its processes")
    rows = autograde(tmp_path / "b", tmp_path / "out-b", workers=1, timeout=30, assignment=[NB.assignment])
    first.join(timeout=300)
    assert (rows[0].status, rows[0].score) == ("graded", full), rows[0].detail


@pytest.mark.slow
@pytest.mark.sandbox
def test_control_a_shared_uid_starves_the_second_kernel(tmp_path):
    """What a uid per job index did: processes another kernel left under the same uid count against this one."""
    require(os.geteuid() == 0, "needs root to switch uids")
    uid = 29_999
    hog = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable, "-c",
                            "import os, resource, time\n"
                            "resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))\n"
                            "for _ in range(63):\n"
                            "    if os.fork() == 0:\n"
                            "        time.sleep(20); os._exit(0)\n"
                            "time.sleep(20)\n"])
    try:
        wait_until(lambda: len(descendants(hog.pid)) >= 63, 60, "the first process's 63 children")
        second = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable, "-c",
                                 "import os, resource\n"
                                 "resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))\n"
                                 "os.fork() or os._exit(0)\n"], capture_output=True, text=True, timeout=30)
        assert second.returncode != 0 and "Resource temporarily unavailable" in second.stderr
    finally:
        subprocess.run(["pkill", "-KILL", "-U", str(uid)])
        hog.wait(timeout=10)
