"""One submission can never cost another student their grade, or stop the run.

A class of notebook-1 submissions that each attack something that is not their own row (links to other
files, a FIFO, output floods that bypass a per-stream cap, a process tree that outgrows memory, a full
disk, a notebook that never ends, malformed grading metadata, an old notebook format), graded with the
sandbox beside honest students; then two runs at once with one student holding many processes, and a
grading process killed mid-run. Each defence has a control showing the attack working without it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest
from helpers import (DATA_USE, read_grades_csv, require, student_processes, tree_digest, wait_until, with_cell,
                     write_submission)
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from grader.course import answers, cells, layout
from grader.course.hidden import html_text
from grader.kernel import confine
from grader.kernel.sandbox import SandboxedKernelManager, bwrap_problem
from grader.run.autograde import autograde

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]
NB = layout.SERIES[0]

DISPLAY_FLOOD = '''
handle = display({"text/plain": "start"}, raw=True, display_id=True)
for _ in range(25):
    handle.update({"text/plain": "x" * 10_000_000}, raw=True)  # an update replaces, it never adds a line
for _ in range(5):
    display({"text/plain": "."}, metadata={"note": "y" * 10_000_000}, raw=True)
'''
MEMORY_TREE = '''
import os, time
readers = []
for _ in range(3):
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        block = b"\\x01" * 1_500_000_000  # 1.5 GB, every page written
        os.write(w, b"1")
        time.sleep(8)  # hold it while the others take theirs
        os.write(w, b"2")  # still alive, still holding it
        time.sleep(30)
        os._exit(0)
    os.close(w)
    readers.append(r)
together = 0
for r in readers:
    said = b""
    while len(said) < 2 and (chunk := os.read(r, 2 - len(said))):
        said += chunk
    together += said == b"12"
print(f"children holding 1.5 GB at once: {together} of 3")
'''
DISK_FILLER = '''
import os
from ipykernel.connect import get_connection_file
run_folder = os.path.dirname(get_connection_file())
written = 0
try:
    with open(os.path.join(run_folder, "filler"), "wb") as f:
        for _ in range(64):
            f.write(b"z" * 2**20)
            f.flush()
            written += 2**20
except OSError:
    pass
print(f"wrote {written // 2**20} MB into the run folder")
'''
SLOW_CELLS = ["import time\ntime.sleep(4)"] * 12
NOTEBOOK_TIMEOUT = 40
RELEASED = nbformat.read(NB.released, as_version=4)
FULL = sum(cells.points(c) for c in RELEASED.cells if cells.is_test(c))
# The tests before `run_packed`'s answer cell run before anything added after it can stop the notebook.
BEFORE_RUN_PACKED = sum(cells.points(c) for c in RELEASED.cells[:next(
    i for i, c in enumerate(RELEASED.cells) if cells.grade_id(c) == "run_packed")] if cells.is_test(c))


def edited_test_metadata(field: str, value):
    nb = answers.submission(NB)
    test = next(c for c in nb.cells if cells.is_test(c))
    test.metadata.nbgrader[field] = value
    return nb


def place_link(subs: Path, student: str, target) -> Path:
    path = subs / student / NB.assignment / NB.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)
    return path


def build_class(subs: Path) -> None:
    good = answers.submission(NB)
    for student in ("honest_a", "honest_b", "honest_c"):
        write_submission(subs, student, NB, good)
    place_link(subs, "link_to_kmsg", "/proc/kmsg")
    place_link(subs, "link_to_solution", NB.source)
    place_link(subs, "link_to_classmate", subs / "honest_a" / NB.assignment / NB.filename)
    fifo = subs / "fifo" / NB.assignment / NB.filename
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    write_submission(subs, "display_flood", NB, with_cell(good, DISPLAY_FLOOD))
    write_submission(subs, "memory_tree", NB, with_cell(good, MEMORY_TREE))
    write_submission(subs, "disk_filler", NB, with_cell(good, DISK_FILLER))
    slow = good
    for source in SLOW_CELLS:
        slow = with_cell(slow, source, after="run_packed")
    write_submission(subs, "never_ends", NB, slow)
    write_submission(subs, "nbformat_3", NB, nbformat.writes(good, version=3))
    write_submission(subs, "grade_id_list", NB, edited_test_metadata("grade_id", ["test_run_packed_visible"]))
    write_submission(subs, "points_text", NB, edited_test_metadata("points", "ten"))


EXPECTED = {  # student: (status, score, words in the detail)
    "honest_a": ("graded", FULL, ""), "honest_b": ("graded", FULL, ""), "honest_c": ("graded", FULL, ""),
    "link_to_kmsg": ("invalid_notebook", 0, "symbolic link"),
    "link_to_solution": ("invalid_notebook", 0, "symbolic link"),
    "link_to_classmate": ("invalid_notebook", 0, "symbolic link"),
    "fifo": ("invalid_notebook", 0, "not a regular file"),
    "display_flood": ("output_limit", FULL, "more than 2 MB"),
    "never_ends": ("timeout", BEFORE_RUN_PACKED, f"ran past its {NOTEBOOK_TIMEOUT} s limit"),
    "nbformat_3": ("graded", FULL, ""),
    "grade_id_list": ("tampered", FULL, "is not in the assignment"),
    "points_text": ("tampered", FULL, "metadata edited (points)"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    require(bwrap_problem() is None, f"bubblewrap unavailable: {bwrap_problem()}")
    root = tmp_path_factory.mktemp("isolation")
    subs, out = root / "submissions", root / "out"
    build_class(subs)
    before = tree_digest(subs)
    done = {}

    def grade():
        done["rows"] = autograde(subs, out, workers=2, timeout=30, notebook_timeout=NOTEBOOK_TIMEOUT,
                                 assignment=[NB.assignment], sandbox="bwrap")

    worker = threading.Thread(target=grade, daemon=True)
    worker.start()
    worker.join(timeout=900)
    assert not worker.is_alive(), "the run never finished: a submission blocked it"
    assert tree_digest(subs) == before, "SUBMISSIONS was modified"
    return subs, out, {r.student_id: r for r in done["rows"]}


def test_every_row_as_expected_and_honest_students_untouched(graded):
    _, _, rows = graded
    for student, (status, score, words) in EXPECTED.items():
        row = rows[student]
        assert (row.status, row.score) == (status, score), (student, row.status, row.score, row.detail)
        assert words in row.detail, (student, row.detail)


def test_links_read_nothing_outside_submissions(graded):
    _, out, _ = graded
    for student in ("link_to_solution", "link_to_classmate"):
        page = html_text((out / "feedback" / student / NB.assignment / f"{NB.name}.html").read_text())
        assert "pack_padded_sequence(embedded" not in page, "the solution's code is not on the page"


def test_control_a_plain_read_follows_the_link_or_blocks(graded):
    subs, _, _ = graded
    solution = (subs / "link_to_solution" / NB.assignment / NB.filename).read_text()
    assert "### BEGIN SOLUTION" in solution, "following the link reads the instructor's solution"
    reader = threading.Thread(target=(subs / "fifo" / NB.assignment / NB.filename).read_bytes, daemon=True)
    reader.start()
    reader.join(timeout=2)
    assert reader.is_alive(), "a plain read of a FIFO blocks"
    with open(subs / "fifo" / NB.assignment / NB.filename, "wb"):
        pass  # let the blocked reader go


def test_a_flood_of_display_updates_and_metadata_keeps_the_worker_small(graded):
    _, _, rows = graded
    peak = rows["display_flood"].timings["worker_peak_mb"]
    assert peak < 700, f"the grading process grew to {peak:.0f} MB"


def test_control_nbclient_keeps_every_byte_of_the_updates():
    """As shipped, nbclient applies every update whole: the last 10 MB text and 50 MB of metadata stay."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[new_code_cell(DISPLAY_FLOOD)])
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    kept = sum(len(str(o)) for o in nb.cells[0].outputs)
    assert kept > 50_000_000


