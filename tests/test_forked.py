"""Student kernels forked from a warm template: confined as a fresh kernel is, and nothing passes between students.

Each forked kernel is checked from inside and from the host (its uid, namespaces, control group, tmpfs, no
capability), beside a fresh kernel and the grader's own process (the control: it fails every check); the
trusted kernel, forked from the same template, the same way. Then students graded one after another on one
worker: what the first leaves (files, a process, environment variables, keys, shared memory, torch's globals,
patched modules) the next does not see, while the same look in the leaver's own kernel finds all of it. The
template itself stays fit to fork (one thread, no ZeroMQ context, no shared writable memory), and killing it
costs only the notebook in flight, graded again.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest
from forking import facts, host_ns, host_status, kernel, run, scratch_folder, short_folder
from helpers import DATA_USE, read_grades_csv, require, write_submission
from nbformat.v4 import new_code_cell

from grader.course import answers, cells, layout
from grader.course.hidden import html_text
from grader.grading import task
from grader.grading.worker import Worker
from grader.kernel import forked, uids
from grader.kernel.forked import KernelTemplate, TemplateFailed
from grader.kernel.sandbox import SCRATCH_HOME, readonly_roots
from grader.run.autograde import autograde, run_settings

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]
NB = layout.SERIES[0]
FULL = sum(cells.points(c) for c in nbformat.read(NB.released, as_version=4).cells if cells.is_test(c))
NO_CAPS = "0000000000000000"


def require_forking() -> None:
    require(forked.problem("bwrap") is None, f"forking unavailable: {forked.problem('bwrap')}")


@pytest.fixture(scope="module")
def short_tmp():
    with short_folder() as folder:
        yield folder


@pytest.fixture(scope="module")
def template(short_tmp):
    """A template as a worker starts one, with the course's imports, on a scratch folder of its own."""
    require_forking()
    template = KernelTemplate(scratch_folder(short_tmp), threads=2,
                              preload=forked.notebook_imports([nb.source for nb in layout.available()]))
    template.start()
    yield template
    template.stop()


# --- each kernel: uid, namespaces, control group, tmpfs, capabilities -------------------------------------

def kernel_pid(km, uid: int) -> int:
    """The host pid of the kernel process itself (the one of its control group that runs as its uid)."""
    mine = [p for p in km._group.pids() if host_status(p)["Uid"].split()[0] == str(uid)]
    assert len(mine) == 1, mine
    return mine[0]


def confinement_problems(inside: dict, outside: dict, uid: int, others: list[dict[str, str]]) -> list[str]:
    """What is wrong with a student kernel's confinement (nothing, for a well confined one)."""
    problems = []
    if not (inside["uid"] == inside["euid"] == inside["gid"] == uid != 0 and inside["groups"] == []):
        problems.append(f"ids {inside['uid']}/{inside['gid']}/{inside['groups']}, not the leased {uid}")
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        if inside["status"][cap] != NO_CAPS:
            problems.append(f"{cap} {inside['status'][cap]}")
    if inside["status"]["NoNewPrivs"] != "1":
        problems.append("no_new_privs unset")
    for other in others:
        shared = [n for n, v in outside["ns"].items() if other[n] == v]
        if shared:
            problems.append(f"namespaces shared: {shared}")
    for folder in ("/tmp", inside["home_path"], inside["run_folder"]):
        if inside["mounts"].get(folder, ("",))[0] != "tmpfs":
            problems.append(f"{folder} is not a tmpfs of its own: {inside['mounts'].get(folder)}")
    # at start, /tmp holds only what IPython makes and the way to the run folder; the home folder nothing
    # (and the way to a read-only root that lies in /tmp: a Python environment there, as a fresh kernel's bwrap makes it)
    expected = {"ipython", "matplotlib", (inside["run_folder"].split("/") + ["", "", ""])[2]}
    expected |= {Path(root).parts[2] for root in readonly_roots() if Path(root).is_relative_to("/tmp")}
    if set(inside["tmp"]) - expected or inside["home"]:
        problems.append(f"not empty at start: /tmp {inside['tmp']}, home {inside['home']}")
    if outside["group"] is None or outside["pid"] not in outside["group"]:
        problems.append(f"kernel {outside['pid']} not in its control group {outside['group']}")
    if any(line.split(":")[-1] != "/" for line in inside["cgroup"]):
        problems.append(f"sees the host's control groups: {inside['cgroup']}")
    if inside["interfaces"] != ["lo"]:
        problems.append(f"network interfaces {inside['interfaces']}")
    return problems


