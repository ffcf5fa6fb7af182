"""A whole term in one OUT, played as an instructor would: three commands per assignment, an override, a
late policy, the LMS's points; every figure below was computed by hand.

The notebooks are graded by a stand-in (no kernel): each submitted notebook says its score in its one cell
(`score=14`), and the stand-in gives it a row and a page as the grading task would, so that everything around
grading runs for real: collect, autograde's driver (which assignments, which rows are replaced and when,
the manifest kept per assignment), overrides, the late policy, the points, the pages' grade blocks, the
Canvas import file and its feedback zip. `test_a_loop_costs_only_the_cells_it_stops` (slow) grades real
notebooks on real kernels at the default limits.

The class, in Canvas (gradebook: Packed sequences worth 16, like the grader; Seq2seq worth 10, the grader's
maximum is 18):

| student | 01_packed_sequences (policy 20%)          | 02_seq2seq (policy 50%, scaled 18 -> 10)          |
| ------- | ----------------------------------------- | ------------------------------------------------- |
| ada     | 14, on time              -> 14.00         | 15, LATE: 15 - 7.5 = 7.5      -> 7.5 x 10/18 = 4.17 |
| ben     | 12, LATE: 12 - 2.40      -> 9.60          | 9, on time                    -> 9 x 10/18 = 5.00   |
| cat     | 9, renamed file          -> 9.00          | grader error, 0; override 12  -> 12 x 10/18 = 6.67  |
| dan     | nothing                  -> 0.00          | 18                            -> 10.00              |
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import stat
import zipfile
from pathlib import Path

import nbformat
import pytest
from lms_exports import canvas, canvas_gradebook, notebook_bytes, write_zip

from grader import results
from grader.cli import main
from grader.course.cells import facts_of, is_written
from grader.course import layout
from grader.course.layout import notebooks_of
from grader.grading.task import Result
from grader.lms import manifest
from grader.pages.feedback import notice_page
from grader.pages.summary import GRADE_END, GRADE_ID, grade_block_text
from grader.results import Row
from grader.run import autograde as driver

PACKED, SEQ = "01_packed_sequences", "02_seq2seq"
STUDENTS = [("Lovelace, Ada", 101, "ada", "ada@x"), ("Babbage, Ben", 102, "ben", "ben@x"),
            ("Hopper, Cat", 103, "cat", "cat@x"), ("Dijkstra, Dan", 104, "dan", "dan@x")]
COLUMNS = {"Packed sequences (4242)": "16.00", "Seq2seq (4243)": "10.00", "BiLSTM tagger (4244)": "15.00",
           "Attention (4245)": "23.00"}
STUDENT_MARK = "<pre>what the student's code printed: {}</pre>"  # stands for the student's content on a page


class Course:
    """The prepared course as the driver uses it when nothing runs: each notebook's facts."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def facts(self, notebook):
        """Its tests only: the written answers' points, graded by people, have tests of their own."""
        source = nbformat.read(notebook.source, as_version=4)
        source.cells = [c for c in source.cells if not is_written(c)]
        return facts_of(source)


def stand_in(client, course, settings, jobs, total, workers, in_flight, done, note=None, stop_after=None):
    """Grade each job from what its notebook says (`score=N`, `status=error`), with a page as the task makes one."""
    for n, job in enumerate(jobs):
        if stop_after is not None and n == stop_after:
            raise KeyboardInterrupt
        most = course.facts(job.notebook).max_score
        if job.student == driver.REFERENCE_STUDENT:
            done(Result(Row(job.student, job.notebook.assignment, job.notebook.name, most, most, "graded"), "",
                        {"setup": 0.5, "test": 0.2}))
            continue
        said = dict(part.split("=") for part in nbformat.reads(job.content.decode(), as_version=4).cells[0].source
                    .removeprefix("# ").split())
        status = said.get("status", "graded")
        row = Row(job.student, job.notebook.assignment, job.notebook.name, float(said.get("score", 0)), most, status,
                  "the grader's kernel died" if status == "error" else job.detail,
                  limits=settings.limits(job.notebook.key).words())
        page = notice_page(f"{job.notebook.key}: feedback for {job.student}", row)
        page = page.replace("</body>", STUDENT_MARK.format(job.student) + "</body>")
        done(Result(row, page))