def test_a_process_tree_cannot_outgrow_its_memory(graded):
    _, out, rows = graded
    row = rows["memory_tree"]
    page = html_text((out / "feedback" / "memory_tree" / NB.assignment / f"{NB.name}.html").read_text())
    said = re.search(r"children holding 1.5 GB at once: (\d) of 3", page)
    if said is None:  # the out-of-memory killer chose the kernel itself
        assert row.status == "kernel_died" and "memory" in row.detail, row.detail
    else:
        assert int(said.group(1)) <= 2 and row.status == "graded", (row.status, row.detail)


def test_the_run_folder_holds_at_most_its_tmpfs(graded):
    _, out, _ = graded
    page = html_text((out / "feedback" / "disk_filler" / NB.assignment / f"{NB.name}.html").read_text())
    written = int(re.search(r"wrote (\d+) MB into the run folder", page).group(1))
    assert written <= confine.RUN_FOLDER_BYTES // 2**20


@pytest.fixture(scope="module")
def unconfined(tmp_path_factory):
    """The memory tree and the disk filler where their defences are off: no sandbox, no cgroup, no tmpfs."""
    root = tmp_path_factory.mktemp("unconfined")
    subs, out = root / "submissions", root / "out"
    good = answers.submission(NB)
    write_submission(subs, "memory_tree", NB, with_cell(good, MEMORY_TREE))
    write_submission(subs, "disk_filler", NB, with_cell(good, DISK_FILLER))
    autograde(subs, out, workers=1, timeout=60, assignment=[NB.assignment], sandbox="none")
    return out