def descriptor_kinds(inside: dict) -> set[str]:
    """What a kernel's descriptors point to, the run folder's path and numbers left out."""
    return {re.sub(r"\d+", "N", link.replace(inside["run_folder"], "RUN")) for link in inside["fds"]}


async def observe(km, kc, uid: int) -> tuple[dict, dict]:
    inside = await facts(kc)
    inside["home_path"] = inside["env"].get("HOME", "")
    pid = kernel_pid(km, uid) if km._group is not None else None
    outside = {"pid": pid, "ns": host_ns(pid), "status": host_status(pid), "group": km._group.pids() if km._group else None}
    return inside, outside


def test_each_forked_kernel_is_confined_as_a_fresh_one(template, short_tmp):
    """Two forked kernels one after the other and a fresh one: each has the leased uid and no capability, its
    own namespaces (not the grader's, the template's or the other's), its control group, fresh tmpfs; and
    what the student's code sees (environment, limits, folders, network) is what a fresh kernel shows."""
    grader_ns, template_ns = host_ns(os.getpid()), host_ns(template.pid)

    async def observe_all():  # all at once: a namespace's number is reused once it is gone
        seen = {}
        async with kernel(template.scratch, template) as a, kernel(template.scratch, template) as b, \
                kernel(scratch_folder(short_tmp)) as fresh:
            for name, (km, kc, uid) in [("forked_a", a), ("forked_b", b), ("fresh", fresh)]:
                seen[name] = (*await observe(km, kc, uid), uid)
        return seen

    seen = asyncio.run(observe_all())
    for name, (inside, outside, uid) in seen.items():
        others = [grader_ns, template_ns] + [o["ns"] for n, (_, o, _) in seen.items() if n != name]
        problems = confinement_problems(inside, outside, uid, others)
        assert problems == [], (name, problems)
        assert inside["processes"] == [1, 2], (name, inside["processes"])  # pid 1 (the sandbox's init) and the kernel
    for name in ("forked_a", "forked_b"):
        inside, outside, _ = seen[name]
        fresh = seen["fresh"][0]
        assert inside["status"]["CapBnd"] == NO_CAPS, "no capability can ever come back"
        assert outside["status"]["CapEff"] == NO_CAPS and outside["status"]["NoNewPrivs"] == "1"
        for key in ("env", "rlimits", "cwd", "hostname", "interfaces", "path", "argv"):
            assert inside[key] == fresh[key], key
        assert inside["mounts"]["/dev/shm"][0] == "tmpfs"
        # stdin is /dev/null where a fresh kernel gets a pipe nobody writes to; nothing else differs
        kinds = descriptor_kinds(inside) - descriptor_kinds(fresh) - {"/dev/null"}
        assert not kinds, f"descriptors a fresh kernel does not have: {kinds} ({descriptor_kinds(fresh)})"
    assert seen["forked_a"][2] != seen["forked_b"][2], "each kernel leases its own uid"


def ancestors(pid: int) -> list[int]:
    """`pid`'s parents on the host, nearest first, up to pid 1."""
    found = []
    while pid > 1:
        pid = int(host_status(pid)["PPid"])
        found.append(pid)
    return found


