"""The kernel template: one warm interpreter per grading process, from which each student kernel is forked.

This file runs inside the template's own bubblewrap sandbox, which cannot read the grader's files: forked.py
sends its source through a pipe. It uses the standard library only. The template imports ipykernel, torch
and the notebooks' standard imports, checks that it is still fit to fork (one thread, no shared writable
memory, no descriptor but its control socket, no ZeroMQ context), and then only answers requests on its
control socket. It never runs a line of student code, never runs a torch operation and never receives a
test, a solution or a notebook: what a kernel could learn of it is public.

For each `spawn` request it forks a monitor (C1) that waits until the grader has put it in the kernel's control
group, then, still privileged, unshares its mount, pid, network, IPC, UTS and cgroup namespaces, mounts fresh tmpfs
on /tmp, the home folder, /dev/shm and the grader's scratch folder, moves in its own run folder (the grader's tmpfs,
handed over as a detached mount: nothing else of the grader's is visible) and, read-only, the assignment's data
folder if it has one (handed over the same way), and forks pid 1 of the new pid namespace (C2): it mounts its own
/proc, drops every capability and forks the kernel (C3, pid 2), which applies the limits, drops every capability,
switches to the leased uid with no_new_privs, a session keyring of its own and its uid's keyrings emptied, closes
every inherited descriptor, replaces its environment, reseeds Python's, numpy's and torch's random generators, and
runs ipykernel as `python -m ipykernel_launcher` would. C2 reaps what the kernel leaves and exits with it, C1 exits
with C2; killing C1 kills the rest (parent-death signals), killing the template kills every kernel it forked.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import resource
import select
import signal
import socket
import stat
import sys

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
SYS_MOVE_MOUNT, MOVE_MOUNT_F_EMPTY_PATH, AT_FDCWD = 429, 0x4, -100  # move_mount: one number on every arch
SYS_OPEN_TREE, OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, AT_RECURSIVE = 428, 1, os.O_CLOEXEC, 0x8000  # open_tree: the same
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}
KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_CLEAR = 1, 7
KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING = -4, -5
CAPABILITY_VERSION_3 = 0x20080522
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
MESSAGE_BYTES = 1 << 20
IMPORTS_SET: dict[str, str] = {}  # environment variables the template's imports set

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


class Fork(Exception):
    """Raised in a forked child to unwind the template's loop: the child continues with a clean stack."""


def check(result: int, what: str) -> int:
    """`result` of a libc call, or OSError with errno."""
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def prctl(option: int, arg: int = 0) -> None:
    check(libc.prctl(option, arg, 0, 0, 0), f"prctl({option})")


def unshare(flags: int) -> None:
    check(libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def tmpfs(target: str, mode: str, size: int) -> None:
    """A fresh, empty tmpfs at `target`."""
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size={size}")


def read_only(target: str) -> None:
    """Bind `target` onto itself read-only (what bwrap does for /proc/sys and friends)."""
    mount(target, target, None, MS_BIND | MS_REC)
    mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def move_mount(tree_fd: int, target: str) -> None:
    """Attach the detached mount `tree_fd` (from the grader's open_tree) at `target`."""
    check(libc.syscall(SYS_MOVE_MOUNT, tree_fd, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH),
          f"move_mount {target}")


def detach(path: str) -> int:
    """A detached copy of the mount at `path` (and those below it), to attach elsewhere with `move_mount`."""
    return check(libc.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE),
                 f"open_tree {path}")