def test_control_without_the_cgroup_every_child_gets_its_memory(unconfined):
    page = html_text((unconfined / "feedback" / "memory_tree" / NB.assignment / f"{NB.name}.html").read_text())
    assert "children holding 1.5 GB at once: 3 of 3" in page


def test_control_without_the_tmpfs_the_run_folder_fills_the_disk(unconfined):
    page = html_text((unconfined / "feedback" / "disk_filler" / NB.assignment / f"{NB.name}.html").read_text())
    assert "wrote 64 MB into the run folder" in page


def test_no_mount_and_no_control_group_is_left_behind(graded):
    """Nothing of a grading process that has ended: each mount and group names the process that made it (other
    runs, and other test processes, may be grading meanwhile: theirs are alive)."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    owners = [int(found.group(1)) for m in mounts if (found := confine.WORKER_FOLDER.search(m))]
    assert not [pid for pid in owners if not confine.pid_alive(pid)]
    if confine.version() == "v1":
        groups = (confine.CGROUP_ROOT / "memory" / confine.PARENT).glob("kernel-*")
        assert not [g for g in groups if not confine.pid_alive(int(g.name.split("-")[1]))]


# --- the assignment's data ------------------------------------------------------------------------

def use_data(tmp_path: Path, mode: str) -> str:
    """What a kernel started in `mode` with an assignment data folder prints when it reads data/ and tries to change it."""
    data, run = tmp_path / f"data-{mode}", tmp_path / f"run-{mode}"
    data.mkdir()
    run.mkdir()
    (data / "words.txt").write_text("the treebank")
    km = SandboxedKernelManager(kernel_name="python3", mode=mode, run_dir=str(run), data_dir=str(data))
    nb = new_notebook(cells=[new_code_cell(DATA_USE)])
    try:
        NotebookClient(nb, km=km, timeout=60).execute()
    finally:
        if km.has_kernel:  # nbclient stops only the kernels it started itself
            run_sync(km.shutdown_kernel)(now=True)
    return "".join(out.get("text", "") for out in nb.cells[0].outputs)


def test_a_sandboxed_kernel_reads_the_assignment_data_and_cannot_change_it(tmp_path):
    require(bwrap_problem() is None, f"bubblewrap unavailable: {bwrap_problem()}")
    said = use_data(tmp_path, "bwrap")
    assert "read: the treebank" in said and "write: refused" in said and "create: refused" in said, said
    assert sorted(p.name for p in (tmp_path / "data-bwrap").iterdir()) == ["words.txt"]
    assert (tmp_path / "data-bwrap" / "words.txt").read_text() == "the treebank"


def test_control_without_the_sandbox_the_data_can_be_changed(tmp_path):
    said = use_data(tmp_path, "none")
    assert "read: the treebank" in said and "write: allowed" in said and "create: allowed" in said, said
    assert (tmp_path / "data-none" / "words.txt").read_text() == "the treebank and more"


# --- a grading process killed mid-run --------------------------------------------------------------

def grading_processes(parent: int) -> list[int]:
    """The pool's worker processes under the grader started as `parent` (children of its forkserver)."""
    def children(pid: int) -> list[int]:
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    found = []
    for child in children(parent):
        if b"forkserver" in Path(f"/proc/{child}/cmdline").read_bytes():
            found += children(child)
    return found


def test_a_killed_grading_process_costs_no_one_their_grade(tmp_path):
    require(bwrap_problem() is None, f"bubblewrap unavailable: {bwrap_problem()}")
    good = answers.submission(NB)
    for student in ("s1", "s2", "s3", "s4"):
        write_submission(tmp_path / "subs", student, NB, good)
    grader = subprocess.Popen([sys.executable, "-m", "grader", "autograde", str(tmp_path / "subs"), "--out",
                               str(tmp_path / "out"), "--workers", "2", "--assignment", NB.assignment],
                              cwd=layout.course().root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = wait_until(lambda: (found := grading_processes(grader.pid)) and len(found) == 2 and found, 300,
                         "two grading processes")
    wait_until(lambda: all(student_processes(w) for w in workers), 300, "both grading processes to run a kernel")
    killed = workers[0]
    os.kill(killed, signal.SIGKILL)
    out, err = grader.communicate(timeout=600)
    assert killed is not None, "no grading process to kill"
    assert grader.returncode == 0, err[-2000:]
    grades = read_grades_csv(tmp_path / "out")
    assert {s: (r.status, r.score) for (s, _), r in grades.items()} == {s: ("graded", float(FULL)) for s in
                                                                               ("s1", "s2", "s3", "s4")}