def test_the_trusted_kernel_is_forked_from_the_template_and_confined_as_a_student_s(template, short_tmp):
    """Given the worker's template, the trusted kernel is one of its children, under its own uid, namespaces,
    control group and tmpfs, as a student's kernel is; the control: without a template it starts fresh,
    outside the template."""
    from grader.bridge.trusted import TrustedKernel

    async def look(with_template: bool):
        with uids.lease(layout.UID_LOCKS) as uid:
            scratch = template.scratch if with_template else scratch_folder(short_tmp)  # as a worker's scratch folder
            trusted = TrustedKernel(Path(tempfile.mkdtemp(prefix="trusted-", dir=scratch)), "bwrap", uid, threads=1)
            trusted.template = template if with_template else None
            await trusted.start()
            try:
                inside, outside = await observe(trusted.km, trusted.kc, uid)
                outside["ancestors"] = ancestors(outside["pid"])
            finally:
                await trusted.stop()
        return inside, outside, uid

    for with_template in (True, False):
        inside, outside, uid = asyncio.run(look(with_template))
        problems = confinement_problems(inside, outside, uid, [host_ns(os.getpid()), host_ns(template.pid)])
        assert problems == [], (with_template, problems)
        assert (template.pid in outside["ancestors"]) == with_template, (with_template, outside["ancestors"])


DATA_USE_AND_MOUNTS = DATA_USE + """
print("mounts:", sorted(line.split()[4] for line in open("/proc/self/mountinfo") if line.split()[4].endswith("/data")))
"""


def test_a_forked_kernel_reads_the_assignment_data_and_cannot_change_it(template, short_tmp):
    """The assignment's data folder, as a fresh sandboxed kernel has it: data/ in its home, read-only; a kernel of
    an assignment without data has no such folder. (The control, a kernel without the sandbox that changes the
    data, is test_isolation's.)"""
    data = short_tmp / "data-forked"
    data.mkdir()
    (data / "words.txt").write_text("the treebank")
    os.chmod(data, 0o777)  # anyone may write here: only the read-only mount can refuse
    os.chmod(data / "words.txt", 0o666)

    async def use_data():
        async with kernel(template.scratch, template, data_dir=data) as (_, kc, _), \
                kernel(template.scratch, template) as (_, without, _):
            return await run(kc, DATA_USE_AND_MOUNTS), await run(without, "import os; print(os.path.exists('data'))")

    said, other = asyncio.run(use_data())
    assert "read: the treebank" in said and "write: refused (Read-only file system)" in said, said
    assert "create: refused (Read-only file system)" in said, said
    assert f"mounts: ['{SCRATCH_HOME}/data']" in said, said
    assert other.strip() == "False", other
    assert sorted(p.name for p in data.iterdir()) == ["words.txt"]
    assert (data / "words.txt").read_text() == "the treebank"


def test_control_the_grader_itself_fails_every_check(template):
    """The same checks on a process that is not confined (the grader's own, run as the kernel would report it)."""
    done = subprocess.run([sys.executable, "-c", "import sys, types\nsys.modules['ipykernel.connect'] = types.SimpleNamespace("
                           "get_connection_file=lambda: '/nonexistent/kernel.json')\n" + __import__("forking").FACTS],
                          capture_output=True, text=True, env={**os.environ, "HOME": "/root"})
    inside = json.loads(done.stdout)
    inside["home_path"] = "/root"
    outside = {"pid": os.getpid(), "ns": host_ns(os.getpid()), "group": []}
    problems = confinement_problems(inside, outside, 20000, [host_ns(os.getpid())])
    for words in ("ids", "CapPrm", "CapEff", "no_new_privs", "namespaces shared", "/tmp is not a tmpfs",
                  "not in its control group", "network interfaces"):
        assert any(words in p for p in problems), (words, problems)


# --- the template stays fit to fork ----------------------------------------------------------------------