def attach_read_only(tree_fd: int, target: str) -> None:
    """Attach `tree_fd` at `target` (made first: a folder, or an empty file for a file's mount), read-only."""
    if not os.path.exists(target):
        if stat.S_ISDIR(os.fstat(tree_fd).st_mode):
            os.makedirs(target, mode=0o755)
        else:
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    move_mount(tree_fd, target)
    mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def loopback_up() -> None:
    """Bring up `lo` in a fresh network namespace, as bwrap does: localhost works, nothing else exists."""
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0))[:18])[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_bounding_set() -> None:
    """No capability can ever be gained again (the bounding and ambient sets emptied; needs CAP_SETPCAP)."""
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def clear_capabilities() -> None:
    """No capability held: the effective, permitted and inheritable sets emptied."""
    check(libc.capset(ctypes.byref(CapHeader(CAPABILITY_VERSION_3, 0)), (CapData * 2)()), "capset")


def drop_privileges() -> None:
    """Every capability gone, for good: what C1 and C2 keep while they only wait (they stay uid 0)."""
    drop_bounding_set()
    clear_capabilities()
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def become(uid: int) -> None:
    """Switch every id to the kernel's leased uid, with no groups and no capability left."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # clears the effective and permitted capabilities
    clear_capabilities()
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_DUMPABLE, 1)  # as after an exec: the kernel may read its own /proc entries


def fresh_keyrings() -> None:
    """A new, empty session keyring (the template's is every child's), and the uid's own keyrings emptied: keys an
    earlier kernel under this uid left there (a uid is leased again later) are gone."""
    number = SYS_KEYCTL.get(os.uname().machine)
    if number is None:
        return
    check(libc.syscall(number, ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), None), "keyctl join")
    for keyring in (KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING):
        check(libc.syscall(number, ctypes.c_long(KEYCTL_CLEAR), ctypes.c_long(keyring)), "keyctl clear")


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def shared_writable_mappings() -> list[str]:
    """Memory a fork would share writable with the template and every sibling (there must be none)."""
    found = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            if len(parts) > 1 and parts[1][1] == "w" and parts[1][3] == "s":
                found.append(line.strip())
    return found


def open_descriptors() -> list[int]:
    fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    return sorted(fd for fd in fds if os.path.exists(f"/proc/self/fd/{fd}"))


def fitness(control: socket.socket) -> list[str]:
    """Why the template may not fork (nothing when it may): one thread, no shared writable memory, no
    descriptor beyond stdio and its control socket, no ZeroMQ context."""
    problems = []
    if threads() != 1:
        problems.append(f"{threads()} threads after the imports (a fork keeps only one)")
    problems += [f"shared writable memory: {m}" for m in shared_writable_mappings()]
    extra = [fd for fd in open_descriptors() if fd > 2 and fd != control.fileno()]
    if extra:
        problems.append(f"open descriptors {extra} after the imports")
    zmq = sys.modules.get("zmq")
    if zmq is not None and getattr(zmq.Context, "_instance", None) is not None:
        problems.append("a ZeroMQ context exists")
    return problems


def send(control: socket.socket, message: dict) -> None:
    control.send(json.dumps(message).encode())


def serve(control_fd: int, preload: list[str], import_env: dict[str, str]) -> None:
    """Import, check, report ready; then fork a child per `spawn` request until the control socket closes."""
    control = socket.socket(fileno=control_fd)
    before = dict(os.environ)
    saved = {name: os.environ.get(name) for name in import_env}
    os.environ.update(import_env)  # say, OpenBLAS's threads: one while importing, so that no thread starts
    failed = []
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a notebook's import this environment lacks: the kernel will say so itself
            failed.append(f"{name}: {type(exc).__name__}")
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    # What the imports set in the environment (debugpy does): a kernel importing them fresh would have it too.
    IMPORTS_SET.update({name: value for name, value in os.environ.items() if before.get(name) != value})
    gc.collect()
    gc.freeze()  # the collector must not touch (and so copy) the template's objects in every child
    problems = fitness(control)
    send(control, {"ready": not problems, "problems": problems, "not_imported": failed, "pid": os.getpid(),
                   "modules": len(sys.modules)})
    if problems:
        return
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, int] = {}  # pid of a monitor -> its request's id
    gates: dict[int, int] = {}  # request id -> the pipe that lets its monitor go on
    while True:
        readable, _, _ = select.select([control, wake_r], [], [])
        if wake_r in readable:
            while True:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    break
        reap(control, children)
        if control not in readable:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(control, MESSAGE_BYTES, 4)
        except OSError:
            data, fds = b"", []
        if not data:  # the grader is gone
            return
        request = json.loads(data)
        if request.get("go") is not None:  # the grader put the monitor in its control group (or could not)
            gate = gates.pop(request["go"], None)
            if gate is not None:
                if request.get("ok"):
                    os.write(gate, b"1")
                os.close(gate)
            continue
        request["template"] = os.getpid()
        gate_r, gate_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in [control.fileno(), wake_r, wake_w, gate_w, *gates.values()]:
                os.close(fd)
            control.detach()
            raise Fork(request, fds, gate_r)
        os.close(gate_r)
        for fd in fds:
            os.close(fd)
        children[pid] = request["id"]
        gates[request["id"]] = gate_w
        send(control, {"forked": request["id"], "pid": pid})


def reap(control: socket.socket, children: dict[int, int]) -> None:
    """Collect every monitor that exited and tell the grader how."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in children:
            send(control, {"exited": children.pop(pid), "status": os.waitstatus_to_exitcode(status)})


def monitor(request: dict, trees: list[int], gate_fd: int) -> None:
    """C1: wait for the grader's go (the control group joined), isolate, fork pid 1 and wait for it. `trees`: the
    run folder's detached mount, then the assignment's data folder's if the request names where it goes."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != request["template"] or os.read(gate_fd, 1) != b"1":
        os._exit(70)  # the template died, or the grader could not confine this kernel
    os.close(gate_fd)
    unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here reaches the template, or back
    # The read-only roots (a Python environment, say) that lie where a fresh tmpfs goes are put back on top of it,
    # as bwrap's binds after its tmpfs are for a fresh kernel.
    covered = [(root, detach(root)) for root in request.get("covered_roots", [])]
    size = request["tmpfs_bytes"]
    tmpfs("/tmp", "1777", size)
    tmpfs(request["home"], "0777", size)
    if os.path.isdir("/dev/shm"):
        tmpfs("/dev/shm", "1777", size)
    os.makedirs(request["scratch"], mode=0o755, exist_ok=True)
    tmpfs(request["scratch"], "0755", 1 << 20)  # the grader's folder: empty but for this kernel's run folder
    for root, tree in covered:
        attach_read_only(tree, root)
        os.close(tree)
    os.makedirs(request["run_dir"], mode=0o755)
    move_mount(trees[0], request["run_dir"])
    if request.get("data"):  # the assignment's data, read-only, as bwrap's --ro-bind gives a fresh kernel
        os.makedirs(request["data"], mode=0o755)
        move_mount(trees[1], request["data"])
        mount(None, request["data"], None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for fd in trees:
        os.close(fd)
    loopback_up()
    pid = os.fork()
    if pid == 0:
        init(request)
    drop_privileges()
    os._exit(wait_for(pid))


def wait_for(pid: int) -> int:
    """Wait for `pid` to exit (reaping any orphans on the way); its exit code."""
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if done == pid:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


def init(request: dict) -> None:
    """C2, pid 1 of the kernel's pid namespace: its own /proc, no capability, the kernel as its child."""
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        for path in ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"):
            if os.path.exists(path):
                read_only(path)
        socket.sethostname(request["hostname"])
        os.setsid()
        pid = os.fork()
        if pid == 0:
            kernel(request)
        os.closerange(0, os.sysconf("SC_OPEN_MAX"))
        drop_privileges()
        os._exit(wait_for(pid))
    finally:
        os._exit(71)


def reseed() -> None:
    """Fresh random state, as a new interpreter has: no two kernels of one template share a generator."""
    import random

    random.seed()
    numpy = sys.modules.get("numpy.random")
    if numpy is not None:
        numpy.seed()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.seed()


def numpy_threads(count: int) -> None:
    """numpy's OpenBLAS started with one thread in the template (no thread may exist at a fork): give it the
    kernel's threads, as OPENBLAS_NUM_THREADS would have in a fresh interpreter."""
    if count <= 1 or "numpy" not in sys.modules:
        return
    import glob

    libs = os.path.join(os.path.dirname(os.path.dirname(sys.modules["numpy"].__file__)), "numpy.libs")
    for path in glob.glob(os.path.join(libs, "libscipy_openblas*.so")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads"):
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(ctypes.c_int(count))
                return


def kernel(request: dict) -> None:
    """C3: limits, the uid, no capability, no inherited descriptor, a fresh environment; then ipykernel."""
    exit_ = os._exit
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        for name, value in request["limits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))
        drop_bounding_set()
        become(request["uid"])
        fresh_keyrings()
        os.chdir(request["home"])
        null = os.open("/dev/null", os.O_RDWR)
        log = os.open(os.path.join(request["run_dir"], "kernel.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.environ.clear()
        os.environ.update({**request["env"], "PWD": request["home"], **IMPORTS_SET})  # PWD: as bwrap's --chdir sets it
        if request.get("probe"):  # forked.probe: say who this process became, and stop
            with open(os.path.join(request["run_dir"], "probe"), "w") as said:
                said.write(str(os.getuid()))
            exit_(0)
        reseed()
        numpy_threads(request["threads"])
        argv = request["argv"]  # [python, -m, ipykernel_launcher, -f, connection file, ...]
        import ipykernel_launcher

        sys.argv = [ipykernel_launcher.__file__, *argv[3:]]
        sys.orig_argv = list(argv)
        if sys.path and sys.path[0] == "":  # as ipykernel_launcher does; IPython puts it back
            del sys.path[0]
        from ipykernel import kernelapp

        del request, argv
        kernelapp.launch_new_instance()
        exit_(0)
    except SystemExit as exc:
        exit_(exc.code if isinstance(exc.code, int) else 1)
    finally:
        exit_(72)


def main(control_fd: int, preload: list[str], import_env: dict[str, str]) -> None:
    """The template's life: serve requests; in each forked child, become that request's kernel."""
    try:
        serve(control_fd, preload, import_env)
    except Fork as fork:
        request, trees, gate_fd = fork.args
    else:
        return
    try:
        monitor(request, trees, gate_fd)
    except BaseException as exc:  # the kernel never starts: say why in its log, if the run folder is there
        try:
            with open(os.path.join(request["run_dir"], "kernel.log"), "a") as log:
                log.write(f"kernel template: {type(exc).__name__}: {exc}\n")
        except OSError:
            pass
    finally:
        os._exit(73)