@pytest.fixture
def term(tmp_path, monkeypatch):
    """The instructor's folder: the gradebook export and the two Canvas zips, grading stood in for."""
    monkeypatch.setattr(driver, "prepared_course", lambda notebooks: Course(tmp_path / "course"))
    monkeypatch.setattr(driver, "grade_submissions", stand_in)
    monkeypatch.chdir(tmp_path)
    Path("gradebook.csv").write_text(canvas_gradebook([(n, uid, sis, login) for n, uid, sis, login in STUDENTS],
                                                      COLUMNS), encoding="utf-8")
    write_zip(tmp_path / "packed.zip", {
        canvas("lovelaceada", 101, 5001, "packed_sequences.ipynb"): notebook_bytes("score=14"),
        canvas("babbageben", 102, 5002, "packed_sequences.ipynb", late=True): notebook_bytes("score=12"),
        canvas("hoppercat", 103, 5003, "Packed Sequences (1).ipynb"): notebook_bytes("score=9"),
    })
    write_zip(tmp_path / "seq.zip", {
        canvas("lovelaceada", 101, 6001, "seq2seq.ipynb", late=True): notebook_bytes("score=15"),
        canvas("babbageben", 102, 6002, "seq2seq.ipynb"): notebook_bytes("score=9"),
        canvas("hoppercat", 103, 6003, "seq2seq.ipynb"): notebook_bytes("status=error"),
        canvas("dijkstradan", 104, 6004, "seq2seq.ipynb"): notebook_bytes("score=18"),
    })
    return tmp_path


def canvas_reads(filename: str) -> tuple[str, str] | None:
    """What Canvas's "Re-Upload Submissions" takes from a file name (canvas-lms, Assignment
    #infer_comment_context_from_filename): the first two `_`-separated parts that are all digits are the user id
    and the attachment id; a name starting `._`, or whose last part starts with `link`, carries no attachment."""
    name = Path(filename).name
    parts = name.split("_")
    while parts and not parts[-1]:  # Ruby's String#split drops trailing empty fields
        parts.pop()
    ids = [p for p in parts if re.fullmatch(r"[0-9]+", p)][:2]
    if len(ids) < 2 or (parts and parts[-1].startswith("link")) or name.startswith("._"):
        return None
    return ids[0], ids[1]


def run(*args: str) -> int:
    """A command as the instructor types it in their own folder (the course folder named where it is needed)."""
    course = ["--course", str(layout.course().root)] if args[0] == "autograde" else []
    return main(list(args) + course)


def canvas_file(path: str) -> dict[str, dict[str, str]]:
    """Canvas's import file as Canvas reads it: {column: {user id: cell}}, and the Points Possible row."""
    with open(path, newline="", encoding="utf-8") as f:
        header, points, *rows = list(csv.reader(f))
    table = {column: {r[1]: r[i] for r in rows} for i, column in enumerate(header)}
    table["points"] = dict(zip(header, points))
    return table


def grades(out: str = "OUT") -> dict[tuple[str, str], dict[str, str]]:
    with open(Path(out) / "grades.csv", newline="") as f:
        return {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}


def page(student: str, assignment: str, out: str = "OUT") -> str:
    notebook = notebooks_of(assignment)[0].name
    return results.feedback_path(Path(out), student, assignment, notebook).read_text()


def outside_the_grade(text: str) -> str:
    """A page without its grade block: what refreshing must leave byte for byte."""
    start = text.index(f'<div id="{GRADE_ID}"')
    return text[:start] + text[text.index(GRADE_END, start):]


def row_files(assignment: str, out: str = "OUT") -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(Path(out, "results").glob(f"*/{assignment}/*.json"))}


