"""Hostile submissions: each gets a row, none gains a point, none reads or leaks a hidden test.

Every attack also has a control that shows it working where its defence is off, so no test here
passes because the attack was broken to begin with.
"""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from helpers import require, tree_digest, write_submission
from hostile import CHANNEL, FORGED_REPORT, FORGERIES, HOSTILE, IN_PLACE, STUB, ZEROS, ChannelAttack, Hostile
from nbformat.v4 import new_code_cell

from devtools.stock import stock_autograde, stock_course, stock_scores
from grader.course import answers, layout
from grader.course.cells import secrets_of
from grader.course.hidden import html_text, leaks
from grader.kernel.sandbox import bwrap_problem
from grader.run.autograde import autograde

pytestmark = pytest.mark.slow
NB = layout.SERIES[0]
BY_NAME = {case.name: case for case in HOSTILE + FORGERIES + [FORGED_REPORT]}
SECRETS = secrets_of(nbformat.read(NB.source, as_version=4))
# A hidden-test line that a student also wrote in their own code is theirs to see.
WRITTEN = {line.strip() for case in HOSTILE + FORGERIES + [FORGED_REPORT]
           for text in (case.source, case.extra_cell, ZEROS, STUB, IN_PLACE) for line in text.splitlines()}
UNSEEN = frozenset(SECRETS.hidden - WRITTEN)


