"""The summary that opens a feedback page, built from hand-made graded notebooks (no kernel)."""

from __future__ import annotations

import re

from nbformat.v4 import new_code_cell, new_notebook, new_output
from sample_class import HIDDEN_LINE, LONG_WORD, feedback_page, secret_lines, toy_notebooks

from grader.course.hidden import html_text, leaks
from grader.pages import summary
from grader.results import CellResult


def built(status: str = "graded", detail: str = "", words: str = "", withhold: bool = False) -> tuple[str, frozenset]:
    source, graded, cells = toy_notebooks()
    secrets = secret_lines(source)
    fragment = summary.summary_html(graded, cells, status, detail, sum(c.score for c in cells),
                                    sum(c.max_score for c in cells), secrets, words, withhold)
    return fragment, secrets


def test_hidden_line_is_a_secret_of_the_toy_notebook():
    assert HIDDEN_LINE in secret_lines(toy_notebooks()[0])


def test_points_per_exercise_and_every_test_with_its_description():
    text = html_text(built()[0])
    assert text.startswith("Score: 1 / 5")
    assert "square1 / 3 points" in text.replace("\n", "") and "cube0 / 2 points" in text.replace("\n", "")
    for description in ["Visible tests: squares of small positive integers.",
                        "Hidden tests: negative numbers and zero, each on its own.",  # two comment lines, one line
                        "Visible tests: cube(2) is 8, quietly.", "Hidden tests: large inputs."]:
        assert description in text
    assert text.count("passed") == 1 and text.count("failed (0 /") == 3


def test_failures_show_their_last_line_scrubbed_and_never_hidden_source():
    fragment, secrets = built()
    text = html_text(fragment)
    assert "wrote to stderr: computing " + LONG_WORD[:100] in text
    assert leaks(text, secrets) == [] and "square(-3)" not in text
    assert "10**18" not in text and "BEGIN HIDDEN" not in text  # the other hidden test's source


def test_a_failed_hidden_test_says_what_was_checked_never_what_was_expected():
    """Its description and the kind of failure: a check that did not hold is a "wrong value", an error its type."""
    text = html_text(built()[0])
    assert "Hidden tests: negative numbers and zero, each on its own. test_square_hiddenwrong value" in text
    assert "Hidden tests: large inputs. test_cube_hiddenValueError" in text
    assert "the check failed at" not in text and "cube overflowed" not in text