def test_the_template_never_started_a_thread_a_zeromq_context_or_shared_memory(template):
    """Seen from the host: one thread (so no torch operation started torch's pool: it runs on 2 threads here),
    no shared writable mapping, no descriptor beyond stdio and its control socket; torch was imported."""
    assert template.ready["ready"] and template.ready["problems"] == []
    assert "torch" not in template.ready["not_imported"] and template.ready["modules"] > 1000
    assert len(os.listdir(f"/proc/{template.pid}/task")) == 1
    maps = Path(f"/proc/{template.pid}/maps").read_text().splitlines()
    assert not [m for m in maps if m.split()[1][1] == "w" and m.split()[1][3] == "s"]
    extra = [os.readlink(f"/proc/{template.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{template.pid}/fd") if int(fd) > 2]
    # its control socket, and the two ends of the pipe that wakes it when a kernel exits (closed in every child)
    assert sorted(link.split(":")[0] for link in extra) == ["pipe", "pipe", "socket"] and len(set(extra)) == 2, extra
    assert host_status(template.pid)["Uid"].split()[0] == "0"  # root, in its own namespaces, so it can isolate children


FITNESS = '''
import json, os, socket, sys
exec(compile(sys.stdin.read(), "template", "exec"))
import torch
results = {}
for what in sys.argv[1:]:  # each in a fork of this process, which is fit: one thing done wrong at a time
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        os.dup2(write, 1)  # the answer goes out on stdout: the check looks at descriptors above stdio only
        os.close(write)
        control, other = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        other.close()
        if what == "thread":
            import threading, time
            threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
        elif what == "torch op":  # on two threads, whatever the process inherited: the pool starts with the op
            torch.set_num_threads(2)
            (torch.ones(4_000_000) * 2).sum()
            print("torch threads:", torch.get_num_threads(), file=sys.stderr)
        elif what == "zeromq":
            import zmq
            zmq.Context.instance()
        elif what == "shared memory":
            import mmap
            keep = mmap.mmap(-1, 4096, flags=mmap.MAP_SHARED)
        elif what == "descriptor":
            keep = open("/dev/null")
        problems = fitness(control)
        control.close()
        os.write(1, json.dumps(problems).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as said:
        results[what] = json.loads(said.read())
    os.wait()
print(json.dumps(results))
'''
WRONGS = ["nothing", "thread", "torch op", "zeromq", "shared memory", "descriptor"]


@pytest.fixture(scope="module")
def fitness_of():
    """What the template's own check says of a process with its imports that did each wrong thing (or none)."""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", FITNESS, *WRONGS], input=forked.TEMPLATE_SOURCE, capture_output=True,
                          text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr.strip()[-500:]


@pytest.mark.parametrize("what", WRONGS)
def test_control_a_template_that_did_any_of_it_refuses_to_fork(fitness_of, what):
    """The template's own check catches each thing it must never do; a template that did nothing passes."""
    found, said = fitness_of
    problems = found[what]
    assert (problems == []) == (what == "nothing"), (problems, said)


def test_a_template_that_fails_its_checks_leaves_the_worker_on_fresh_kernels(short_tmp, monkeypatch):
    """OpenBLAS started with threads at import: the template refuses, the worker says so and starts kernels fresh."""
    require_forking()
    monkeypatch.setattr(forked, "IMPORT_ENV", {"OPENBLAS_NUM_THREADS": "4"})
    monkeypatch.setattr(forked, "PRELOAD", ["numpy"])
    template = KernelTemplate(scratch_folder(short_tmp), 1)
    with pytest.raises(TemplateFailed, match="threads"):
        template.start()
    with Worker(short_tmp) as worker:
        assert worker.kernel_template(1, []) is None


# --- nothing passes from one student to the next ------------------------------------------------------------