class Listener:
    """A TCP server on localhost that records what anyone sends it."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.received.append(conn.recv(1024))


@dataclass
class Run:
    out: Path
    subs: Path
    rows: dict
    steal: dict[str, Path]
    listener: Listener
    victim: Path
    digests: tuple[str, str] = ("", "")
    extra: dict = field(default_factory=dict)


def submission_for(case: Hostile, steal: Path, victim: Path, port: int) -> nbformat.NotebookNode:
    source = case.source.replace("@STEAL@", str(steal)).replace("@VICTIM@", str(victim)).replace("@PORT@", str(port))
    nb = answers.submission(NB, {"run_packed": source})
    if case.extra_cell:
        nb.cells.append(new_code_cell(case.extra_cell))
    return nb


def grade(root: Path, cases: list[Hostile], sandbox: str, honest: bool = True, split: bool = True) -> Run:
    subs, out = root / "submissions", root / "out"
    listener = Listener()
    victim = write_submission(subs, "victim", NB, answers.submission(NB))
    steal = {c.name: root / f"{c.name}.stolen" for c in cases}
    if honest:
        write_submission(subs, "honest_zeros", NB, answers.submission(NB, {"run_packed": ZEROS}))
        write_submission(subs, "honest_stub", NB, answers.submission(NB, {"run_packed": STUB}))
        write_submission(subs, "honest_in_place", NB, answers.submission(NB, {"run_packed": IN_PLACE}))
    for case in cases:
        write_submission(subs, case.name, NB, submission_for(case, steal[case.name], victim, listener.port))
    before = tree_digest(subs)
    # Only notebook 1 is submitted: grading the others too would add a `not_submitted` row per student,
    # and that row, not notebook 1's, would end up under the student's id here.
    rows = {r.student_id: r for r in autograde(subs, out, workers=2, timeout=15, sandbox=sandbox,
                                               assignment=[NB.assignment], split=split)}
    return Run(out, subs, rows, steal, listener, victim, (before, tree_digest(subs)))


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory) -> Run:
    require(bwrap_problem() is None, f"bubblewrap unavailable: {bwrap_problem()}")
    return grade(tmp_path_factory.mktemp("hostile"), HOSTILE + FORGERIES + [FORGED_REPORT], "bwrap")


def base_score(run: Run, case: Hostile) -> float:
    return run.rows[f"honest_{case.base}"].score


# ---------------------------------------------------------------------------------------------
# In the sandbox


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c.name)
def test_hostile_submission_gets_a_row_and_no_points(sandboxed, case):
    row = sandboxed.rows[case.name]
    assert row.status in case.statuses, (row.status, row.detail)
    assert row.score <= base_score(sandboxed, case), row.detail


def test_honest_submissions_in_the_same_run_are_graded_correctly(sandboxed):
    victim = sandboxed.rows["victim"]
    assert victim.score + victim.to_grade == victim.max_score  # full test marks; its written answers left to grade
    assert sandboxed.rows["victim"].status == "graded"
    # Both keep the reference lstm_cell (6 points); zeros also really passes one run_packed test (inputs unchanged).
    assert sandboxed.rows["honest_zeros"].score == 7
    assert sandboxed.rows["honest_stub"].score == 6


def decoded_blobs(text: str) -> str:
    """Everything in `text` that decodes from base64 (how a cheat would smuggle source out)."""
    found = []
    for blob in re.findall(r"[A-Za-z0-9+/=]{40,}", text):
        try:
            found.append(base64.b64decode(blob + "=" * (-len(blob) % 4)).decode("utf-8", "ignore"))
        except ValueError:
            continue
    return "\n".join(found)


def kept_for_formgrader(out: Path, path: Path) -> bool:
    """The autograded notebooks OUT keeps for formgrader, and the nbgrader course built from them: they hold the
    hidden tests by design, for the instructor only."""
    inside = path.relative_to(out)
    return inside.parts[0] == "course" or (inside.parts[0] == "results" and path.suffix == ".ipynb")


def test_no_hidden_test_line_anywhere_in_the_output(sandboxed):
    """No hidden-test line in any page, row, grades.csv or report; only the notebooks kept for formgrader hold
    them (the control: they do), in an OUT that only its owner can enter."""
    out = sandboxed.out
    assert oct(out.stat().st_mode & 0o777) == "0o700"
    private = []
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="ignore")
            readable = html_text(text) if path.suffix == ".html" else text
            if kept_for_formgrader(out, path):
                private.append(bool(leaks(readable, UNSEEN)))
                continue
            assert leaks(readable, UNSEEN) == [], path
            assert leaks(decoded_blobs(readable), UNSEEN) == [], path
    assert private and any(private), "the formgrader's notebooks hold the hidden tests (the check can see them)"


def test_the_sandbox_let_nothing_out(sandboxed):
    assert sandboxed.digests[0] == sandboxed.digests[1], "SUBMISSIONS changed"
    assert sandboxed.listener.received == []
    assert not any(p.exists() for p in sandboxed.steal.values())
    feedback = html_text((sandboxed.out / "feedback" / "bounded_forks" / NB.assignment / f"{NB.name}.html").read_text())
    forked = int(re.search(r"forked: (\d+)", feedback).group(1))
    assert forked < 64, "the process limit should stop the forks"


def test_cheats_are_named_in_the_report(sandboxed):
    report = html_text((sandboxed.out / "report.html").read_text())
    for case in HOSTILE:
        if case.statuses == ("tampered",):
            assert case.name in report
            assert "cheat attempt seen (it cannot reach the tests)" in sandboxed.rows[case.name].detail


@pytest.mark.parametrize("case", FORGERIES, ids=lambda c: c.name)
def test_a_cheat_the_checks_miss_gains_nothing_against_the_trusted_kernel(sandboxed, case):
    """The checks in the student's kernel do not see these; the tests never ran where they could act."""
    row = sandboxed.rows[case.name]
    assert row.score <= base_score(sandboxed, case), (row.score, row.detail)
    assert row.status != "error", row.detail


def test_a_forged_report_of_changed_arguments_is_flagged_and_decides_only_the_inputs_test(sandboxed):
    """The one thing the student's side reports that decides points: its copies' in-place changes. Forged from
    inside the student's function (the source scan sees nothing), the audit names it, and it buys at most the
    inputs test over the same answer without the forgery."""
    row, honest = sandboxed.rows[FORGED_REPORT.name], sandboxed.rows["honest_in_place"]
    assert row.status == "tampered" and "the bridge that serves the tests was changed in the kernel" in row.detail, row.detail
    inputs = next(c for c in honest.cells if c.grade_id == "test_run_packed_hidden_inputs")
    assert inputs.score == 0 and honest.status == "graded", "without the forgery the in-place change costs the inputs test"
    assert row.score <= honest.score + inputs.max_score
    assert {c.grade_id for c in row.cells if c.score != next(h for h in honest.cells if h.grade_id == c.grade_id).score} \
        <= {"test_run_packed_hidden_inputs"}


