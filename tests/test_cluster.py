"""Grading on a real Dask cluster: a `dask scheduler` and `dask worker` processes on 127.0.0.1.

The same class graded locally and on the cluster gets the same rows and the same feedback; a worker
killed mid-run costs nothing; a notebook that keeps killing workers ends as one `error` row; an address
no scheduler answers fails at once; Ctrl-C leaves every written row whole.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import free_port, read_grades_csv, require, student_processes, wait_until, write_submission

from grader import results
from grader.course import answers, layout
from grader.course.hidden import html_text
from grader.grading.settings import Settings
from grader.grading.task import Submission
from grader.run.autograde import autograde

pytestmark = pytest.mark.slow
NB = layout.SERIES[0]
DASK = Path(sys.executable).parent / "dask"
TESTS = Path(__file__).parent


class RealCluster:
    """`dask scheduler` and `dask worker --nworkers 2 --nthreads 1`, as an instructor would start them."""

    def __init__(self, folder: Path):
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{layout.course().root}"}  # the tests' stand-in tasks
        self.scheduler = subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                           "--no-dashboard"], env=env, cwd=folder,
                                          stdout=subprocess.DEVNULL, stderr=open(folder / "scheduler.log", "w"))
        self.workers = subprocess.Popen([str(DASK), "worker", self.address, "--nworkers", "2", "--nthreads", "1",
                                         "--no-dashboard", "--local-directory", str(folder)], env=env, cwd=folder,
                                        stdout=subprocess.DEVNULL, stderr=open(folder / "workers.log", "w"))
        self.wait_for(2)

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=30)

    def wait_for(self, n: int, seconds: float = 120) -> None:
        with self.client() as client:
            client.wait_for_workers(n, timeout=seconds)

    def worker_pids(self) -> list[int]:
        with self.client() as client:
            return list(client.run(os.getpid).values())

    def close(self) -> None:
        for process in (self.workers, self.scheduler):
            process.send_signal(signal.SIGINT)
        for process in (self.workers, self.scheduler):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require(DASK.exists(), f"no `dask` command at {DASK} (pip install -e .)")
    made = RealCluster(tmp_path_factory.mktemp("dask"))
    yield made
    made.close()


def small_class(subs: Path) -> None:
    good = answers.submission(NB)
    write_submission(subs, "ada", NB, good)
    write_submission(subs, "ben", NB, answers.submission(NB, {"run_packed": answers.catalogue(NB)[0].source}))
    write_submission(subs, "cat", NB, layout.course().demo_submissions.joinpath("cat", NB.assignment, NB.filename).read_bytes())
    write_submission(subs, "dan", NB, b'{"cells": [')


def rows_max(tmp_path: Path) -> float:
    """Notebook 1's full marks (tests and written answers), as grades.csv gives them."""
    return next(iter(read_grades_csv(tmp_path / "out").values())).max_score


def page_text(out: Path, student: str) -> str:
    text = html_text(results.feedback_path(out, student, NB.assignment, NB.name).read_text())
    return re.sub(r"\s+", " ", text)


def test_a_class_grades_the_same_on_the_cluster_as_locally(cluster, tmp_path):
    small_class(tmp_path / "subs")
    local = autograde(tmp_path / "subs", tmp_path / "local", timeout=20, assignment=[NB.assignment])
    remote = autograde(tmp_path / "subs", tmp_path / "remote", timeout=20, assignment=[NB.assignment],
                       scheduler=cluster.address)
    def key(row):
        return (row.student_id, row.status, row.score, row.detail, [(c.grade_id, c.score) for c in row.cells])

    assert [key(r) for r in remote] == [key(r) for r in local]
    assert {r.status for r in local} == {"graded", "timeout", "invalid_notebook"}
    for student in ("ada", "ben", "cat", "dan"):
        assert page_text(tmp_path / "remote", student) == page_text(tmp_path / "local", student), student


# `python -m grader` as started from a terminal, where Ctrl-C interrupts it: a suite run as a background job of a
# shell without job control (`make test &`) hands its children SIGINT ignored, and a Python started so keeps it ignored.
AT_A_TERMINAL = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "runpy.run_module('grader', run_name='__main__', alter_sys=True)")