def test_a_whole_term(term, capsys):
    # --- assignment 1: collect, grade, export with a late policy -------------------------------------------
    assert run("collect", "packed.zip", "--assignment", PACKED, "--into", "SUB1", "--roster", "gradebook.csv") == 0
    assert run("autograde", "SUB1", "--out", "OUT") == 0
    assert sorted({(s, a) for s, a in grades()}) == [(s, PACKED) for s in ("ada", "ben", "cat", "dan")], \
        "only the assignment collected: no rows, and no pages, for work that was never due"
    assert sorted(p.name for p in Path("OUT/feedback/ada").iterdir()) == [PACKED]
    assert stat.S_IMODE(os.stat("OUT").st_mode) == 0o700, "OUT is private: graded work, tracebacks, rosters"
    capsys.readouterr()
    assert run("export", "OUT", "--format", "canvas", "--roster", "gradebook.csv", "--to", "a1.csv",
               "--late-penalty", "20%", "--map", "03_bilstm_tagger=4244", "--feedback-zip", "a1-feedback.zip") == 0
    said = capsys.readouterr().out
    assert "--map 03_bilstm_tagger: skipped, no grades for it in OUT yet" in said
    assert f"left out of a1.csv (no grades in OUT yet; the LMS keeps what it has): " \
           f"{', '.join(layout.assignments()[1:])}\n" in said
    a1 = canvas_file("a1.csv")
    assert list(a1) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Packed sequences (4242)", "points"], \
        "no column, so no 0.00, for an assignment not graded: Canvas keeps what its gradebook has"
    assert a1["Packed sequences (4242)"] == {"101": "14.00", "102": "9.60", "103": "9.00", "104": "0.00"}
    assert a1["points"]["Packed sequences (4242)"] == "16.00"
    ben = grades()[("ben", PACKED)]
    assert (ben["score"], ben["raw_score"], ben["late_penalty"], ben["final_score"], ben["late"]) == \
           ("12", "12", "2.4", "9.6", "true")
    assert grade_block_text(page("ben", PACKED)).splitlines() == [
        "Score: 9.6 / 16", "Autograded: 12 / 16.",
        "Late penalty: -2.4 (marked late by the LMS, no submission time; 20% off late work)."]
    assert grade_block_text(page("ada", PACKED)).splitlines() == ["Score: 14 / 16"]
    with zipfile.ZipFile("a1-feedback.zip") as z:
        names = sorted(z.namelist())
        assert names == ["babbageben_102_5002_feedback_packed_sequences.html",
                         "hoppercat_103_5003_feedback_packed_sequences.html",
                         "lovelaceada_101_5001_feedback_packed_sequences.html"], "dan submitted nothing to comment on"
        assert z.read(names[0]).decode() == page("ben", PACKED), "the page as it stands, penalty included"
    with zipfile.ZipFile("packed.zip") as z:
        submitted = {canvas_reads(n) for n in z.namelist()}  # (user id, attachment id) of each student's file
    assert {canvas_reads(n) for n in names} == submitted - {None}, \
        "each page names, as Canvas reads a name, its student and the file they submitted"
    assert "a1-feedback.zip: 1 student(s) without feedback in it: dan" in said

    # --- assignment 2: collected into its own folder, graded into the same OUT ------------------------------
    first = row_files(PACKED)
    assert run("collect", "seq.zip", "--assignment", SEQ, "--into", "SUB2", "--roster", "gradebook.csv") == 0
    assert run("autograde", "SUB2", "--out", "OUT") == 0
    assert row_files(PACKED) == first, "assignment 1's rows are not touched"
    ben = grades()[("ben", PACKED)]
    assert (ben["late"], ben["late_penalty"], ben["final_score"]) == ("true", "2.4", "9.6"), \
        "assignment 1's late flag and penalty survive grading assignment 2 from another folder"
    assert set(manifest.load(Path("OUT")).assignments) == {PACKED, SEQ}
    assert {a for _, a in grades()} == {PACKED, SEQ}
    assert run("export", "OUT", "--format", "canvas", "--roster", "gradebook.csv", "--to", "a2.csv",
               "--assignment", SEQ, "--late-penalty", "50%") == 2
    assert "Seq2seq (4243): Canvas says 10 points possible, the grader's maximum for 02_seq2seq is 18; choose " \
           "--scale-to-lms" in capsys.readouterr().err
    assert run("export", "OUT", "--format", "canvas", "--roster", "gradebook.csv", "--to", "a2.csv",
               "--assignment", SEQ, "--late-penalty", "50%", "--scale-to-lms") == 0
    a2 = canvas_file("a2.csv")
    assert list(a2)[5:] == ["Seq2seq (4243)", "points"]
    assert a2["Seq2seq (4243)"] == {"101": "4.17", "102": "5.00", "103": "0.00", "104": "10.00"}
    assert a2["points"]["Seq2seq (4243)"] == "10.00"
    assert grade_block_text(page("ada", SEQ)).splitlines() == [
        "Score: 7.5 / 18", "Autograded: 15 / 18.",
        "Late penalty: -7.5 (marked late by the LMS, no submission time; 50% off late work).",
        "In the LMS: 4.17 / 10 (scaled from 18 points)."]

    # --- an override; the next export applies both policies without being told again ----------------------
    before = page("cat", SEQ)
    Path("OUT/overrides.csv").write_text("student,assignment,notebook,score,reason\n"
                                         "cat,02_seq2seq,,12,regraded by hand: the grader's kernel died\n")
    assert run("export", "OUT", "--format", "canvas", "--roster", "gradebook.csv", "--to", "term.csv") == 0
    both = canvas_file("term.csv")
    assert both["Packed sequences (4242)"] == {"101": "14.00", "102": "9.60", "103": "9.00", "104": "0.00"}, \
        "no grade changed that the instructor did not ask to change"
    assert both["Seq2seq (4243)"] == {"101": "4.17", "102": "5.00", "103": "6.67", "104": "10.00"}
    after = page("cat", SEQ)
    assert grade_block_text(after).splitlines() == [
        "Score: 12 / 18", "Autograded: 0 / 18.",
        "Score set to 12 by the instructor: regraded by hand: the grader's kernel died.",
        "In the LMS: 6.67 / 10 (scaled from 18 points)."]
    assert outside_the_grade(after) == outside_the_grade(before), "only the grade block is rewritten"
    assert STUDENT_MARK.format("cat") in after
    cat = grades()[("cat", SEQ)]
    assert (cat["raw_score"], cat["score"], cat["final_score"], cat["status"]) == ("0", "12", "12", "error")

    # --- the override changes again: one command brings grades.csv, the pages and the report up to date ---
    Path("OUT/overrides.csv").write_text("student,assignment,notebook,score,reason\n"
                                         "cat,02_seq2seq,,13,regraded by hand\n")
    assert run("refresh", "OUT") == 0
    assert grades()[("cat", SEQ)]["score"] == "13"
    assert grade_block_text(page("cat", SEQ)).splitlines()[-1] == "In the LMS: 7.22 / 10 (scaled from 18 points)."
    assert "regraded by hand" in Path("OUT/report.html").read_text()
    report = Path("OUT/report.html").read_text()
    assert f"time limits, {PACKED}" in report and f"time limits, {SEQ}" in report, "each assignment's limits"

    # --- what OUT holds: the README's table, nothing else -------------------------------------------------
    assert sorted(p.name for p in Path("OUT").iterdir()) == [
        "collect-manifest.json", "feedback", "grades.csv", "overrides.csv", "policy.json", "report-data.json",
        "report.html", "results", "unplaced.json"]
    assert set(json.loads(Path("OUT/policy.json").read_text())) == {PACKED, SEQ}

    # --- every page agrees with what the LMS got ----------------------------------------------------------
    assert run("export", "OUT", "--format", "canvas", "--roster", "gradebook.csv", "--to", "final.csv") == 0
    final = canvas_file("final.csv")
    for (name, uid, student, _) in STUDENTS:
        for assignment, column, lms in ((PACKED, "Packed sequences (4242)", 16), (SEQ, "Seq2seq (4243)", 10)):
            text = grade_block_text(page(student, assignment))
            shown = re.search(r"In the LMS: ([\d.]+) / ", text) or re.match(r"Score: ([\d.]+) / ", text)
            assert float(shown.group(1)) == float(final[column][str(uid)]), (student, assignment, text)


