"""The summary that opens a student's feedback page: per exercise, the points, every test with pass or
fail, what it checks and, for a failure, the error's last line; each test links to its cell below.

`summary_html` builds it from the graded notebook (nbgrader's autograded copy: test cells carry their
outputs and nbgrader metadata) and the row's per-cell scores; `insert_summary` puts it at the top of
nbgrader's feedback page, adds a stable anchor (`id="cell-<grade id>"`) to each graded cell there, and
makes the page fit a phone's width. Both are pure: strings and notebooks in, strings out.

The grade itself opens the summary in a block of its own (`grade_block`): the score the LMS gets and,
when it is not simply the autograder's, how it was reached (the score as graded, an instructor's override
and its reason, a late penalty with its rule and the days charged, a scaling to the LMS's points). The
same sentences (`standing`) are Moodle's feedback comment. When an override or a late policy changes
after grading, `refresh_grade` rewrites that block of an existing page and nothing else: the student's
code and outputs are never rendered again.

A test's description is its leading comment (the line(s) the released notebook shows, hidden tests
included), taken only from outside the hidden-test region; every message shown is scrubbed of secret
lines (grader/course/hidden.py), so no hidden test's source reaches the page. A failed hidden test says
what was checked (its description) and the kind of failure (the exception's type, or "wrong value" for
a check that did not hold), never its message: a message may carry an expected value. A cell that did
not run, ran out of time or lost its kernel says so in words, and one error is shown once, with a count.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import quote

import nbformat

from grader.course.cells import description, grade_id, is_solution
from grader.course.hidden import readable, scrub
from grader.pages import written as written_answers
from grader.results import CellResult, WrittenAnswer

MESSAGE_CHARS = 300  # a longer error message is cut: the full traceback is in the cell below
ROW_MESSAGE_CHARS = 4000  # of a failure's message kept in the row, for the instructor
# The first words of the student's frames in a test's traceback (grader/bridge/protocol.py's STUDENT_BLOCK,
# kept in step by tests/test_bridge.py): what a hidden test's failure may show besides its kind.
STUDENT_BLOCK = "Where your code failed"
WRONG_VALUE = "wrong value"
# Errors the grader gives a cell that did not run to its end, as a student reads them: each finishes both
# "This cell ..." (the cell's output on the page) and a failed test's line in the summary.
NOT_RUN_WORDS = {
    "CellNotRun": "did not run",
    "CellTimeoutError": "stopped: it ran past the time limit",
    "KeyboardInterrupt": "stopped: it ran past the time limit",
    "DeadKernelError": "lost its kernel: the kernel died while running this cell (out of memory, or the process ended)",
    "TestKernelFailed": "could not finish: the grader's own test kernel failed here (an instructor will look at it)",
    # The relay's word (grader/bridge/protocol.py): the test's call found no student side answering.
    "StudentSideGone": "could not finish: your code's kernel stopped answering the test (it died, or was stopped "
                       "at the time limit)",
}
ANCHOR = "cell-"
SUMMARY_ID = "grader-summary"
GRADE_ID = "grader-grade"
GRADE_END = "<!--/grader-grade-->"  # closes the grade block: what `refresh_grade` replaces ends here

STYLE = f"""
#{SUMMARY_ID} {{ font-family: system-ui, sans-serif; font-size: 15px; line-height: 1.4; color: #222;
  border: 2px solid #888; border-radius: 6px; background: #f8f8f8; margin: 0.6em; padding: 0.6em 0.8em;
  max-width: 60em; box-sizing: border-box; overflow-wrap: anywhere; word-break: break-word; }}
#{SUMMARY_ID} h2 {{ font-size: 1.25em; margin: 0.2em 0 0.4em; }}
#{GRADE_ID} p {{ margin: 0.15em 0; }}
#{SUMMARY_ID} h3 {{ font-size: 1.05em; margin: 0.9em 0 0.3em; display: flex; flex-wrap: wrap; gap: 0 0.6em; }}
#{SUMMARY_ID} h3 .points {{ font-weight: normal; color: #444; }}
#{SUMMARY_ID} ul {{ list-style: none; margin: 0; padding: 0; }}
#{SUMMARY_ID} li {{ margin: 0.3em 0; padding: 0.3em 0.5em; border-left: 4px solid #bbb; background: #fff; }}
#{SUMMARY_ID} li.pass {{ border-left-color: #2a7d2a; }}
#{SUMMARY_ID} li.fail {{ border-left-color: #c0392b; }}
#{SUMMARY_ID} .verdict {{ font-weight: bold; margin-right: 0.4em; }}
#{SUMMARY_ID} li.pass .verdict {{ color: #1f6b1f; }}
#{SUMMARY_ID} li.fail .verdict {{ color: #a32a1e; }}
#{SUMMARY_ID} .gid {{ color: #666; font-size: 0.85em; }}
#{SUMMARY_ID} .message {{ display: block; margin-top: 0.2em; font-family: ui-monospace, monospace; font-size: 0.9em;
  white-space: pre-wrap; background: #fdf1f0; padding: 0.2em 0.4em; }}