LEAVE = r'''
import builtins, ctypes, math, os, subprocess, sys
import torch
from ipykernel.connect import get_connection_file
MARK = "left-by-a-previous-student"
left = []
for line in open("/proc/self/mountinfo"):
    folder = line.split()[4]
    if os.path.isdir(folder) and os.access(folder, os.W_OK):
        try:
            with open(os.path.join(folder, MARK), "w") as f:
                f.write(MARK)
            left.append(folder)
        except OSError:
            pass
os.environ["LEFT_BY_A_PREVIOUS_STUDENT"] = MARK
subprocess.Popen([sys.executable, "-c", "import socket, time, sys\ns = socket.socket(socket.AF_UNIX)\n"
                  "s.bind(b'\\0' + sys.argv[1].encode())\ns.listen()\ntime.sleep(600)", MARK], start_new_session=True)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ADD_KEY = {"x86_64": 248, "aarch64": 217}[os.uname().machine]
for keyring in (-3, -4):  # the session keyring and the uid's own
    libc.syscall(ADD_KEY, b"user", MARK.encode(), b"secret", ctypes.c_long(6), ctypes.c_long(keyring))
libc.shmget(0x5EED, 4096, 0o1000 | 0o666)
torch.set_default_dtype(torch.float64)
torch.manual_seed(1234)
torch.set_grad_enabled(False)
torch.set_num_threads(3)
torch.nn.functional.relu = lambda x: x
math.pi = 3
builtins.LEFT_BY_A_PREVIOUS_STUDENT = MARK
with open(os.path.join(os.getcwd(), "copydetect.py"), "w") as f:  # shadows an installed package
    f.write("LEFT = True\n")
print("left in", left)
'''
LOOK = r'''
import builtins, ctypes, math, os, socket, time
import torch
MARK = "left-by-a-previous-student"
found = []
for line in open("/proc/self/mountinfo"):
    if os.path.exists(os.path.join(line.split()[4], MARK)):
        found.append("file in " + line.split()[4])
if MARK in str(dict(os.environ)) or MARK in open("/proc/self/environ").read():
    found.append("environment variable")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if MARK in open(f"/proc/{pid}/cmdline").read():
            found.append("process")
    except OSError:
        pass
probe = socket.socket(socket.AF_UNIX)
probe.settimeout(2)
for _ in range(20):  # the leaver's process may still be starting
    try:
        probe.connect(b"\0" + MARK.encode())
        found.append("abstract socket")
        break
    except OSError:
        time.sleep(0.1)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
KEYCTL = {"x86_64": 250, "aarch64": 219}[os.uname().machine]
for keyring, name in ((-3, "session"), (-4, "user")):
    if libc.syscall(KEYCTL, ctypes.c_long(10), ctypes.c_long(keyring), b"user", MARK.encode(), ctypes.c_long(0)) > 0:  # KEYCTL_SEARCH
        found.append(f"key in the {name} keyring")
if libc.shmget(0x5EED, 0, 0) >= 0:
    found.append("shared memory segment")
if torch.get_default_dtype() != torch.float32:
    found.append("default dtype")
if not torch.is_grad_enabled():
    found.append("grad mode")
if torch.initial_seed() == 1234:
    found.append("torch seed")
if torch.get_num_threads() != int(os.environ["OMP_NUM_THREADS"]):
    found.append("torch threads")
if torch.nn.functional.relu(torch.tensor([-1.0])).item() != 0:
    found.append("patched torch function")
if math.pi != 3.141592653589793:
    found.append("patched module")
if hasattr(builtins, "LEFT_BY_A_PREVIOUS_STUDENT"):
    found.append("builtins")
import importlib
importlib.invalidate_caches()
if hasattr(importlib.import_module("copydetect"), "LEFT"):
    found.append("shadowing module file")
strange = []
for fd in os.listdir("/proc/self/fd"):
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        continue
    if not target.startswith(("socket:", "pipe:", "anon_inode:", "/dev/null", "/dev/pts")) and not target.endswith("kernel.log"):
        strange.append(target)
if strange:
    found.append(f"descriptors {strange}")
import json
print("FOUND:%s:END" % json.dumps(sorted(found)))
'''
EVERYTHING = {"environment variable", "process", "abstract socket", "key in the session keyring", "key in the user keyring",
              "shared memory segment", "default dtype", "grad mode", "torch seed", "torch threads",
              "patched torch function", "patched module", "builtins", "shadowing module file"}


