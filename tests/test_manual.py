"""Written answers graded by people: the marks file, the scores it puts into rows, the formgrader's copy of a
notebook, OUT/course built and read back, the student's page, the report and the exports. No kernel runs here:
graded notebooks are the released ones filled in, as a grading task would have returned them."""

from __future__ import annotations

import copy
import csv
import json
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output
from sample_class import nbgrader_page, secret_lines, toy_notebooks

from grader import results
from grader.course import answers, cells, layout
from grader.course.hidden import html_text
from grader.course.written import answer_hash
from grader.errors import GraderError, LmsError
from grader.grading.task import written_answers
from grader.lms import manifest
from grader.lms.export import export
from grader.lms.grades import Grades, bring_up_to_date, class_grades
from grader.manual import course as manual_course
from grader.manual.notebook import formgrader_copy, safe_outputs
from grader.manual.scores import apply_marks
from grader.manual.store import Mark, marks_path, parse_marks, read_marks, write_marks
from grader.pages import written as written_page
from grader.pages.written import as_text
from grader.pages.feedback import feedback_page
from grader.pages.summary import GRADE_END, GRADE_ID, anchor
from grader.report import page as report_page
from grader.results import CellResult, Row, WrittenAnswer

NB = layout.available()[0]  # 01_packed_sequences: two written questions
XSS = '<img src="x" onerror="window.graderXss = 1"><script>window.graderXss = 2</script>'


def written_row(student: str = "ada", *answers: WrittenAnswer, score: float = 5.0, where=("01_a", "nb")) -> Row:
    return Row(student, *where, score, 10.0, "graded", "", [CellResult("test_x", "x", score, 6.0, False)],
               written=list(answers), to_grade=sum(a.points for a in answers if a.score is None))


def mark(student: str, gid: str, text: str, score: float | None, comment: str = "") -> Mark:
    return Mark(student, "01_a", "nb", gid, answer_hash(text), score, comment)


# --- the marks file and the scores it gives ---------------------------------------------------------------

def test_marks_file_round_trip_and_errors(tmp_path):
    marks = {m.key: m for m in [mark("ada", "w1", "Because.", 1.5, 'Good, "but":\nwhy?'), mark("ben", "w1", "No", None,
                                                                                               "see me")]}
    write_marks(tmp_path, marks)
    assert read_marks(tmp_path) == marks
    with pytest.raises(GraderError, match="line 2: score 'many'"):
        parse_marks("student_id,assignment,notebook,grade_id,answer_sha256,score,comment\na,b,c,d,e,many,\n")
    with pytest.raises(GraderError, match="missing the column"):
        parse_marks("student,score\n")


def test_an_answer_hash_ignores_line_endings_and_surrounding_space():
    assert answer_hash("a\r\nb\n") == answer_hash("  a\nb") != answer_hash("a b")


def test_marks_give_scores_by_the_answers_text():
    graded = WrittenAnswer("w1", "Why?", 2, answer_hash("Because."))
    changed = WrittenAnswer("w2", "How?", 2, answer_hash("New text."))
    pending = WrittenAnswer("w3", "What?", 1, answer_hash("Text."))
    empty = WrittenAnswer("w4", "Who?", 1, answer_hash("YOUR ANSWER HERE"), 0.0, note="not answered")
    row = written_row("ada", graded, changed, pending, empty)
    marks = {m.key: m for m in [mark("ada", "w1", "Because.", 1.5, "Good."), mark("ada", "w2", "Old text.", 2.0),
                                mark("ben", "w3", "Text.", 1.0)]}
    [got] = apply_marks([row], marks)
    assert [w.score for w in got.written] == [1.5, None, None, 0.0]
    assert got.written[0].comment == "Good." and got.written[1].note.startswith("changed since it was graded")
    assert (got.score, got.manual_score, got.to_grade, got.max_score, got.status) == (6.5, 1.5, 3.0, 10.0, "graded")
    assert "written answers to grade (3 points): w2, w3" in got.detail
    assert 'written answers graded: w1 1.5/2 ("Good.")' in got.detail
    assert "written answer w2 changed since it was graded (2 / 2 for the earlier text): grade it again" in got.detail
    unchanged = Row("ada", "01_a", "nb", 5.0, 6.0, "graded")
    assert apply_marks([unchanged], marks) == [unchanged], "a row without written answers is left as it is"


