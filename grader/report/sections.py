"""Sections of the class report that point the instructor somewhere: item analysis, exercises, similar
submissions, the run's settings. Each function turns plain results into an HTML fragment (every
student-written string escaped); grader/report/page.py places them.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from grader.report.items import LOW, MIN_STUDENTS, NotebookItems
from grader.report.similarity import MAX_DOCUMENT_CHARS, PAIR_THRESHOLD, REFERENCE_THRESHOLD, Match, Similarity

esc = html.escape

STYLE = """
tr.flag td { background: #fff4e5; }
.flag-word { color: #a35200; font-weight: bold; }
.notice { border-left: 4px solid #888; background: #f6f6f6; padding: 0.4em 0.8em; }
.pair { border: 1px solid #ccc; margin: 0.6em 0 1.2em; padding: 0.4em 0.8em; }
.side { display: grid; grid-template-columns: repeat(auto-fit, minmax(22em, 1fr)); gap: 0.6em; }
.side pre, pre.code { font-size: 0.8em; background: #fafafa; border: 1px solid #ddd; padding: 0.4em;
  max-height: 28em; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; margin: 0.2em 0;
  line-height: 1.45; }
mark { background: #ffe08a; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


def table(headers: list[str], body: list[list[str]], row_classes: list[str] | None = None) -> str:
    """An HTML table of cells given as HTML (a cell that is already a `<td ...>` keeps its attributes)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    rows = []
    for i, r in enumerate(body):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        rows.append(f"<tr{cls}>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in r) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def settings_html(settings: dict[str, str] | None) -> str:
    """The run's settings (timeout, sandbox, grader version, when) as a table; nothing when unknown."""
    if not settings:
        return ""
    return "<h2>Run settings</h2>" + table(["setting", "value"], [[esc(k), esc(str(v))] for k, v in settings.items()])


def items_html(analyses: list[NotebookItems]) -> str:
    """Per test cell: pass rate and discrimination, flagged cells marked; or why it is not shown."""
    parts = ["<h2>Item analysis</h2>",
             f"<p>Discrimination is the correlation, over the class, between passing a test cell and the score "
             f"on the rest of its notebook. Near 0 or negative (flagged below {LOW:g}): the test does not follow "
             f"the rest: read it, and its spec, before trusting it. Shown from {MIN_STUDENTS} notebooks that ran "
             f"(voided ones not counted).</p>"]
    if not analyses:
        return "".join(parts + ["<p>No rows.</p>"])
    for nb in analyses:
        parts.append(f"<h3>{esc(nb.notebook)}</h3>")
        if nb.absent:
            parts.append(f'<p class="notice">{esc(nb.absent)}</p>')
        elif nb.flagged:
            parts.append(f"<p>{len(nb.flagged)} flagged: " +
                         ", ".join(f"<code>{esc(i.grade_id)}</code>" for i in nb.flagged) + ".</p>")
        else:
            parts.append("<p>No test cell flagged.</p>")
        body, classes = [], []
        for i in nb.items:
            rate = f"{i.passed}/{i.students} ({100 * i.pass_rate:.0f}%)" if i.students else "–"
            if i.discrimination is None:
                disc = "–" if nb.absent else esc(i.note or "–")
            else:
                disc = f"{i.discrimination:+.2f}"
            flag = f'<span class="flag-word">{esc(i.flag)}</span>' if i.flag else ""
            body.append([f"<code>{esc(i.grade_id)}</code>", esc(i.exercise), "hidden" if i.hidden else "visible",
                         f'<td class="num">{i.points:g}</td>', rate, disc, flag])
            classes.append("flag" if i.flag else "")
        parts.append(table(["test cell", "exercise", "kind", "points", "passed", "discrimination", "flag"], body, classes))
    return "".join(parts)


def _distribution(distribution: dict[float, int]) -> str:
    """`0 pt: 8, 2 pt: 1`: how many students earned each number of points (none left out)."""
    return ", ".join(f"{points:g} pt: {count}" for points, count in distribution.items() if count)


def exercises_html(analyses: list[NotebookItems]) -> str:
    """Per exercise: points possible, mean, median and the distribution of points earned."""
    body = []
    for nb in analyses:
        for e in nb.exercises:
            body.append([esc(nb.notebook), esc(e.exercise), f'<td class="num">{e.points:g}</td>',
                         f'<td class="num">{e.students}</td>', f'<td class="num">{e.mean:.2f}</td>',
                         f'<td class="num">{e.median:g}</td>', esc(_distribution(e.distribution))])
    if not body:
        return "<h2>Exercises</h2><p>No notebook ran.</p>"
    return ("<h2>Exercises</h2><p>Points per exercise over the notebooks that ran (voided ones not counted); "
            "the distribution lists how many students earned each number of points (the figures above draw it).</p>" +
            table(["notebook", "exercise", "points", "students", "mean", "median", "distribution"], body))


def highlighted(code: str, spans: tuple[tuple[int, int], ...]) -> str:
    """`code`, escaped, with the `spans` (offsets) marked."""
    out, at = [], 0
    for start, end in sorted(spans):
        start, end = max(start, at), min(end, len(code))
        if start >= end:
            continue
        out += [esc(code[at:start]), "<mark>", esc(code[start:end]), "</mark>"]
        at = end
    out.append(esc(code[at:]))
    return "".join(out)


def _pair(m: Match) -> str:
    return (f'<div class="pair"><p><strong>{esc(m.first)}</strong> and <strong>{esc(m.second)}</strong>: '
            f"{100 * m.similarity:.0f}% similar ({100 * m.shares[0]:.0f}% of {esc(m.first)}'s own code, "
            f"{100 * m.shares[1]:.0f}% of {esc(m.second)}'s; shared code marked)</p>"
            f'<div class="side"><div><p>{esc(m.first)}</p><pre>{highlighted(m.code[0], m.spans[0])}</pre></div>'
            f'<div><p>{esc(m.second)}</p><pre>{highlighted(m.code[1], m.spans[1])}</pre></div></div></div>')


def similarity_html(found: dict[str, Similarity] | None) -> str:
    """Pairs of similar submissions, side by side, and submissions like the reference solution."""
    parts = ["<h2>Similar submissions</h2>",
             f"<p>Each student's answer cells of a notebook are compared as one (copydetect's winnowed "
             f"fingerprints, names and layout ignored). The released notebook's code and the reference "
             f"solution are left out of the comparison between students; listed: pairs sharing at least "
             f"{100 * PAIR_THRESHOLD:.0f}% of one's own code. For a person to judge: nothing here changes "
             f"a score.</p>"]
    if found is None:
        return "".join(parts + ['<p class="notice">Not computed for this report.</p>'])
    for key, sim in found.items():
        parts.append(f"<h3>{esc(key)}</h3>")
        if sim.error:
            parts.append(f'<p class="notice">Not compared: {esc(sim.error)}</p>')
            continue
        parts.append(f"<p>{sim.students} submissions with code of their own compared.</p>")
        if sim.cut:
            parts.append(f'<p class="notice">Only the first {MAX_DOCUMENT_CHARS:,} characters of code were compared for '
                         f'{esc(", ".join(sim.cut))}.</p>')
        if sim.pairs:
            parts += [_pair(m) for m in sim.pairs]
        else:
            parts.append("<p>No pair above the threshold.</p>")
        parts.append(f"<h4>Like the reference solution</h4><p>Students at least {100 * REFERENCE_THRESHOLD:.0f}% of "
                     f"whose code (released code left out) is the reference's: a leaked solution shows here.</p>")
        if sim.reference:
            for m in sim.reference:
                parts.append(f"<details><summary><strong>{esc(m.first)}</strong>: {100 * m.shares[0]:.0f}% of their code "
                             f"matches the reference</summary><pre class=\"code\">{highlighted(m.code[0], m.spans[0])}</pre>"
                             f"</details>")
        else:
            parts.append("<p>None.</p>")
    return "".join(parts)


def feedback_href(student: str, assignment: str, notebook: str) -> str:
    """The relative link from report.html to a student's feedback page."""
    return "feedback/" + "/".join(quote(p) for p in (student, assignment, f"{notebook}.html"))


def grader_version() -> str:
    """This package's version, as installed."""
    from grader import version

    return version()


def run_settings(timeout: int | None, sandbox: str, when=None, notebook_timeout: int | None = None,
                 where: str = "", confinement: str = "", kernel_start: str = "") -> dict[str, str]:
    """The settings a report shows for the run that wrote it (`when`: a datetime, default now); `timeout`
    None: each notebook's limits came from its reference (the report lists every assignment's limits, as its
    rows record them).

    `confinement` says how kernel process trees were bounded, `kernel_start` how student kernels started
    (the kernel package knows; pages do not import it).
    """
    from datetime import datetime

    when = when or datetime.now().astimezone()
    settings = {"per-cell timeout": f"{timeout} s" if timeout is not None else "from each notebook's reference"}
    if notebook_timeout:
        settings["notebook timeout"] = f"{notebook_timeout} s"
    settings["sandbox"] = sandbox
    settings["kernel process trees"] = confinement
    if kernel_start:
        settings["student kernels"] = kernel_start
    if where:
        settings["graded on"] = where
    settings.update({"grader version": grader_version(), "last graded": when.strftime("%Y-%m-%d %H:%M %Z").strip()})
    return settings