def grading_on(cluster: RealCluster, folder: Path, *extra: str) -> tuple[list[str], subprocess.Popen]:
    """Six honest students, and `python -m grader autograde ... --scheduler` grading them in the background."""
    students = [f"s{i}" for i in range(6)]
    for student in students:
        write_submission(folder / "subs", student, NB, answers.submission(NB))
    grader = subprocess.Popen([sys.executable, "-c", AT_A_TERMINAL, "autograde", str(folder / "subs"), "--out",
                               str(folder / "out"), "--scheduler", cluster.address, "--assignment", NB.assignment,
                               *extra], cwd=layout.course().root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return students, grader


def test_a_worker_killed_mid_run_loses_nothing(cluster, tmp_path):
    students, grader = grading_on(cluster, tmp_path)
    victim = wait_until(lambda: next((w for w in cluster.worker_pids() if student_processes(w)), None), 300,
                        "a worker grading a notebook")
    os.kill(victim, signal.SIGKILL)
    out, err = grader.communicate(timeout=900)
    assert grader.returncode == 0, err[-3000:]
    grades = read_grades_csv(tmp_path / "out")
    # every test point scored; the written answers are left to a person
    assert {s: (r.status, r.score + r.to_grade) for (s, _), r in grades.items()} == \
        {s: ("graded", rows_max(tmp_path)) for s in students}
    cluster.wait_for(2)  # the nanny restarted it


def test_a_notebook_that_keeps_killing_workers_ends_as_one_error_row(cluster, prepared_course):
    import pool_tasks

    from grader.run.cluster import run_on_cluster

    jobs = [Submission(s, NB, b"{}") for s in ("s1", "killer", "s2", "s3")]
    from grader.run.cluster import session

    got = []
    with session(cluster.address) as client:
        run_on_cluster(client, iter(jobs), len(jobs), prepared_course, Settings(timeout=5), got.append,
                       task=pool_tasks.quick)
    rows = {r.row.student_id: r.row for r in got}
    assert len(got) == 4 and sorted(rows) == ["killer", "s1", "s2", "s3"]
    assert rows["killer"].status == "error" and "died 2 times" in rows["killer"].detail
    assert all(rows[s].status == "graded" for s in ("s1", "s2", "s3"))
    cluster.wait_for(2)


def test_an_unreachable_scheduler_fails_within_seconds_naming_it(tmp_path):
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    address = f"tcp://127.0.0.1:{free_port()}"
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "grader", "autograde", str(tmp_path / "subs"), "--out",
                           str(tmp_path / "out"), "--scheduler", address], cwd=layout.course().root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and time.monotonic() - start < 40
    assert done.stderr.startswith("error: cannot reach the Dask scheduler at " + address)


def test_ctrl_c_leaves_every_row_whole_and_a_rerun_regrades(cluster, tmp_path):
    students, grader = grading_on(cluster, tmp_path, "--workers", "2")
    saved = tmp_path / "out" / "results"
    for _ in range(600):
        if len(list(saved.glob("*/*/*.json"))) >= 2:
            break
        time.sleep(0.2)
    grader.send_signal(signal.SIGINT)
    _, err = grader.communicate(timeout=120)
    assert grader.returncode == 130, err[-2000:]
    written = list(saved.glob("*/*/*.json"))
    assert 2 <= len(written) < len(students)
    for path in written:
        json.loads(path.read_text())  # whole, not half-written
    missing = sorted(set(students) - {p.parent.parent.name for p in written})
    autograde(tmp_path / "subs", tmp_path / "out", timeout=20, assignment=[NB.assignment], student=missing[:1],
              scheduler=cluster.address)
    assert read_grades_csv(tmp_path / "out")[(missing[0], NB.key)].status == "graded"


def test_the_readme_slurm_snippet_runs_on_a_local_cluster(tmp_path):
    """The README's Slurm recipe, with dask-jobqueue's SLURMCluster swapped for a LocalCluster."""
    from dask_jobqueue import SLURMCluster
    from distributed import LocalCluster

    slurm = SLURMCluster(cores=1, processes=1, memory="8GB", walltime="02:00:00", scheduler_options={"host": "127.0.0.1"},
                         worker_extra_args=["--nthreads", "1"])
    try:
        script = slurm.job_script()
    finally:
        slurm.close()
    assert "#SBATCH" in script and "--nthreads 1" in script
    write_submission(tmp_path / "subs", "ada", NB, answers.submission(NB))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        rows = autograde(tmp_path / "subs", tmp_path / "out", timeout=30, assignment=[NB.assignment], scheduler=local)
    assert (rows[0].status, rows[0].score + rows[0].to_grade) == ("graded", rows[0].max_score)
    # the worker's scratch folder is gone: the autograded notebook came back with the task's result, for formgrader
    out = tmp_path / "out"
    import nbformat

    from grader.course.cells import secrets_of
    from grader.course.hidden import leaks, notebook_text

    graded = nbformat.read(results.graded_path(out, "ada", NB.assignment, NB.name), as_version=4)
    assert any(c.cell_type == "code" and c.outputs for c in graded.cells), "it ran"
    assert leaks(notebook_text(graded), secrets_of(nbformat.read(NB.source, as_version=4)).hidden), \
        "nbgrader's autograded notebook, hidden tests in"
    assert (out / "course" / "autograded" / "ada" / NB.assignment / NB.filename).exists()