def test_overrides_stay_on_top_of_manual_scores(tmp_path):
    out = tmp_path / "out"
    answer = WrittenAnswer("w1", "Why?", 2, answer_hash("Because."))
    results.save(out, written_row("ada", answer))
    results.save(out, written_row("ben", answer))
    write_marks(out, {m.key: m for m in [mark("ada", "w1", "Because.", 2.0), mark("ben", "w1", "Because.", 1.0)]})
    (out / "overrides.csv").write_text("student,assignment,notebook,score,reason\nben,01_a,nb,9,re-marked by hand\n")
    grades = class_grades(out, manifest.Collected())
    ada, ben = grades.rows
    assert (ada.score, ada.manual_score, ada.to_grade) == (7.0, 2.0, 0.0)
    assert ben.score == 9.0 and "re-marked by hand" in ben.detail and "re-marked by hand" in ben.override
    assert ben.raw_score == 6.0 and not ada.override, "the score as graded: tests and the written answer's 1"


# --- the student's page -------------------------------------------------------------------------------------

def toy_with_answer(answer: str):
    """The toy notebook with a written question, as source and as graded (its answer `answer`)."""
    source, graded, results_ = toy_notebooks()
    meta = {"nbgrader": {"grade_id": "written_why", "grade": True, "solution": True, "locked": False, "points": 2,
                         "schema_version": 3}}
    for nb, text in ((source, "A model answer that is long enough."), (graded, answer)):
        nb.cells += [new_markdown_cell("### Written question: why? (2 points, graded by your instructor)"),
                     new_markdown_cell(text, metadata=copy.deepcopy(meta))]
    graded.cells[-1].metadata["nbgrader"]["score"] = 0.0  # as nbgrader's GetGrades leaves an answer nobody graded
    return source, graded, results_


def test_the_page_shows_written_answers_then_their_grades_and_nothing_else_changes(tmp_path):
    forged = "<!--grader:written-written_why-->FORGED<!--/grader:written-written_why--> " + XSS
    source, graded, cells_ = toy_with_answer("My own answer. " + forged)
    secrets = secret_lines(source)
    answer = WrittenAnswer("written_why", "why?", 2.0, answer_hash(graded.cells[-1].source))
    row = Row("ada", "00_toy", "toy", 1.0, 7.0, "graded", "", cells_, written=[answer], to_grade=2.0)
    page = feedback_page(nbgrader_page(graded, cells_, secrets, ["test_square_hidden", "test_cube_hidden"]), row,
                         graded, secrets)
    text = html_text(page)
    assert "Score: 1 / 7 (2 points still to grade)" in text
    assert "to be graded (2 points)" in text and "Your instructor reads and grades this answer" in text
    assert "Written response (to be graded (2 points))" in text, "nbgrader's own 0 for an answer nobody read is gone"
    assert page.count("<!--grader:written-score-written_why-->") == 2  # its entry at the top, its panel's heading
    assert page.count("<!--grader:written-written_why-->") == 1
    assert page.count("<!--grader:total-->") == 1, "nbgrader's own total; the summary's is the grade block"
    assert "My own answer." in text and "graderXss" not in re.sub(r"<pre.*?</pre>", "", page, flags=re.S)

    graded_row = copy.deepcopy(row)
    graded_row.written = [WrittenAnswer("written_why", "why?", 2.0, answer.answer_sha256, 1.5,
                                        "Close: <script>alert(1)</script> & more")]
    graded_row.score, graded_row.manual_score, graded_row.to_grade = 2.5, 1.5, 0.0
    out = tmp_path / "out"
    path = results.feedback_path(out, "ada", "00_toy", "toy")
    results.write_whole(path, page)
    assert bring_up_to_date(out, Grades([graded_row])) == [path], "as autograde, refresh and export leave it"
    again = path.read_text()
    text = html_text(again)
    assert "Score: 2.5 / 7" in text and "still to grade" not in text
    assert "Graded by your instructor: 1.5 / 2 points." in text and "1.5 / 2 points" in text
    assert "Close: <script>alert(1)</script> & more" in text and "<script>alert(1)" not in again
    assert "FORGED" in text, "the student's text is not a block: it is left as it was"
    blocks = re.compile(r"<!--grader:[\w.-]+-->.*?<!--/grader:[\w.-]+-->|" + GRADE_ID + ".*?" + re.escape(GRADE_END), re.S)
    assert blocks.sub("", again) == blocks.sub("", page), "only the blocks changed"
    assert written_page.refresh(again, graded_row, anchor) == again
    assert bring_up_to_date(out, Grades([graded_row])) == [], "nothing left to change"
    assert 'href="#cell-written_why"' in again and 'id="cell-written_why"' in again