#{SUMMARY_ID} .message.same {{ background: #f3f3f3; color: #555; font-family: inherit; }}
#{SUMMARY_ID} .count {{ color: #555; font-family: system-ui, sans-serif; }}
#{SUMMARY_ID} .status {{ border: 1px solid #c0392b; background: #fdf1f0; padding: 0.4em 0.6em; }}
#{SUMMARY_ID} a {{ color: #0b5394; }}
"""
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


@dataclass(frozen=True)
class Verdict:
    """One test cell as the summary shows it."""

    grade_id: str
    exercise: str
    description: str
    score: float
    points: float
    passed: bool
    message: str  # for a failure: why, in one line (scrubbed); "" otherwise


def anchor(grade_id: str) -> str:
    """The id the summary links to for a graded cell."""
    return ANCHOR + re.sub(r"[^A-Za-z0-9_.-]", "_", grade_id)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def not_run_words(ename: str, evalue: str) -> str | None:
    """A cell that did not run to its end, in words (None for an ordinary error)."""
    words = NOT_RUN_WORDS.get(ename)
    if words is None:
        return None
    if ename == "CellNotRun" and evalue:
        return "did not run: " + evalue.removeprefix("not run: ")
    return words


def failure_kind(outputs: list) -> str:
    """What a failed hidden test may say: the exception's type (or, for a check that did not hold, "wrong
    value"), or that it did not run; never its message."""
    for output in outputs:
        if output.get("output_type") == "error":
            ename = str(output.get("ename", "Error"))
            words = not_run_words(ename, str(output.get("evalue", "")) if ename == "CellNotRun" else "")
            if words is not None:
                return words
            theirs = any(str(entry).startswith(STUDENT_BLOCK) for entry in output.get("traceback", []))
            return WRONG_VALUE if ename == "AssertionError" and not theirs else ename
    if any(o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outputs):
        return "wrote to stderr"
    return "no error message: the cell did not run to the end (see the status above)"


def row_message(outputs: list) -> str:
    """A failed test's whole message, for the row and the instructor: `Type: message` of its error, else
    what it last wrote to stderr; bounded."""
    for output in outputs:
        if output.get("output_type") == "error":
            ename, evalue = str(output.get("ename", "Error")), readable(str(output.get("evalue", "")))
            text = f"{ename}: {evalue}" if evalue else ename
            return text if len(text) <= ROW_MESSAGE_CHARS else text[: ROW_MESSAGE_CHARS - 1] + "…"
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            return "wrote to stderr: " + readable(str(output.get("text", "")))[-ROW_MESSAGE_CHARS:]
    return ""


def failure_message(outputs: list, secrets: frozenset[str]) -> str:
    """Why a test cell failed, from its outputs: the error's last line (`Type: message`) or, for a cell that
    did not run to its end, why in words; else the last line it wrote to stderr, else that it produced
    nothing; scrubbed of secret lines."""
    for output in outputs:
        if output.get("output_type") == "error":
            ename, evalue = output.get("ename", "Error"), output.get("evalue", "")
            words = not_run_words(ename, evalue)
            if words is not None:
                return _one_line(scrub(words, secrets))
            return _one_line(scrub(f"{ename}: {evalue}" if evalue else ename, secrets))
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            lines = [line for line in scrub(output.get("text", ""), secrets).splitlines() if line.strip()]
            if lines:
                return _one_line("wrote to stderr: " + lines[-1])
    for output in outputs:
        if output.get("output_type") == "execute_result":
            return "partial credit"
    return "no error message: the cell did not run to the end (see the status above)"