def found_by(out: Path, student: str) -> list[str]:
    page = html_text((out / "feedback" / student / NB.assignment / f"{NB.name}.html").read_text())
    return json.loads(re.search(r"FOUND:(\[.*?\]):END", page, re.S).group(1))


@pytest.fixture(scope="module")
def one_after_another(tmp_path_factory):
    """On one worker, in this order: a student who leaves everything behind, one who looks for it before their
    notebook's first cell, and the control: one who leaves it and then looks, in one kernel."""
    require_forking()
    root = tmp_path_factory.mktemp("one-after-another")
    good = answers.submission(NB)
    leaves = nbformat.from_dict(good)
    leaves.cells.append(new_code_cell(LEAVE))
    looks = nbformat.from_dict(good)
    looks.cells.insert(0, new_code_cell(LOOK))
    both = nbformat.from_dict(good)
    both.cells += [new_code_cell(LEAVE), new_code_cell(LOOK)]
    for student, nb in (("a_leaves", leaves), ("b_looks", looks), ("c_leaves_then_looks", both)):
        write_submission(root / "subs", student, NB, nb)
    rows = autograde(root / "subs", root / "out", workers=1, timeout=30, assignment=[NB.assignment], kernels="fork")
    return root / "out", {r.student_id: r for r in rows}


def test_the_next_student_finds_nothing_the_previous_one_left(one_after_another):
    out, rows = one_after_another
    assert "forked from a warm template" in html_text((out / "report.html").read_text())
    assert found_by(out, "b_looks") == []
    assert rows["b_looks"].score == FULL, rows["b_looks"].detail  # (its probing code is listed for review)


def test_control_in_the_leavers_own_kernel_the_look_finds_everything(one_after_another):
    out, _ = one_after_another
    found = set(found_by(out, "c_leaves_then_looks"))
    assert EVERYTHING <= found, EVERYTHING - found
    assert {"file in /tmp", "file in /home/student", "file in /dev/shm"} <= found, found
    assert any(f.startswith("file in /tmp/") for f in found), "the run folder too"


KEYS = r'''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ADD_KEY, KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}[os.uname().machine]
def search(keyring):
    return libc.syscall(KEYCTL, ctypes.c_long(10), ctypes.c_long(keyring), b"user", b"left-in-the-uid", ctypes.c_long(0)) > 0
found = [name for keyring, name in ((-4, "user"), (-5, "user session")) if search(keyring)]
for keyring in (-4, -5):
    libc.syscall(ADD_KEY, b"user", b"left-in-the-uid", b"secret", ctypes.c_long(6), ctypes.c_long(keyring))
print(found)
'''


def test_a_uid_leased_again_starts_with_empty_keyrings(template, short_tmp):
    """A uid is leased again, later, for another student: the keys an earlier kernel left in the uid's own
    keyrings are gone for a forked kernel; a fresh kernel (the control) still finds them."""
    from grader.kernel import uids

    async def both() -> dict[str, str]:
        said = {}
        with uids.lease(layout.UID_LOCKS) as uid:
            for name, source in [("first", template), ("forked", template), ("fresh", None), ("fresh again", None)]:
                async with kernel(template.scratch if source else scratch_folder(short_tmp), source, uid) as (_, kc, _):
                    said[name] = (await run(kc, KEYS)).strip()
        return said

    said = asyncio.run(both())
    assert said["first"] == "[]" and said["forked"] == "[]", said
    assert said["fresh again"] == "['user', 'user session']", "control: without clearing them, the keys stay"


