"""Written answers on the student's page: the points and the grader's comment beside each answer, a section
of the summary, and nbgrader's own total; each in a marked block that `refresh` rewrites from the row alone (the
summary's grade block, summary.grade_block, says the points still to grade).

The page is built while grading, before anyone has read the answers: its blocks then say "to be graded".
When a person has graded them (formgrader, grader/manual/), `refresh` replaces the content of each block,
and nothing else: the student's own content is never rendered again. A block is
`<!--grader:NAME-->...<!--/grader:NAME-->`; a student cannot forge one: nbgrader's page is `defuse`d before
any block is put in, so every block on a page is the grader's. A written answer is shown as the student
typed it, as text (`as_text`): it is prose for a person to read, and no markup in it runs anywhere.
"""

from __future__ import annotations

import html
import re
from typing import Callable, Iterable
from urllib.parse import quote

from grader.results import Row, WrittenAnswer

_BLOCK = re.compile(r"<!--grader:(?P<name>[\w.-]+)-->.*?<!--/grader:(?P=name)-->", re.S)
STYLE = """
.grader-written { margin: 0.3em 0 0.5em; padding: 0.4em 0.6em; border-left: 4px solid #888; background: #f6f6f6;
  font-family: system-ui, sans-serif; font-size: 14px; }
.grader-written.graded { border-left-color: #2a7d2a; }
.grader-written .comment, #grader-summary .comment { display: block; margin-top: 0.2em; white-space: pre-wrap; }
"""


def as_text(text: str) -> str:
    """Markdown that shows `text` literally: a fenced block longer than any run of backticks in it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def defuse(page: str) -> str:
    """`page` (nbgrader's, before the grader adds anything) with every block marker made inert: a student's
    markdown cannot forge a block that `refresh` would rewrite."""
    return page.replace("<!--grader:", "<!--grader-inert:").replace("<!--/grader:", "<!--/grader-inert:")


def block(name: str, content: str) -> str:
    """`content` in a block that `refresh` can find and rewrite."""
    return f"<!--grader:{name}-->{content}<!--/grader:{name}-->"


def refresh_blocks(page: str, blocks: dict[str, str]) -> str:
    """`page` with the content of each named block replaced (blocks it does not name are kept)."""

    def swap(match: re.Match) -> str:
        name = match.group("name")
        return block(name, blocks[name]) if name in blocks else match.group(0)

    return _BLOCK.sub(swap, page)


def _points(x: float) -> str:
    return f"{x:g}"


def total(score: float, max_score: float, to_grade: float) -> str:
    """`15 / 17 (2 points still to grade)`."""
    pending = f" ({_points(to_grade)} point{'s' if to_grade != 1 else ''} still to grade)" if to_grade else ""
    return f"{_points(score)} / {_points(max_score)}{pending}"


def verdict(answer: WrittenAnswer) -> str:
    """What an answer got, in a few words: `1.5 / 2 points`, `to be graded (2 points)`, `not answered: 0 / 2`."""
    if answer.score is None:
        return f"to be graded ({_points(answer.points)} points)"
    got = f"{_points(answer.score)} / {_points(answer.points)} points"
    return f"{answer.note}: {got}" if answer.note in ("not answered", "the answer cell was deleted") else got


def _comment(answer: WrittenAnswer) -> str:
    return f'<span class="comment">{html.escape(answer.comment)}</span>' if answer.comment else ""


def beside(answer: WrittenAnswer) -> str:
    """The box shown with the answer itself: who grades it, the points, the comment."""
    graded = answer.score is not None
    head = (f"Graded by your instructor: {html.escape(verdict(answer))}." if graded
            else f"Your instructor reads and grades this answer ({_points(answer.points)} points); "
                 f"the points and any comment will appear here.")
    return f'<div class="grader-written{" graded" if graded else ""}"><strong>{head}</strong>{_comment(answer)}</div>'


def summary_section(written: Iterable[WrittenAnswer], anchor: Callable[[str], str] = str) -> str:
    """The summary's section on written answers, each linking to its answer (`anchor`: a grade id's element id)."""
    written = list(written)
    if not written:
        return ""
    earned = sum(w.score or 0.0 for w in written)
    possible = sum(w.points for w in written)
    parts = [f'<h3><span>Written answers</span><span class="points">{_points(earned)} / {_points(possible)} points'
             f'</span></h3><ul>']
    for w in written:
        kind = "" if w.score is None else "pass" if w.score >= w.points else "fail"
        parts.append(f'<li class="{kind}"><span class="verdict">{html.escape(verdict(w))}</span>'
                     f'<a href="#{html.escape(quote(anchor(w.grade_id)))}">{html.escape(w.question)}</a> '
                     f'<span class="gid">{html.escape(w.grade_id)}</span>{_comment(w)}</li>')
    parts.append("</ul>")
    return "".join(parts)


def blocks_of(row: Row, anchor: Callable[[str], str] = str) -> dict[str, str]:
    """Every block a page of `row` has, by name, as the row now says."""
    found = {"total": total(row.final_score, row.max_score, row.to_grade),
             "written": summary_section(row.written, anchor)}
    for w in row.written:
        found[f"written-score-{w.grade_id}"] = html.escape(verdict(w))
        found[f"written-{w.grade_id}"] = beside(w)
    return found


def mark(page: str, row: Row, anchor: Callable[[str], str] = str) -> str:
    """nbgrader's feedback `page` with its score texts for the written answers, and its total, turned into blocks
    (its own say 0 for an answer nobody has read yet), and a box beside each answer."""
    if not row.written:
        return page
    blocks = blocks_of(row, anchor)
    page = re.sub(r"(<h4>[^<]*\(Score: )[^)<]*(\)</h4>)", lambda m: m.group(1) + block("total", blocks["total"]) +
                  m.group(2), page, count=1)
    for w in row.written:
        gid = re.escape(w.grade_id)
        score = block(f"written-score-{w.grade_id}", blocks[f"written-score-{w.grade_id}"])
        page = re.sub(rf'(<li><a href="#{gid}">Written response</a> )\(Score: [^)<]*\)',
                      lambda m: m.group(1) + f"({score})", page, count=1)
        page = re.sub(rf'(<a name="{gid}"[^>]*></a><div class="panel-heading"><span class="nbgrader-label">[^<]*'
                      rf'</span><span class="pull-right">)\s*Score: [^<]*(<a href="#top">\(Top\)</a>\s*</span></div>)',
                      lambda m: m.group(1) + score + " " + m.group(2) +
                      block(f"written-{w.grade_id}", blocks[f"written-{w.grade_id}"]), page, count=1)
    return page.replace("</head>", f"<style>{STYLE}</style></head>", 1)


def refresh(page: str, row: Row, anchor: Callable[[str], str] = str) -> str:
    """A page built for `row` with its written answers' points and comments, and its totals, as `row` now says."""
    return refresh_blocks(page, blocks_of(row, anchor))