def verdicts(nb: nbformat.NotebookNode, cells: list[CellResult], secrets: frozenset[str],
               withhold: bool = False) -> list[Verdict]:
    """Every test of the row, in notebook order, with its description and, for a failure, its message."""
    graded = {grade_id(cell): cell for cell in nb.cells if grade_id(cell)}
    found = []
    for result in cells:
        cell = graded.get(result.grade_id)
        text = scrub(description(cell.source), secrets) if cell is not None else ""
        passed = result.score >= result.max_score
        message = ""
        if not passed and not withhold:
            if cell is None:
                message = "this test cell is missing from the notebook"
            elif result.hidden:
                message = scrub(failure_kind(cell.get("outputs", [])), secrets)
            else:
                message = failure_message(cell.get("outputs", []), secrets)
        found.append(Verdict(result.grade_id, result.exercise, text or result.grade_id, result.score,
                              result.max_score, passed, message))
    return found


NAMED = re.compile(r"`[^`]+`")


def said_once(detail: str) -> str:
    """A row's detail with sentences that differ only in the cell they name said once, naming them all:
    "the tests `a` and `b` ran longer than ..." for four sentences of one kind."""
    groups: dict[str, list[str]] = {}
    for sentence in (part.strip() for part in detail.split("; ")):
        names = NAMED.findall(sentence)
        key = NAMED.sub("`*`", sentence, count=1) if names else sentence
        groups.setdefault(key, []).append(names[0] if names else "")
    said = []
    for key, names in groups.items():
        if len(names) == 1 or not names[0]:
            said.append(key.replace("`*`", names[0], 1) if names[0] else key)
            continue
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
        plural = re.sub(r"\bthe (test|cell)\b `\*`", lambda m: f"the {m.group(1)}s {listed}", key, count=1)
        said.append(plural.replace(" was ", " were ", 1) if plural != key else key.replace("`*`", listed, 1))
    return "; ".join(said)


def _points(x: float) -> str:
    return f"{x:g}"


def standing(row) -> list[str]:
    """The row's grade in sentences, first `Score: final / max` (with the points of written answers still to
    grade); then, when the grade is not simply the autograder's, the score as graded, the override and its
    reason, the late penalty with its rule and days, the LMS's points. `row` is a results.Row as the class's grades build it (lms/grades.py)."""
    lines = [f"Score: {written_answers.total(row.final_score, row.max_score, row.to_grade)}"]
    scaled = row.lms_points is not None and bool(row.assignment_max)
    if row.override or row.late_note or scaled:
        lines.append(f"Autograded: {_points(row.graded_score)} / {_points(row.max_score)}.")
    if row.override:
        lines.append(row.override[0].upper() + row.override[1:] + ".")
    if row.late_note:
        lines.append(f"Late penalty: -{_points(row.late_penalty)} ({row.late_note}).")
    if scaled:
        share = round(row.lms_points * row.max_score / row.assignment_max, 2)
        lines.append(f"In the LMS: {_points(row.lms_score)} / {_points(share)} "
                     f"(scaled from {_points(row.max_score)} points).")
    return lines


def grade_block(row) -> str:
    """The grade as an HTML block (see `standing`), closed by GRADE_END so that it can be replaced alone."""
    lines = standing(row)
    rest = "".join(f'<p class="standing">{html.escape(line)}</p>' for line in lines[1:])
    return f'<div id="{GRADE_ID}"><h2>{html.escape(lines[0])}</h2>{rest}</div>{GRADE_END}'


def grade_block_text(page: str) -> str | None:
    """The grade block's sentences as plain text, one per line (None when the page has none)."""
    start = page.find(f'<div id="{GRADE_ID}"')
    end = page.find(GRADE_END, start)
    if start < 0 or end < 0:
        return None
    found = re.findall(r"<(?:h2|p)[^>]*>(.*?)</(?:h2|p)>", page[start:end], re.S)
    return "\n".join(html.unescape(text) for text in found)


def refresh_grade(page: str, row) -> str | None:
    """`page` with its grade block rewritten for `row` and every other byte unchanged; None when the page
    has no grade block (written by an older grader: grade that notebook again to give it one).

    The block comes before anything of the student's in the page, so the first one found is the grader's."""
    start = page.find(f'<div id="{GRADE_ID}"')
    end = page.find(GRADE_END, start)
    if start < 0 or end < 0:
        return None
    return page[:start] + grade_block(row) + page[end + len(GRADE_END):]