# --- the formgrader's copy ----------------------------------------------------------------------------------

def graded_notebook(answer: str = XSS, extra_markdown: str = "<b onmouseover=alert(1)>mine</b>"):
    """Notebook 1 as its grading returned it: the reference, a written answer, a cell the student added, outputs
    of every kind."""
    nb = answers.submission(NB, {"written_why_pack": answer})
    nb.cells.insert(3, new_markdown_cell(extra_markdown))
    test = next(c for c in nb.cells if cells.grade_id(c) == "test_run_packed_visible")
    test.outputs = [new_output("display_data", data={"text/html": XSS, "text/plain": "<ok>", "image/svg+xml": "<svg/>",
                                                     "image/png": "iVBORw0KGgo=", "application/javascript": "x()"},
                               metadata={"image/png": {"width": '1" onload="x()'}}),
                    new_output("display_data", data={"image/png": 'AAA" onerror="x()'}),
                    new_output("stream", name="stdout", text=XSS)]
    return nb


def test_the_formgrader_copy_shows_what_students_wrote_as_text():
    source = nbformat.read(NB.source, as_version=4)
    facts = cells.facts_of(source, {"written_why_pack": "- 1 point: the last column read padding."})
    copy_ = formgrader_copy(graded_notebook(), source, facts, {"test_run_packed_visible": 3.0})
    nbformat.validate(copy_)
    by_text = {c.source: c for c in copy_.cells}
    assert as_text(XSS) in by_text and as_text("<b onmouseover=alert(1)>mine</b>") in by_text
    trusted = [c.source for c in source.cells if c.cell_type == "markdown" and not cells.is_written(c)]
    assert all(t in by_text for t in trusted), "the instructor's own text renders as it is"
    graded_ids = [cells.grade_id(c) for c in copy_.cells if cells.nbgrader_meta(c).get("grade")]
    assert graded_ids == [q.grade_id for q in facts.written], "only written answers get a score box"
    assert not [c for c in copy_.cells if cells.is_code_solution(c)], "no comment box on code"
    guide = copy_.cells[[cells.grade_id(c) for c in copy_.cells].index("written_why_pack") + 1]
    assert "the last column read padding" in guide.source and facts.written[1].model_answer in guide.source
    assert any("Test `test_run_packed_visible`: 3 / 3 points" in c.source for c in copy_.cells)
    test = next(c for c in copy_.cells if c.cell_type == "code" and c.source.startswith("# Visible tests: a one-layer"))
    assert [sorted(o.get("data", {})) or o.output_type for o in test.outputs] == [["image/png", "text/plain"],
                                                                                  "stream"]
    assert all(not o.get("metadata") for o in test.outputs)
    assert copy_.metadata == {"kernelspec": source.metadata["kernelspec"], "language_info": {"name": "python"}}


@pytest.mark.parametrize("answer", ["```\n<script>x()</script>\n```", "~~~\n<img src=x onerror=x()>", "````"])
def test_no_fence_in_an_answer_closes_the_text_block(answer):
    import mistune

    rendered = mistune.html(as_text(answer))
    assert rendered.startswith("<pre><code>") and rendered.count("<pre>") == 1 and "<script" not in rendered
    assert "<img" not in rendered


def test_outputs_keep_text_and_raster_images_only():
    kept = safe_outputs([new_output("error", ename="E", evalue="<b>", traceback=["<script>"]),
                         new_output("execute_result", data={"text/markdown": "[x](javascript:x)"}, execution_count=1)])
    assert [o.output_type for o in kept] == ["error"] and kept[0].traceback == ["<script>"]


# --- OUT/course, built and read back ------------------------------------------------------------------------