@pytest.fixture(scope="module")
def one_kernel(tmp_path_factory) -> Run:
    """The same cheats, graded with the test cells in the student's kernel (stock nbgrader's way)."""
    require(bwrap_problem() is None, f"bubblewrap unavailable: {bwrap_problem()}")
    return grade(tmp_path_factory.mktemp("hostile-one-kernel"), FORGERIES, "bwrap", split=False)


@pytest.mark.parametrize("case", FORGERIES, ids=lambda c: c.name)
def test_control_with_the_tests_in_the_student_kernel_each_cheat_works(one_kernel, case):
    row = one_kernel.rows[case.name]
    page = html_text((one_kernel.out / "feedback" / case.name / NB.assignment / f"{NB.name}.html").read_text())
    gained = row.score > base_score(one_kernel, case)
    leaked = leaks(decoded_blobs(page), UNSEEN)
    assert gained or leaked, (row.status, row.score, row.detail)
    assert row.status == "graded", "and nothing was flagged"


# ---------------------------------------------------------------------------------------------
# Controls: the same attacks where their defence is off


@pytest.fixture(scope="module")
def unsandboxed(tmp_path_factory) -> Run:
    cases = [c for c in HOSTILE if c.control == "none" and c.name != "fork_bomb"]
    return grade(tmp_path_factory.mktemp("hostile-none"), cases, "none")


def test_control_without_sandbox_the_attacks_reach_the_host(unsandboxed):
    run = unsandboxed
    assert leaks(run.steal["read_gradebook"].read_text(), SECRETS.hidden), "it read the hidden tests"
    assert run.rows["forge_grades_in_gradebook"].score == run.rows["forge_grades_in_gradebook"].max_score
    assert run.listener.received, "it reached the network"
    assert run.digests[0] != run.digests[1] and run.victim.read_text() == "{}", "it overwrote another submission"
    assert run.steal["write_fake_result_file"].exists()
    assert int(run.steal["bounded_forks"].read_text()) == 100, "no process limit without the sandbox"