def test_regrading_one_student_keeps_everything_else(term):
    assert run("collect", "packed.zip", "--assignment", PACKED, "--into", "SUB1", "--roster", "gradebook.csv") == 0
    assert run("collect", "seq.zip", "--assignment", SEQ, "--into", "SUB2", "--roster", "gradebook.csv") == 0
    assert run("autograde", "SUB1", "--out", "OUT") == 0
    assert run("autograde", "SUB2", "--out", "OUT") == 0
    Path("OUT/overrides.csv").write_text("student,assignment,notebook,score,reason\nben,01_packed_sequences,,16,fine\n")
    assert run("export", "OUT", "--format", "canvas", "--roster", "gradebook.csv", "--to", "x.csv",
               "--late-penalty", "20%", "--assignment", PACKED) == 0
    others = {k: v for k, v in grades().items() if k[0] != "ben"}
    nbfile = Path("SUB1/ben/01_packed_sequences/packed_sequences.ipynb")
    nbfile.write_bytes(notebook_bytes("score=13"))
    assert run("autograde", "SUB1", "--out", "OUT", "--student", "ben") == 0
    assert {k: v for k, v in grades().items() if k[0] != "ben"} == others
    ben = grades()[("ben", PACKED)]
    assert (ben["raw_score"], ben["score"], ben["late"], ben["late_penalty"], ben["final_score"]) == \
           ("13", "16", "true", "3.2", "12.8"), "the override and the late flag outlive the regrade"
    assert grades()[("ben", SEQ)]["score"] == "9"