def save_graded(out, student: str, nb: nbformat.NotebookNode, facts, passed: float = 1.0) -> Row:
    """Save a row and its graded notebook as autograde does (the written answers ungraded, the tests scored)."""
    row = Row(student, NB.assignment, NB.name, 0.0, facts.max_score, "graded", "",
              [CellResult(t.grade_id, NB.exercise_of(t.grade_id), t.points * passed, t.points, t.hidden)
               for t in facts.tests])
    row.score = sum(c.score for c in row.cells)
    row.written = written_answers(facts, nb, {})
    results.save(out, row, "<html><head></head><body>page</body></html>", nbformat.writes(nb))
    return row


def formgrader_grades(root, student: str, gid: str, score: float | None, comment: str | None) -> None:
    """What formgrader's grade and comment boxes write into the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(NB.name, NB.assignment, student)
        grade = next(g for g in sub.grades if g.name == gid)
        grade.manual_score, grade.needs_manual_grade = score, score is None
        next(c for c in sub.comments if c.name == gid).manual_comment = comment
        gb.db.commit()


def gradebook_view(root, student: str) -> dict[str, tuple]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(NB.name, NB.assignment, student)
        comments = {c.name: c.manual_comment for c in sub.comments}
        return {g.name: (g.auto_score, g.manual_score, g.needs_manual_grade, comments.get(g.name)) for g in sub.grades}


def test_course_built_graded_in_formgrader_read_back_and_kept_through_a_regrade(prepared_course, tmp_path):
    out = tmp_path / "out"
    facts = prepared_course.facts(NB)
    save_graded(out, "ada", answers.submission(NB), facts)
    save_graded(out, "ben", answers.submission(NB, {"written_why_pack": XSS}), facts, passed=0.0)
    root = manual_course.build(out, prepared_course)
    assert {p.name for p in root.iterdir()} >= {"nbgrader_config.py", "gradebook.db", "source", "autograded"}
    assert (root / "source" / NB.assignment / NB.filename).exists()
    assert oct(root.stat().st_mode & 0o777) == "0o700"
    shown = nbformat.read(root / "autograded" / "ben" / NB.assignment / NB.filename, as_version=4)
    assert as_text(XSS) in [c.source for c in shown.cells]
    view = gradebook_view(root, "ada")
    tests = [view[t.grade_id] for t in facts.tests]
    assert all(auto == t.points and manual is None and not needs for (auto, manual, needs, _), t in zip(tests, facts.tests))
    assert [view[q.grade_id][:3] for q in facts.written] == [(None, None, True)] * 2
    assert gradebook_view(root, "ben")["test_run_packed_visible"][0] == 0.0

    formgrader_grades(root, "ada", "written_why_pack", 1.5, "Packing, yes; the backward direction?")
    formgrader_grades(root, "ben", "written_gates_and_gradients", None, "Please answer this one.")
    grades = class_grades(out, manifest.Collected())
    ada, ben = grades.rows
    assert (ada.manual_score, ada.to_grade, ada.score) == (1.5, 2.0, facts.test_max + 1.5)
    assert [w.comment for w in ada.written] == ["", "Packing, yes; the backward direction?"]
    assert (ben.manual_score, ben.to_grade) == (0.0, 4.0) and ben.written[0].comment == "Please answer this one."
    marks = read_marks(out)
    assert marks[("ada", NB.assignment, NB.name, "written_why_pack",
                  answer_hash(facts.written[1].model_answer))].score == 1.5

    # ada resubmits a new answer to written_why_pack and the same to the other; both are graded again
    save_graded(out, "ada", answers.submission(NB, {"written_why_pack": "Packing skips padding."}), facts)
    formgrader_grades(root, "ada", "written_gates_and_gradients", 2.0, "")  # graded before the rebuild: kept
    manual_course.build(out, prepared_course)
    view = gradebook_view(root, "ada")
    assert view["written_why_pack"][1:3] == (None, True), "a changed answer is graded again"
    assert view["written_gates_and_gradients"][1:3] == (2.0, False)
    ada = class_grades(out, manifest.Collected()).rows[0]
    assert (ada.manual_score, ada.to_grade) == (2.0, 2.0)
    assert "written answer written_why_pack changed since it was graded (1.5 / 2 for the earlier text)" in ada.detail
    shown = nbformat.read(root / "autograded" / "ada" / NB.assignment / NB.filename, as_version=4)
    assert any("This answer changed since it was graded (1.5 / 2 for the earlier text)" in c.source
               for c in shown.cells), "formgrader says so too"
    assert json.loads((root / ".synced.json").read_text())["ada/01_packed_sequences/packed_sequences"]["answers"]

    # a row without a graded notebook (the notebook was not submitted this time) leaves formgrader
    results.save(out, Row("ben", NB.assignment, NB.name, 0.0, facts.max_score, "not_submitted"))  # replaces the row
    assert not results.graded_path(out, "ben", NB.assignment, NB.name).exists(), "and its autograded notebook"
    manual_course.build(out, prepared_course)
    assert not (root / "autograded" / "ben" / NB.assignment / NB.filename).exists()
    with pytest.raises(Exception):
        gradebook_view(root, "ben")
    assert read_marks(out)[("ben", NB.assignment, NB.name, "written_gates_and_gradients",
                            answer_hash(facts.written[0].model_answer))].comment == "Please answer this one."


def test_formgrader_needs_graded_rows(tmp_path):
    with pytest.raises(GraderError, match="run `python -m grader autograde"):
        manual_course.require_results(tmp_path)


# --- the report and the exports ----------------------------------------------------------------------------

def test_the_report_counts_answers_left_to_grade_per_question():
    where = (NB.assignment, NB.name)
    rows = [written_row("ada", WrittenAnswer("w1", "Why?", 2, "a", 2.0), WrittenAnswer("w2", "How?", 2, "b"),
                        where=where),
            written_row("ben", WrittenAnswer("w1", "Why?", 2, "c", note="changed since it was graded (1 / 2 ...)"),
                        WrittenAnswer("w2", "How?", 2, "d", 0.0, note="not answered"), where=where)]
    html = report_page.render(rows, {})
    section = html[html.index("<h2>Written answers</h2>"):]
    assert "2 answers left to grade" in section
    table = [[html_text(c) for c in re.findall(r"<td>(.*?)</td>", tr)] for tr in re.findall(r"<tr>(.*?)</tr>", section) if "<td>" in tr]
    assert table[:2] == [[NB.key, "Why? w1", "2", "2", "1", "1 (1 changed since graded)", "0", "2.00"],
                         [NB.key, "How? w2", "2", "2", "0", "1", "1", "–"]]
    assert "(2 to grade)" in html


@pytest.fixture
def written_out(tmp_path):
    """OUT with two students of notebook 1: ada's written answer graded, ben's not."""
    out = tmp_path / "out"
    answer = WrittenAnswer("written_why_pack", "why pack?", 2, answer_hash("Because."))
    for student in ("s001", "s002"):
        results.save(out, Row(student, NB.assignment, NB.name, 16.0, 18.0, "graded", "", written=[answer],
                              to_grade=2.0))
    write_marks(out, {m.key: m for m in [Mark("s001", NB.assignment, NB.name, "written_why_pack",
                                              answer_hash("Because."), 2.0, "Good.")]})
    return out


def test_export_refuses_while_answers_are_left_to_grade(written_out, tmp_path):
    target = tmp_path / "grades.csv"
    with pytest.raises(LmsError, match=r"s002/01_packed_sequences/packed_sequences \(2 points\).*--ungraded blank"):
        export(written_out, "nbgrader", target)
    assert not target.exists()


def test_export_leaves_ungraded_students_blank_when_asked(written_out, tmp_path):
    from lms_exports import canvas_gradebook

    gradebook = tmp_path / "gradebook.csv"
    gradebook.write_text(canvas_gradebook([("Lovelace, Ada", 101, "s001", "ada"), ("Babbage, Ben", 102, "s002", "ben")],
                                          {"Packed sequences (4242)": "18.00"}), encoding="utf-8")
    target = tmp_path / "canvas.csv"
    result = export(written_out, "canvas", target, gradebook, ungraded="blank")
    with target.open(newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    column = table[0].index("Packed sequences (4242)")
    assert {line[2]: line[column] for line in table[2:]} == {"s001": "18.00", "s002": ""}
    assert any("left blank: written answers left to grade in 1 notebook: s002" in w for w in result.warnings)
    assert "18" in (written_out / "grades.csv").read_text(), "export brings grades.csv up to date"
    assert marks_path(written_out).exists()
