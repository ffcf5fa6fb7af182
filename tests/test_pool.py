"""The local pool: every submission gets exactly one result, and a dying process costs only its own job."""

from __future__ import annotations

import pool_tasks
import pytest

from grader.course import layout
from grader.grading.settings import Settings
from grader.grading.task import Submission
from grader.run.pool import LocalPool, describe_exit

NB = layout.SERIES[0]


def submissions(*students: str) -> list[Submission]:
    return [Submission(s, NB, b"{}") for s in students]


def run(course, students, workers=2):
    got = []
    LocalPool(course, Settings(timeout=5), workers, task=pool_tasks.quick).run(iter(submissions(*students)), len(students), got.append)
    return {r.row.student_id: r for r in got}, got


def test_every_submission_gets_one_result_on_several_processes(prepared_course):
    by_student, got = run(prepared_course, [f"s{i}" for i in range(6)])
    assert sorted(by_student) == [f"s{i}" for i in range(6)] and len(got) == 6
    assert len({r.row.detail for r in got}) == 2, "two processes shared the work"


def test_a_process_that_dies_costs_only_its_own_job(prepared_course):
    students = ["slow1", "killer", "s1", "slow2", "s2", "s3"]
    by_student, got = run(prepared_course, students)
    assert len(got) == len(students)
    assert all(by_student[s].row.status == "graded" for s in students if s != "killer"), "no honest row is an error"
    killed = by_student["killer"].row
    assert killed.status == "error"
    assert "died 2 times" in killed.detail and "SIGKILL" in killed.detail
    assert killed.max_score == prepared_course.facts(NB).max_score
    assert "problem on our side" in by_student["killer"].feedback


def test_control_a_standard_process_pool_fails_every_pending_job(prepared_course):
    """What concurrent.futures does with the same dying job: the whole pool breaks."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    broken = 0
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as pool:
        futures = [pool.submit(pool_tasks.quick, s, prepared_course, None, None)
                   for s in submissions("slow1", "killer", "s1", "s2", "s3")]
        for future in futures:
            try:
                future.result()
            except BrokenProcessPool:
                broken += 1
    assert broken >= 3


@pytest.mark.parametrize("code,words", [(-9, "SIGKILL (out of memory"), (-15, "SIGTERM"), (3, "status 3"),
                                        (None, "vanished")])
def test_how_a_process_ended_in_words(code, words):
    assert words in describe_exit(code)