def test_a_run_stopped_half_way_leaves_every_row_old_or_new(term, monkeypatch):
    assert run("collect", "packed.zip", "--assignment", PACKED, "--into", "SUB1", "--roster", "gradebook.csv") == 0
    assert run("autograde", "SUB1", "--out", "OUT") == 0
    old = {r.student_id: r for r in results.load_all(Path("OUT"))}
    for student, score in (("ada", 1), ("ben", 2), ("cat", 3)):
        path = next(Path("SUB1", student, PACKED).glob("*.ipynb"))
        path.write_bytes(notebook_bytes(f"score={score}"))
    monkeypatch.setattr(driver, "grade_submissions", lambda *a, **k: stand_in(*a, **k, stop_after=2))
    with pytest.raises(KeyboardInterrupt):
        driver.autograde(Path("SUB1"), Path("OUT"))
    now = {r.student_id: r for r in results.load_all(Path("OUT"))}
    assert set(now) == set(old), "nothing removed by a run that did not finish"
    assert [now[s].score for s in ("ada", "ben", "cat")] == [1, 2, old["cat"].score], "two new, one old"
    assert not list(Path("OUT").rglob("*.partial"))


def test_autograde_says_when_there_is_nothing_to_grade(term, capsys):
    Path("EMPTY/ada").mkdir(parents=True)
    assert run("autograde", "EMPTY", "--out", "OUT") == 2
    assert "no assignment to grade" in capsys.readouterr().err
    assert not Path("OUT").exists()


ENDLESS_LSTM_CELL = ("def lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh):\n"
                     "    while True:\n        pass\n")