@pytest.fixture(scope="module")
def stock(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-stock")
    cases = [c for c in HOSTILE if c.control == "stock"]
    subs = root / "submissions"
    write_submission(subs, "honest_zeros", NB, answers.submission(NB, {"run_packed": ZEROS}))
    write_submission(subs, "honest_stub", NB, answers.submission(NB, {"run_packed": STUB}))
    for case in cases:
        write_submission(subs, case.name, NB, submission_for(case, root / "x", root / "y", 9))
    course = stock_course(root, [NB], subs)
    done = stock_autograde(course, NB.assignment, timeout=900)
    return course, stock_scores(course, NB), done


def autograded_text(course: Path, student: str) -> str:
    path = course / "autograded" / student / NB.assignment / NB.filename
    nb = nbformat.read(path, as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def test_control_stock_nbgrader_falls_for_the_cheats(stock):
    course, scores, done = stock
    for name in ("subclass_with_shadowed_builtin_type", "fake_torch_module", "patch_torch_comparisons",
                 "input_transformer_blanks_tests"):
        assert scores[name] > scores["honest_zeros"], name
    # The hooks cannot add points, but they do carry the hidden tests out.
    assert leaks(autograded_text(course, "hook_captures_hidden_tests"), SECRETS.hidden)
    assert leaks(decoded_blobs(autograded_text(course, "history_steals_hidden_tests")), SECRETS.hidden)
    # A kernel that exits takes the submission down: stock nbgrader reports a failed run, no partial credit.
    assert done.returncode != 0
    assert "error processing assignment '01_packed_sequences' for student 'os_exit_kills_kernel'" in done.stderr


def test_control_naive_checks_fall_for_fake_values():
    """Without exact type checks, the fake results would pass a comparison test."""
    import torch
    import torch.nn as nn

    for name in ("eq_always_true", "tensor_subclass_torch_function"):
        namespace = {"torch": torch, "nn": nn}
        exec(BY_NAME[name].source, namespace)
        out, _ = namespace["run_packed"](nn.GRU(2, 3, batch_first=True), torch.randn(2, 4, 2), torch.tensor([4, 2]))
        expected = torch.randn(2, 4, 3)
        assert bool(out == expected) if name == "eq_always_true" else torch.allclose(out, expected)


def test_control_sys_exit_fools_a_script_grader(tmp_path):
    """Run as a plain script, the exit ends the process with status 0 before any assertion fails."""
    script = tmp_path / "graded.py"
    script.write_text("import torch\n" + BY_NAME["sys_exit_before_asserts"].source
                      + "\nrun_packed(None, None, None)\nassert False, 'wrong answer'\n")
    assert subprocess.run([sys.executable, str(script)]).returncode == 0


def test_control_output_is_kept_in_full_without_a_cap(tmp_path):
    """nbclient as it ships holds a cell's whole output in memory; the grader stays small on a gigabyte."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[new_code_cell("for _ in range(200):\n    print('x' * 100_000)")])
    NotebookClient(nb, kernel_name="python3").execute()
    kept = sum(len(o.get("text", "")) for o in nb.cells[0].outputs)
    assert kept >= 20_000_000
    subs = tmp_path / "subs"
    write_submission(subs, "flood", NB, submission_for(BY_NAME["print_a_gigabyte"], tmp_path, tmp_path, 9))
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "grader", "autograde", str(subs),
                           "--out", str(tmp_path / "out"), "--workers", "1", "--timeout", "20"],
                          cwd=layout.course().root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    assert peak_kb < 700_000, f"the grader's peak memory was {peak_kb / 1000:.0f} MB for a 1 GB print"


# ---------------------------------------------------------------------------------------------
# The channel between the kernels: inputs, randomness and results (tests/hostile.py's CHANNEL)


@pytest.fixture(scope="module")
def channel_scores():
    """Each channel attack and its base, graded across the bridge on one kernel pair per notebook (tests/quick.py):
    {name: {test cell: points}}."""
    from quick import grade_answers

    from grader.course.layout import SERIES

    found = {}
    for assignment in dict.fromkeys(a.assignment for a in CHANNEL):
        nb = next(n for n in SERIES if n.assignment == assignment)
        fills = {}
        for a in (a for a in CHANNEL if a.assignment == assignment):
            fills[a.name] = {a.cell: a.source}
            fills[f"base-{a.name}"] = {a.cell: a.base}
        found.update(grade_answers(nb, fills, True))
    return found


@pytest.mark.parametrize("attack", CHANNEL, ids=lambda a: a.name)
def test_a_channel_attack_gains_nothing(channel_scores, attack: ChannelAttack):
    attacked, base = channel_scores[attack.name], channel_scores[f"base-{attack.name}"]
    assert sum(attacked.values()) <= sum(base.values()), (attacked, base)


@pytest.mark.parametrize("attack", CHANNEL, ids=lambda a: a.name)
def test_control_a_channel_attack_fools_the_check_it_was_built_for(attack: ChannelAttack):
    """In one process, against the check as it was written before the defence: the attack passes it, the same
    answer without the attack fails it."""
    import torch
    import torch.nn as nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    def passes(source: str) -> bool:
        namespace = {"torch": torch, "nn": nn, "pack_padded_sequence": pack_padded_sequence,
                     "pad_packed_sequence": pad_packed_sequence}
        exec(source, namespace)
        try:
            exec(attack.naive, namespace)
        except AssertionError:
            return False
        return True

    assert passes(attack.source) and not passes(attack.base)
