"""The class report: OUT/report.html, self-contained, for the instructor."""

from __future__ import annotations

import base64
import html
import io
from collections import Counter, defaultdict
from pathlib import Path

from grader.course import layout
from grader.pages.safepage import safe
from grader.report import items, sections
from grader.results import Row
from grader.statuses import STATUSES, report_css


def _figure_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def score_histograms(rows: list[Row]) -> str | None:
    """One panel per notebook (total) and per exercise: how the class scored, as an embedded PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels: dict[str, tuple[list[float], float]] = {}
    for notebook in layout.SERIES:
        nb_rows = [r for r in rows if r.assignment == notebook.assignment and r.notebook == notebook.name]
        if not nb_rows:
            continue
        panels[f"{notebook.key} (total)"] = ([r.score for r in nb_rows], nb_rows[0].max_score)
        for exercise in dict.fromkeys(c.exercise for r in nb_rows for c in r.cells):
            scores, best = [], 0.0
            for r in nb_rows:
                cells = [c for c in r.cells if c.exercise == exercise]
                best = max(best, sum(c.max_score for c in cells))
                scores.append(0.0 if r.status in {"tampered"} and r.score == 0 else sum(c.score for c in cells))
            if best:
                panels[f"{notebook.key}: {exercise}"] = (scores, best)
    if not panels:
        return None
    cols = 3
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 2.8 * nrows), squeeze=False)
    for ax, (title, (scores, best)) in zip(axes.flat, panels.items()):
        bins = [x - 0.5 for x in range(int(best) + 2)] if best <= 20 else 20
        ax.hist(scores, bins=bins, color="tab:blue", edgecolor="white")
        ax.set(title=title, xlabel=f"score (max {best:g})", ylabel="students", xlim=(-0.7, best + 0.7))
        ax.title.set_fontsize(9)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    src = _figure_png(fig)
    plt.close(fig)
    return src


FAILURES_SHOWN = 3  # the most common failure messages listed per test cell


def pass_rates(rows: list[Row]) -> list[list[str]]:
    """Per test cell: how many graded notebooks passed it and why the others failed (the most common messages,
    whole, hidden tests included: the report is the instructor's), most often failed first."""
    stats: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    why: dict[tuple[str, str], Counter] = defaultdict(Counter)
    meta = {}
    for r in rows:
        for c in r.cells:
            key = (f"{r.assignment}/{r.notebook}", c.grade_id)
            stats[key][0] += c.score >= c.max_score
            stats[key][1] += 1
            meta[key] = c
            if c.score < c.max_score and c.message:
                why[key][c.message] += 1
    body = []
    for key, (passed, n) in sorted(stats.items(), key=lambda kv: (kv[1][0] / kv[1][1], kv[0])):
        c = meta[key]
        failures = "".join(f'<div class="why">{count}&times; <code>{html.escape(message)}</code></div>'
                           for message, count in why[key].most_common(FAILURES_SHOWN))
        body.append([html.escape(key[0]), f"<code>{html.escape(c.grade_id)}</code>", html.escape(c.exercise),
                     "hidden" if c.hidden else "visible", f"{c.max_score:g}", f"{passed}/{n} ({100 * passed / n:.0f}%)",
                     failures])
    return body


def roster(rows: list[Row], linked: set[tuple[str, str, str]] | None = None) -> tuple[list[str], list[list[str]]]:
    """Who submitted which notebook: one line per student, one column per notebook; a cell links to the
    student's feedback page when (student, assignment, notebook) is in `linked`."""
    keys = [notebook.key for notebook in layout.SERIES if any(r.assignment == notebook.assignment for r in rows)]
    by_student: dict[str, dict[str, Row]] = defaultdict(dict)
    for r in rows:
        by_student[r.student_id][f"{r.assignment}/{r.notebook}"] = r
    body = []
    for student, cells in sorted(by_student.items()):
        line = [html.escape(student)]
        for k in keys:
            r = cells.get(k)
            pending = f" ({r.to_grade:g} to grade)" if r is not None and r.to_grade else ""
            text = "" if r is None else f'<span class="s-{r.status}">{r.score:g}/{r.max_score:g} {html.escape(r.status)}{pending}</span>'
            if r is not None and linked and (r.student_id, r.assignment, r.notebook) in linked:
                text = f'<a href="{html.escape(sections.feedback_href(r.student_id, r.assignment, r.notebook))}">{text}</a>'
            line.append(text)
        body.append(line)
    return ["student"] + keys, body


def written_answers(rows: list[Row]) -> list[list[str]]:
    """Per written question: how many answers there are, graded, left to grade (changed ones among them), left
    unanswered, and the mean score of those graded."""
    stats: dict[tuple[str, str], dict] = {}
    for r in rows:
        for w in r.written:
            s = stats.setdefault((f"{r.assignment}/{r.notebook}", w.grade_id),
                                 {"question": w.question, "points": w.points, "n": 0, "graded": [], "to_grade": 0,
                                  "changed": 0, "unanswered": 0})
            s["n"] += 1
            if w.score is None:
                s["to_grade"] += 1
                s["changed"] += w.note.startswith("changed")
            elif w.note:
                s["unanswered"] += 1
            else:
                s["graded"].append(w.score)
    body = []
    for (notebook, gid), s in stats.items():
        mean = f"{sum(s['graded']) / len(s['graded']):.2f}" if s["graded"] else "–"
        left = f"<strong>{s['to_grade']}</strong>" if s["to_grade"] else "0"
        changed = f" ({s['changed']} changed since graded)" if s["changed"] else ""
        body.append([html.escape(notebook), f"{html.escape(s['question'])} <code>{html.escape(gid)}</code>",
                     f"{s['points']:g}", str(s["n"]), str(len(s["graded"])), left + changed, str(s["unanswered"]),
                     mean])
    return body


def written_html(rows: list[Row]) -> str:
    """The report's section on written answers: what is left to grade, per question."""
    body = written_answers(rows)
    if not body:
        return ""
    left = sum(1 for r in rows for w in r.written if w.score is None)
    return ("<h2>Written answers</h2>" +
            (f"<p><strong>{left} answer{'s' if left != 1 else ''} left to grade</strong>: open them with "
             f"<code>python -m grader formgrader OUT</code>.</p>" if left else "<p>Every answer is graded.</p>") +
            sections.table(["notebook", "question", "points", "answers", "graded", "left to grade", "not answered",
                            "mean of graded"], body))


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.warning { border: 2px solid #c00; background: #fee; padding: 0.8em; }
.why code { white-space: pre-wrap; overflow-wrap: anywhere; }
""" + report_css() + sections.STYLE


def render(rows: list[Row], unplaced: dict[str, list[str]], warning: str | None = None,
           settings: dict[str, str] | None = None, similarity: dict | None = None,
           linked: set[tuple[str, str, str]] | None = None) -> str:
    """The whole report as one HTML page, images embedded: `settings` are the run's (timeout, sandbox,
    grader version, when), `similarity` is similarity.of_submissions' result, `linked` the rows whose
    feedback page exists."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Class report</title><style>{STYLE}</style></head><body>",
             "<h1>Class report</h1>"]
    if warning:
        parts.append(f'<p class="warning">{html.escape(warning)}</p>')
    students = sorted({r.student_id for r in rows})
    counts = defaultdict(int)
    for r in rows:
        counts[r.status] += 1
    parts.append(f"<p>{len(students)} students, {len(rows)} rows: " +
                 ", ".join(f"{n} {html.escape(s)}" for s, n in sorted(counts.items())) + ".</p>")
    parts.append(sections.settings_html(settings))
    plot = score_histograms(rows)
    if plot:
        parts += ["<h2>Score distributions</h2>", f'<img alt="score histograms per notebook and exercise" src="{plot}">']
    parts += ["<h2>Pass rate per test cell</h2>", "<p>Most often failed first.</p>",
              sections.table(["notebook", "test cell", "exercise", "kind", "points", "passed", "most common failures"],
                             pass_rates(rows))]
    analyses = items.analyse(rows)
    parts += [sections.items_html(analyses), sections.exercises_html(analyses), written_html(rows)]
    headers, body = roster(rows, linked)
    parts += ["<h2>Roster</h2>", "<p>Each score links to the student's feedback page.</p>" if linked else "",
              sections.table(headers, body)]
    unusual = [r for r in rows if STATUSES[r.status].needs_look]
    parts += ["<h2>Rows that need a look</h2>",
              sections.table(["student", "notebook", "status", "score", "detail"],
                     [[html.escape(r.student_id), html.escape(f"{r.assignment}/{r.notebook}"),
                       f'<span class="s-{r.status}">{html.escape(r.status)}</span>', f"{r.score:g}/{r.max_score:g}",
                       html.escape(r.detail)] for r in unusual]) if unusual else "<p>None: every notebook ran to the end.</p>"]
    parts += ["<h2>Unplaced files</h2>",
              sections.table(["student", "files that match no notebook"],
                     [[html.escape(s), html.escape(", ".join(f))] for s, f in unplaced.items()]) if unplaced else "<p>None.</p>"]
    parts.append(sections.similarity_html(similarity))
    parts += ["<h2>Statuses</h2>", sections.table(["status", "meaning", "score"],
                                                  [[f"<code>{s.name}</code>", html.escape(s.meaning), html.escape(s.score)]
                                                   for s in STATUSES.values()])]
    parts.append("</body></html>")
    return "\n".join(parts)


def write(out: Path, rows: list[Row], unplaced: dict[str, list[str]], warning: str | None = None,
          settings: dict[str, str] | None = None, similarity: dict | None = None) -> Path:
    from grader.results import feedback_path, write_whole

    linked = {(r.student_id, r.assignment, r.notebook) for r in rows
              if feedback_path(out, r.student_id, r.assignment, r.notebook).exists()}
    path = out / "report.html"
    write_whole(path, safe(render(rows, unplaced, warning, settings, similarity, linked)))
    return path