# --- the template killed mid-run --------------------------------------------------------------------------

SLOW = "import time\ntime.sleep(6)"


def templates_under(pid: int) -> list[int]:
    """The kernel templates of the grading processes under the grader `pid`: their command line names them, their
    parent is their sandbox (the kernels they fork share their command line, under them), and the sandbox's parent
    is a grading process, not the grader itself (whose template only probes that forking works)."""
    found, stack = [], [(pid, [])]
    while stack:
        current, ancestors = stack.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            argv = Path(f"/proc/{current}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        lineage = ancestors + [(current, argv[0])]
        if b"kernel-template" in b" ".join(argv) and len(lineage) > 2 and lineage[-2][1].endswith(b"bwrap") \
                and lineage[-3][0] != pid:
            found.append(current)
        stack += [(int(c), lineage) for c in children]
    return found


def busy(template_pid: int) -> bool:
    """Whether the template has a kernel running: a child forked from it (the same command line), not a command
    one of its imports runs while it starts."""
    try:
        own = Path(f"/proc/{template_pid}/cmdline").read_bytes()
        children = Path(f"/proc/{template_pid}/task/{template_pid}/children").read_text().split()
        return any(Path(f"/proc/{child}/cmdline").read_bytes() == own for child in children)
    except OSError:
        return False


def test_killing_a_template_mid_run_costs_only_the_notebook_in_flight_graded_again(tmp_path):
    require_forking()
    slow = nbformat.from_dict(answers.submission(NB))
    slow.cells.append(new_code_cell(SLOW))
    for student in ("s1", "s2", "s3", "s4"):
        write_submission(tmp_path / "subs", student, NB, slow)
    grader = subprocess.Popen([sys.executable, "-m", "grader", "autograde", str(tmp_path / "subs"), "--out",
                               str(tmp_path / "out"), "--workers", "2", "--kernels", "fork", "--assignment", NB.assignment,
                               "--timeout", "60"],  # given limits: the reference is not measured (its kernels not killed)
                              cwd=layout.course().root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and time.monotonic() < deadline and grader.poll() is None:
        for pid in templates_under(grader.pid):
            if busy(pid):
                time.sleep(1)  # the kernel is running the notebook's cells
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
        time.sleep(0.1)
    out, err = grader.communicate(timeout=600)
    assert killed is not None, "no template with a kernel to kill"
    assert grader.returncode == 0, err[-2000:]
    assert err.count("the kernel template died while") == 1, err[-3000:]
    grades = read_grades_csv(tmp_path / "out")
    assert {s: (r.status, r.score) for (s, _), r in grades.items()} == {s: ("graded", FULL) for s in
                                                                         ("s1", "s2", "s3", "s4")}


def test_control_without_the_second_try_the_notebook_in_flight_is_lost(short_tmp, monkeypatch, prepared_course):
    """The same kill with no retry: the notebook the template's kernel was running gets no grade."""
    require_forking()
    monkeypatch.setattr(task, "TEMPLATE_RETRIES", 0)
    slow = nbformat.from_dict(answers.submission(NB))
    slow.cells.append(new_code_cell(SLOW))
    submission = task.Submission("s1", NB, nbformat.writes(slow).encode())
    settings = run_settings(30, None, "bwrap", None, 1, False, kernels="fork")
    results = []
    with Worker(short_tmp) as worker:
        grading = threading.Thread(target=lambda: results.append(task.grade(submission, prepared_course, settings, worker)))
        grading.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and grading.is_alive():
            template = worker._template
            if template is not None and busy(template.pid):
                time.sleep(1)
                os.kill(template.pid, signal.SIGKILL)
                break
            time.sleep(0.1)
        grading.join(timeout=300)
    row = results[0].row
    assert row.status == "error" and "the kernel template died 1 times" in row.detail, (row.status, row.detail)