def test_control_the_message_of_a_hidden_test_holds_its_expected_value():
    source, graded, _ = toy_notebooks()
    [cell] = [c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_cube_hidden"]
    assert "cube overflowed" in summary.failure_message(cell.outputs, frozenset())
    assert "cube overflowed" in summary.row_message(cell.outputs), "the row keeps it, for the instructor"


def test_one_error_is_shown_once_with_a_count():
    nb = new_notebook(cells=[new_code_cell("", metadata={"nbgrader": {"grade_id": f"t{i}", "grade": True, "points": 1}},
                                           outputs=[new_output("error", ename="CellNotRun", traceback=[],
                                                               evalue="not run: the kernel died in the test `t0`")])
                             for i in range(4)])
    text = html_text(summary.summary_html(nb, [CellResult(f"t{i}", "ex", 0.0, 1.0, i % 2 == 1) for i in range(4)],
                                          "kernel_died", "", 0, 4, frozenset()))
    assert text.count("did not run: the kernel died in the test `t0`") == 1
    assert "(and 3 more tests below)" in text and text.count("the same error as above") == 3
    assert "CellNotRun" not in text


def test_the_student_s_frames_count_as_their_error_not_a_wrong_value():
    error = new_output("error", ename="AssertionError", evalue="mine", traceback=[
        "Cell In[3], line 2 ...", summary.STUDENT_BLOCK + " (the test called your `f`):\n  the cell defining `f`, line 2", "AssertionError: mine"])
    assert summary.failure_kind([error]) == "AssertionError"
    assert summary.failure_kind([new_output("error", ename="AssertionError", evalue="x", traceback=[])]) == "wrong value"
    assert summary.failure_kind([new_output("error", ename="KeyboardInterrupt", evalue="", traceback=[])]).startswith("stopped")


def test_each_test_links_to_its_cell_and_each_exercise_to_the_answer():
    fragment, _ = built()
    links = re.findall(r'href="#([^"]+)"', fragment)
    assert links == ["cell-square", "cell-test_square_visible", "cell-test_square_hidden",
                     "cell-cube", "cell-test_cube_visible", "cell-test_cube_hidden"]


def test_status_in_words_when_not_graded():
    assert "Status" not in html_text(built()[0])
    text = html_text(built("timeout", "cell test_cube_hidden ran past 60 s and was interrupted",
                           "A cell ran past the time limit and was interrupted.")[0])
    assert "Status: timeout. A cell ran past the time limit and was interrupted.cell test_cube_hidden ran past 60 s" in text


def test_detail_is_escaped_and_scrubbed():
    text = built("tampered", f"<b>restored</b> {HIDDEN_LINE}")[0]
    assert "<b>restored</b>" not in text and "&lt;b&gt;restored&lt;/b&gt; [hidden]" in text


def test_withheld_outputs_show_no_message_and_no_points():
    fragment, _ = built("tampered", "cheating detected", "Your notebook ...", withhold=True)
    text = html_text(fragment)
    assert "Error" not in text and "stderr" not in text and "passed" not in text
    assert text.count("not counted") == 4 and "square0 / 3 points" in text.replace("\n", "")


def test_failure_message_choices():
    secrets = frozenset({"very_secret_check(model)"})
    error = new_output("error", ename="AssertionError", evalue="line one\n  line two very_secret_check(model)", traceback=[])
    assert summary.failure_message([error], secrets) == "AssertionError: line one line two [hidden]"
    assert summary.failure_message([new_output("error", ename="KeyboardInterrupt", evalue="", traceback=[])], secrets) == (
        "stopped: it ran past the time limit")
    stderr = new_output("stream", name="stderr", text="warning\nlast words\n\n")
    assert summary.failure_message([stderr], secrets) == "wrote to stderr: last words"
    assert summary.failure_message([new_output("execute_result", data={"text/plain": "0.5"}, execution_count=1)], secrets) == "partial credit"
    assert summary.failure_message([], secrets).startswith("no error message")
    long = summary.failure_message([new_output("error", ename="E", evalue="y" * 1000, traceback=[])], secrets)
    assert len(long) == summary.MESSAGE_CHARS and long.endswith("…")


def test_description_only_from_outside_the_hidden_region():
    assert summary.description("# Checks a thing.\n### BEGIN HIDDEN TESTS\n# secret comment\nassert x\n### END HIDDEN TESTS") == "Checks a thing."
    assert summary.description("### BEGIN HIDDEN TESTS\n# secret comment\n### END HIDDEN TESTS") == ""
    assert summary.description("x = 1  # not a description") == ""
    nb = new_notebook(cells=[new_code_cell("assert True", metadata={"nbgrader": {"grade_id": "t", "grade": True, "points": 1}})])
    [line] = summary.verdicts(nb, [CellResult("t", "ex", 1.0, 1.0, False)], frozenset())
    assert line.description == "t" and line.passed and line.message == ""  # no comment: the grade id


def test_a_test_cell_missing_from_the_notebook():
    nb = new_notebook(cells=[])
    [line] = summary.verdicts(nb, [CellResult("t", "ex", 0.0, 1.0, True)], frozenset())
    assert not line.passed and "missing" in line.message


def test_insert_summary_goes_first_with_anchors_and_viewport():
    page, info = feedback_page()
    body = page[page.find(">", page.find("<body")) + 1:]
    assert body.startswith(f'<section id="{summary.SUMMARY_ID}"')
    assert '<meta name="viewport"' in page
    for gid in ["square", "test_square_visible", "test_square_hidden", "cube", "test_cube_visible", "test_cube_hidden"]:
        assert page.count(f'id="cell-{gid}"') == 1, gid
    assert leaks(html_text(page), info["secrets"]) == []


def test_anchor_ids_are_safe():
    assert summary.anchor("test a<b>") == "cell-test_a_b_"
    page = summary.add_anchors('<a name="t1"></a><a name="comment-s1"></a>', ["t1", "s1", "absent"])
    assert page == '<a name="t1" id="cell-t1"></a><a name="comment-s1" id="cell-s1"></a>'


def test_a_status_said_of_many_cells_is_said_once():
    detail = ("the test `t1` ran longer than 60 s and was stopped: the code of yours it called did not return in time; "
              "the test `t2` ran longer than 60 s and was stopped: the code of yours it called did not return in time; "
              "the notebook ran past its 300 s limit before a given cell after the one defining `f`; "
              "the cells from there on did not run")
    assert summary.said_once(detail) == (
        "the tests `t1` and `t2` ran longer than 60 s and were stopped: the code of yours it called did not return in "
        "time; the notebook ran past its 300 s limit before a given cell after the one defining `f`; the cells from "
        "there on did not run")
    assert summary.said_once("the kernel died while running the test `t`") == "the kernel died while running the test `t`"


GONE = "the student's kernel stopped answering (it died or was stopped)"  # the relay's word (grader/bridge/relay.py)
GONE_WORDS = "could not finish: your code's kernel stopped answering the test"


def gone_page(in_words: bool = True) -> str:
    """The toy's page where a visible and a hidden test each made a call that found no student side answering."""
    error = new_output("error", ename="StudentSideGone", evalue=GONE, traceback=[
        "Cell In[5], line 2\n----> 2 assert cube(2) == 8", "grader_bridge:1040, in TrustedSide.call", f"StudentSideGone: {GONE}"])
    return feedback_page("kernel_died", outputs={"test_cube_visible": [error], "test_cube_hidden": [error]},
                         in_words=in_words)[0]


def test_a_call_no_student_side_answered_is_said_in_words_never_as_the_student_s_error():
    text = html_text(gone_page())
    assert f"This cell {GONE_WORDS}" in text, "the visible test's output"
    assert text.count(GONE_WORDS) == 3, "the visible test's output and summary line, the hidden test's kind"
    assert "(and 1 more test below)" in text and "the same error as above" in text
    assert "StudentSideGone" not in text and "grader_bridge" not in text and "Where your code failed" not in text


def test_control_without_the_grader_s_words_the_relay_s_case_reads_as_machinery():
    text = html_text(gone_page(in_words=False))
    assert "StudentSideGone" in text and "grader_bridge" in text and f"This cell {GONE_WORDS}" not in text


def test_the_page_opens_with_the_grade_the_lms_gets_and_only_that_block_is_rewritten():
    """A real feedback page (nbgrader's, with the summary): its grade block states the exported grade, and
    rewriting it for an override and a late penalty leaves every other byte of the page as it was."""
    import dataclasses

    page, made = feedback_page()
    assert summary.grade_block_text(page) == "Score: 1 / 5"
    row = dataclasses.replace(made["row"], score=4.0, raw_score=1.0, override="score set to 4 by the instructor: typo",
                              late_penalty=0.8, late_note="submitted 2 days late; 10% off per started day late, "
                                                           "at most 100%, so 20% off")
    again = summary.refresh_grade(page, row)
    assert summary.grade_block_text(again).splitlines() == [
        "Score: 3.2 / 5", "Autograded: 1 / 5.", "Score set to 4 by the instructor: typo.",
        "Late penalty: -0.8 (submitted 2 days late; 10% off per started day late, at most 100%, so 20% off)."]
    start = page.index(f'<div id="{summary.GRADE_ID}"')
    assert again[:start] == page[:start]
    assert again[again.index(summary.GRADE_END):] == page[page.index(summary.GRADE_END):]
    assert summary.refresh_grade(again, made["row"]) == page, "and back: nothing else moved"
    assert summary.refresh_grade("<html><body>an older page</body></html>", row) is None


def test_a_student_cannot_plant_a_grade_block_that_refreshing_rewrites():
    """The grader's block comes before anything of the student's: a look-alike in their markdown stays theirs."""
    page, made = feedback_page()
    at = page.rindex("</body>")
    planted = page[:at] + f'<div id="{summary.GRADE_ID}"><h2>Score: 5 / 5</h2></div>{summary.GRADE_END}' + page[at:]
    again = summary.refresh_grade(planted, made["row"])
    assert again.count("Score: 5 / 5") == 1 and summary.grade_block_text(again) == "Score: 1 / 5"