@pytest.mark.slow
def test_a_loop_costs_only_the_cells_it_stops(tmp_path):
    """Real kernels, default limits (measured from the reference): an `lstm_cell` that never returns costs its
    own 6 points and one full cell limit; every later cell that calls it gets the short limit, and the correct
    `run_packed` keeps its 10 points, in under 60 s of a worker. The page and Canvas's file say the same."""
    from grader.course import answers
    from grader.lms.grades import class_grades
    from grader.lms.export import export
    from grader.manual.store import Mark, write_marks
    from grader.grading.settings import CELL_FACTOR, CELL_FLOOR, RETRY_FACTOR, RETRY_FLOOR
    from grader.course.layout import SERIES

    nb = SERIES[0]
    gradebook = tmp_path / "gradebook.csv"
    gradebook.write_text(canvas_gradebook([(n, uid, sis, login) for n, uid, sis, login in STUDENTS[:2]], COLUMNS))
    zipped = write_zip(tmp_path / "packed.zip", {
        canvas("lovelaceada", 101, 5001, nb.filename): nbformat.writes(answers.submission(nb)).encode(),
        canvas("babbageben", 102, 5002, nb.filename):
            nbformat.writes(answers.submission(nb, {"lstm_cell": ENDLESS_LSTM_CELL})).encode(),
    })
    subs, out = tmp_path / "SUB1", tmp_path / "OUT"
    assert main(["collect", str(zipped), "--assignment", nb.assignment, "--into", str(subs),
                 "--roster", str(gradebook)]) == 0
    rows = {r.student_id: r for r in driver.autograde(subs, out, workers=2)}
    ada, ben = rows["ada"], rows["ben"]
    assert (ada.status, ada.score) == ("graded", 16)
    assert (ben.status, ben.score) == ("timeout", 10), ben.detail
    assert sum(c.score for c in ben.cells if c.exercise == "run_packed") == 10
    times = json.loads((driver.prepared_course([nb]).root / driver.TIMES_NAME).read_text())[nb.key]
    full = max(CELL_FLOOR, CELL_FACTOR * times["test_lstm_cell_visible"])
    # a cell named as the student finds it: a test by its id, the given `unroll` by the exercise before it
    named = {f"the test `{cell}`": cell for cell in times} | {"a given cell after the one defining `lstm_cell`": "unroll"}
    stopped = [(named[said], seconds) for said, seconds in
               re.findall(r"(the test `\w+`|a given cell after the one defining `\w+`) ran longer than (\d+) s", ben.detail)]
    assert stopped[0] == ("test_lstm_cell_visible", str(math.ceil(full))), ben.detail
    for cell, seconds in stopped[1:]:
        assert int(seconds) == math.ceil(max(RETRY_FLOOR, RETRY_FACTOR * times[cell])), (cell, ben.detail)
    assert {cell for cell, _ in stopped} == {"test_lstm_cell_visible", "test_lstm_cell_hidden_values",
                                             "test_lstm_cell_hidden_inputs", "test_lstm_cell_hidden_gradients",
                                             "unroll"}, "the five cells that call lstm_cell, and only those"
    assert ben.limits.startswith("per cell ") and "(from the reference)" in ben.limits
    load = os.getloadavg()[0]
    print(f"\nben's notebook took {ben.seconds:.0f} s of a worker (the reference's: {ada.seconds:.0f} s), load {load:.1f}")
    assert ben.seconds < 60, (f"an endless lstm_cell took {ben.seconds:.0f} s of a worker at the default limits "
                              f"(the reference's notebook {ada.seconds:.0f} s; load {load:.1f} on {os.cpu_count()} cores)")
    assert (ada.to_grade, ben.to_grade) == (4, 4), "two written answers each, left to a person"
    write_marks(out, {m.key: m for r in (ada, ben) for m in  # graded in formgrader: full marks
                      [Mark(r.student_id, nb.assignment, nb.name, w.grade_id, w.answer_sha256, w.points, "")
                       for w in r.written]})
    export(out, "canvas", tmp_path / "canvas.csv", gradebook, points="as_graded")  # Canvas says 16, the grader 20
    assert canvas_file(str(tmp_path / "canvas.csv"))["Packed sequences (4242)"] == {"101": "20.00", "102": "14.00"}
    assert grade_block_text(results.feedback_path(out, "ben", nb.assignment, nb.name).read_text()).splitlines()[0] \
        == "Score: 14 / 20"
    assert class_grades(out).rows[1].limits == ben.limits