def summary_html(nb: nbformat.NotebookNode, cells: list[CellResult], status: str, detail: str,
                 score: float, max_score: float, secrets: frozenset[str], status_words: str = "",
                 withhold: bool = False, grade: str = "", written: list[WrittenAnswer] = ()) -> str:
    """The summary as an HTML fragment (its own styles included), for the top of the feedback page.

    `status_words` is the student's wording of a status that is not `graded`; `withhold` (cheating
    detected) shows no messages and counts no points; `grade` is the grade block (`grade_block`) that
    opens it, else a plain score line. `written` answers get a section of their own, in a block that a
    person's grading rewrites (pages/written.py).
    """
    esc = html.escape
    solution_ids = {grade_id(c) for c in nb.cells if is_solution(c) and grade_id(c)}
    parts = [f'<section id="{SUMMARY_ID}" aria-label="Your result"><style>{STYLE}</style>',
             grade or f"<h2>Score: {_points(score)} / {_points(max_score)}</h2>"]
    if status != "graded":
        said = f"<br>{esc(scrub(said_once(detail), secrets))}" if detail else ""
        parts.append(f'<p class="status"><strong>Status: {esc(status)}.</strong> {esc(status_words)}{said}</p>')
    lines = verdicts(nb, cells, secrets, withhold)
    counts = Counter(t.message for t in lines if t.message and t.message != WRONG_VALUE)
    shown: set[str] = set()
    for exercise in dict.fromkeys(t.exercise for t in lines):
        mine = [t for t in lines if t.exercise == exercise]
        earned = 0.0 if withhold else sum(t.score for t in mine)
        possible = sum(t.points for t in mine)
        title = esc(exercise)
        if exercise in solution_ids:
            title = f'<a href="#{quote(anchor(exercise))}">{title}</a>'
        parts.append(f'<h3><span>{title}</span><span class="points">{_points(earned)} / {_points(possible)} points</span></h3><ul>')
        for t in mine:
            verdict = "not counted" if withhold else "passed" if t.passed else "failed"
            kind = "" if withhold else "pass" if t.passed else "fail"
            points = f" ({_points(t.score)} / {_points(t.points)})" if not t.passed and not withhold else ""
            message = ""
            if t.message and t.message in shown and t.message != WRONG_VALUE:
                message = '<span class="message same">the same error as above</span>'
            elif t.message:
                shown.add(t.message)
                more = 0 if t.message == WRONG_VALUE else counts[t.message] - 1
                also = f' <span class="count">(and {more} more test{"s" if more > 1 else ""} below)</span>' if more else ""
                message = f'<span class="message">{esc(t.message)}{also}</span>'
            parts.append(f'<li class="{kind}"><span class="verdict">{verdict}{points}</span>'
                         f'<a href="#{quote(anchor(t.grade_id))}">{esc(t.description)}</a> '
                         f'<span class="gid">{esc(t.grade_id)}</span>{message}</li>')
        parts.append("</ul>")
    if written:
        parts.append(written_answers.block("written", written_answers.summary_section(written, anchor)))
    parts.append("</section>")
    return "".join(parts)


def add_anchors(page: str, grade_ids: list[str]) -> str:
    """Give each graded cell of nbgrader's feedback page a stable id (`cell-<grade id>`) to link to.

    nbgrader marks a graded cell with `<a name="<grade id>"></a>` (`comment-<grade id>` for an answer
    cell); the id goes on that element, or, where it is absent, nowhere (the link then does nothing).
    """
    for gid in grade_ids:
        target = f' id="{html.escape(anchor(gid))}"'
        for name in (gid, f"comment-{gid}"):
            marker = f'<a name="{html.escape(name)}"></a>'
            if marker in page:
                page = page.replace(marker, f'<a name="{html.escape(name)}"{target}></a>', 1)
                break
    return page


def insert_summary(page: str, fragment: str, grade_ids: list[str] = ()) -> str:
    """`page` with `fragment` first in its body, stable anchors on its graded cells and a viewport that
    fits a phone."""
    if "<body" in page:
        at = page.find(">", page.find("<body")) + 1
    else:
        at = 0
    page = page[:at] + fragment + page[at:]
    if 'name="viewport"' not in page and "<head>" in page:
        page = page.replace("<head>", "<head>" + VIEWPORT, 1)
    return add_anchors(page, list(grade_ids))


def cell_ids(nb: nbformat.NotebookNode) -> list[str]:
    """The grade ids of every nbgrader cell of `nb` (tests and answers), in notebook order."""
    return [grade_id(c) for c in nb.cells if grade_id(c)]


def summarised(page: str, nb: nbformat.NotebookNode, row, secrets: frozenset[str], status_words: str = "",
               withhold: bool = False) -> str:
    """nbgrader's feedback `page` for `row` (a results.Row), opened by its summary: what the grader calls."""
    fragment = summary_html(nb, row.cells, row.status, row.detail, row.score, row.max_score, secrets,
                            status_words, withhold, grade_block(row), row.written)
    return insert_summary(page, fragment, cell_ids(nb))
