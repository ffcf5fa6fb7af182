"""The demo's Canvas round trip: the bundled zips are current, collect lays them out, and (slow) the
whole of collect -> autograde -> export gives the grades an instructor expects."""

from __future__ import annotations

import csv
import re
import zipfile

import pytest

from grader.course import layout
from grader.demo.round_trip import COLUMNS, GRADEBOOK, canvas_entries, gradebook_text, round_trip
from grader.lms.collect import collect
from grader.lms.roster import read_roster
from grader.results import read_csv

DEMO_CANVAS = layout.course().demo_canvas


def test_bundled_canvas_exports_are_up_to_date():
    """demo/canvas is what `python -m grader demo --rebuild` writes from demo/submissions."""
    hint = "run `python -m grader demo --rebuild` and commit demo/canvas"
    for assignment, files in canvas_entries().items():
        with zipfile.ZipFile(DEMO_CANVAS / f"{assignment}.zip") as z:
            assert {i.filename: z.read(i) for i in z.infolist()} == files, hint
    assert (DEMO_CANVAS / GRADEBOOK).read_bytes().decode("utf-8") == gradebook_text(), hint


def test_demo_zips_collect_as_expected(tmp_path):
    into = tmp_path / "collected"
    roster = read_roster(DEMO_CANVAS / GRADEBOOK)
    results = {a: collect(DEMO_CANVAS / f"{a}.zip", a, into, roster) for a in COLUMNS}
    placed = sorted(f"{p.student}/{a}/{p.notebook}" for a, r in results.items() for p in r.placed)
    submitted = {"ada": layout.SERIES, "ben": layout.SERIES, "cat": layout.SERIES[:3]}  # cat skipped the last
    assert placed == sorted(f"{s}/{nb.assignment}/{nb.name}" for s, nbs in submitted.items() for nb in nbs)
    assert [r.not_submitted for r in results.values()] == [["dan"]] * 3 + [["cat", "dan"]] * (len(COLUMNS) - 3)
    assert results["02_seq2seq"].students["ben"].late is True
    assert results["01_packed_sequences"].students["ben"].late is False
    assert [(u.student, u.why) for u in results["01_packed_sequences"].unplaced] == [("cat", "not a notebook (.ipynb)")]
    last = layout.SERIES[-1]
    renamed = next(p for p in results[last.assignment].placed if p.student == "ben")
    assert f"'{last.name} (1).ipynb' taken as {last.filename}" in renamed.why


@pytest.mark.slow
def test_round_trip_from_the_canvas_zip(tmp_path, capsys):
    """`make demo`'s path, on the assignment whose notebook cat broke: collect, autograde (real kernels), export."""
    last = layout.SERIES[2]  # cat's not-JSON upload; ben's catalogued wrong answer
    out = tmp_path / "out"
    out.mkdir()
    (out / "overrides.csv").write_text("student,assignment,notebook,score,reason\n"
                                       f"cat,{last.assignment},{last.name},5,resent the file intact by email\n")
    rows = round_trip(out, timeout=20, workers=2, assignments=[last.assignment])
    got = {r.student_id: r for r in rows}
    assert set(got) == {"ada", "ben", "cat", "dan"}
    assert got["ada"].status == "graded" and got["ada"].score == got["ada"].max_score > 0
    assert got["ben"].status == "graded" and got["ben"].score < got["ben"].max_score
    assert got["cat"].status == "invalid_notebook" and got["dan"].status == "not_submitted"
    assert got["cat"].score == 5 and "set to 5 by the instructor: resent the file" in got["cat"].detail
    grades = {r.student_id: r for r in read_csv(out)}
    assert grades["ada"].late == "false" and grades["dan"].late == ""
    with (out / "canvas_import.csv").open(newline="") as f:
        header, points, *students = list(csv.reader(f))
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert re.match(r"^(.*)\s\((\d+)\)$", header[5]) and header[5] == COLUMNS[last.assignment]
    assert points[0] == "    Points Possible" and float(points[5]) == got["ada"].max_score
    scores = {r[2]: r[5] for r in students}
    # ben's written answer is left to grade: his assignment is left blank (--ungraded blank), and the output says so
    assert got["ben"].to_grade > 0
    assert scores == {"ada": f"{got['ada'].max_score:.2f}", "ben": "", "cat": "5.00", "dan": "0.00"}
    report = (out / "report.html").read_text()
    assert "dan" in report and "resent the file intact" in report
    printed = capsys.readouterr().out
    assert "on the roster without a submission (autograde gives them not_submitted rows): dan" in printed
    assert f"warning: left blank: written answers left to grade in 1 notebook: ben/{last.key}" in printed

    # the override survives regrading that student
    from grader.run.autograde import autograde
    again = {r.student_id: r for r in autograde(out / "collected", out, student=["cat"], assignment=[last.assignment],
                                                        timeout=20)}
    assert again["cat"].score == 5 and again["ada"].score == got["ada"].score


def test_the_demo_echoes_the_command_it_runs(tmp_path, capsys, monkeypatch):
    """Each `$ python -m grader autograde ...` line `make demo` prints asks for exactly what the demo then does."""
    import shlex

    from grader.cli import build_parser
    from grader.lms import export as export_module
    from grader.run import autograde as driver

    called = {}
    monkeypatch.setattr(driver, "autograde", lambda subs, out, **kw: called.update(kw, subs=subs, out=out) or [])
    monkeypatch.setattr(export_module, "export", lambda *a, **kw: type("R", (), {"warnings": [], "details": "d"}))
    for assignments in (None, [layout.SERIES[2].assignment]):
        called.clear()
        round_trip(tmp_path / "out", timeout=20, workers=2, assignments=assignments)
        line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("$ python -m grader autograde"))
        args = build_parser().parse_args(shlex.split(line)[4:])
        assert (args.timeout, args.workers, args.assignment) == (called["timeout"], called["workers"], called["assignment"])
        assert (args.submissions, args.out) == (str(called["subs"]), str(called["out"]))
