"""Per-student feedback: nbgrader's own HTML, with every hidden test scrubbed out of it.

Stock `generate_feedback` renders the autograded notebook as is, hidden tests included (nbgrader
issues #917, #1363), and even with `ClearHiddenTests` a failed hidden test's traceback repeats its
source. Here a hidden test cell shows only its points and, when it failed, the kind of failure (the
error's type, or "wrong value") and the frames of the student's own code it failed in: never its
message, which may hold an expected value. Every other output is scrubbed of secret lines, and kept
only in plain text and raster images (an HTML or SVG output could carry text that scrubbing cannot
see); a cell that did not run, ran out of time or lost its kernel says so in a sentence.
"""

from __future__ import annotations

import html
import re

from jinja2 import BytecodeCache
from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_output
from traitlets import Bool, Float, List, Unicode

from grader.course.cells import is_written
from grader.course.hidden import readable, scrub
from grader.pages import written
from grader.pages.safepage import CUT_TEXT, LATE_TEXT, PageBudget, clean, put_math, safe, take_math
from grader.pages.summary import STUDENT_BLOCK, failure_kind, not_run_words
from grader.results import Row
from grader.statuses import status

KEPT_MIME = ("text/plain", "image/png", "image/jpeg")
BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


class ScrubHidden(Preprocessor):
    """Remove hidden-test source and anything that could repeat it from a graded notebook; show written answers as
    the text the student typed."""

    enabled = True
    lines = List(Unicode(), help="Secret lines to remove from every output").tag(config=True)
    hidden_cells = List(Unicode(), help="Grade ids of the cells that hold hidden tests").tag(config=True)
    withhold_outputs = Bool(False, help="Show no output at all (cheating was detected)").tag(config=True)
    in_words = Bool(True, help="Say in a sentence why a cell did not run to its end (False only for the tests' "
                               "controls)").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if is_written(cell):  # the student's prose, shown as they typed it
            cell.source = written.as_text(cell.source)
        if cell.cell_type != "code":
            return cell, resources
        secrets = frozenset(self.lines)
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if self.withhold_outputs:
            cell.outputs = []
        elif gid in self.hidden_cells:
            cell.outputs = [self._summary(o, secrets) for o in cell.outputs if o.output_type == "error"][:1]
        else:
            cell.outputs = [o for o in (self._clean(o, secrets) for o in cell.outputs) if o is not None]
        return cell, resources

    def _summary(self, output, secrets):
        """A failed hidden test: the frames of the student's code it failed in, if it failed there, and the
        kind of failure; never the test's own frames or its message."""
        kind = scrub(failure_kind([output]), secrets)
        theirs = [scrub(entry, secrets) for entry in output.get("traceback", [])
                  if readable(str(entry)).startswith(STUDENT_BLOCK)]
        return new_output("error", ename=scrub(str(output.get("ename", "Error")), secrets), evalue="",
                          traceback=theirs + [f"Failed: {kind}"])

    def _clean(self, output, secrets):
        kind = output.output_type
        if kind == "stream":
            output.text = scrub(output.text, secrets)
        elif kind == "error":
            ename = str(output.get("ename", ""))
            words = not_run_words(ename, output.get("evalue", "")) if self.in_words else None
            output.evalue = scrub(output.evalue, secrets)
            output.traceback = [scrub(line, secrets) for line in output.traceback]
            if words is not None:  # where the code was when it was stopped is worth seeing; the exception's name is not
                frames = [e for e in output.traceback if not _names_the_exception(e, ename)] if ename == "KeyboardInterrupt" else []
                output.traceback = [scrub(f"This cell {words}.", secrets)] + frames
        elif kind in ("execute_result", "display_data"):
            data = {k: v for k, v in output.get("data", {}).items() if k in KEPT_MIME
                    and (k == "text/plain" or (isinstance(v, str) and BASE64.fullmatch(v)))}
            if not data:
                return None
            if "text/plain" in data:
                data["text/plain"] = scrub(data["text/plain"], secrets)
            output.data = data
            output.metadata = {k: {d: v for d, v in m.items() if d in ("width", "height") and type(v) is int}
                               for k, m in output.get("metadata", {}).items() if k in data and isinstance(m, dict)}
        return output


def _names_the_exception(entry: str, ename: str) -> bool:
    """A traceback entry that is its header or its last line (the exception's name), not a frame."""
    text = readable(str(entry)).strip()
    return "Traceback (most recent call last)" in text or text.startswith(ename) or not text.strip("-")


class _SharedBytecode(BytecodeCache):
    """Compiled templates kept for the life of the process: every feedback page uses the same ones."""

    store: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.store:
            bucket.bytecode_from_string(self.store[bucket.key])

    def dump_bytecode(self, bucket):
        self.store[bucket.key] = bucket.bytecode_to_string()


class FeedbackExporter(HTMLExporter):
    """nbgrader's feedback exporter, made safe, bounded and cheaper.

    Safe: every piece of markdown is rendered, its maths put in as MathML, then cleaned by the allow-list
    (safepage.clean), and the page runs no script (safepage.safe). Bounded: what the notebook's cells can
    add to the page is capped (safepage.PageBudget: maths spans, text, images, and the seconds spent
    rendering), and the page says when it was shortened. Cheaper: templates compiled once per process,
    not per page, and no second parse of the page (HTMLExporter re-parses every page with BeautifulSoup
    to add accessibility attributes to the markup of JupyterLab's template; nbgrader's feedback template
    has none of it, and the parse costs as much as the rendering; `feedback_page` gives images their alt
    text instead).
    """

    sanitize_html = Bool(True, help="Clean markdown with the allow-list (False only for the tests' controls)").tag(config=True)
    exclude_anchor_links = Bool(True).tag(config=True)
    page_seconds = Float(10.0, help="Seconds of rendering a page may take before the rest is left out").tag(config=True)

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = _SharedBytecode()
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        from jinja2 import pass_context
        from nbconvert.exporters.templateexporter import TemplateExporter
        from nbconvert.filters.ansi import ansi2html
        from nbconvert.filters.highlight import Highlight2HTML
        from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

        budget = PageBudget(seconds=self.page_seconds)
        within_budget(nb, budget)
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        highlight = Highlight2HTML(pygments_lexer=lexer, parent=self)
        markdown = super().markdown2html

        @pass_context
        def safe_markdown(context, source):
            if not budget.in_time():
                return html.escape(LATE_TEXT)
            found: dict[str, str] = {}
            rendered = put_math(markdown(context, take_math(source, found, budget)), found)
            return clean(rendered) if self.sanitize_html else rendered

        def timed_highlight(source, *args, **kwargs):
            return highlight(source, *args, **kwargs) if budget.in_time() else html.escape(LATE_TEXT)

        def timed_ansi(text, *args, **kwargs):
            return ansi2html(text, *args, **kwargs) if budget.in_time() else html.escape(LATE_TEXT)

        self.register_filter("highlight_code", timed_highlight)
        self.register_filter("markdown2html", safe_markdown)
        self.register_filter("ansi2html", timed_ansi)
        # nbconvert's own clean_html (bleach, deprecated) would escape MathML: raw cells and anything else the
        # template cleans go through the same allow-list as markdown
        self.register_filter("clean_html", clean if self.sanitize_html else (lambda text: text))
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type",
                             WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        page = safe(page)
        head = page.find("</head>")
        page = page[:head] + FIT_WIDTH + page[head:] if head != -1 else FIT_WIDTH + page
        note = budget.note_html()
        if note:
            at = page.find(">", page.find("<body")) + 1 if "<body" in page else 0
            page = page[:at] + note + page[at:]
        resources["shortened"] = list(budget.cut)
        return page, resources


def within_budget(nb, budget: PageBudget) -> None:
    """Cut what the notebook's cells would add to the page past the budget of text and images, in order; past
    it, cells that nbgrader does not grade are left out altogether (each would still cost a rendering)."""
    kept_cells = []
    for cell in nb.cells:
        if budget.text_bytes <= 0 and not cell.get("metadata", {}).get("nbgrader"):
            continue
        kept_cells.append(cell)
        cell.source = _cut(cell.get("source", ""), budget)
        kept = []
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream":
                output.text = _cut(output.get("text", ""), budget)
            elif kind == "error":
                output.traceback = [_cut(line, budget) for line in output.get("traceback", [])]
            elif kind in ("execute_result", "display_data"):
                data = output.get("data", {})
                if "text/plain" in data:
                    data["text/plain"] = _cut(data["text/plain"], budget)
                for mime in [m for m in data if m.startswith("image/")]:
                    if not budget.take_image(len(data[mime])):
                        del data[mime]
                if not data:
                    continue
            kept.append(output)
        if "outputs" in cell:
            cell.outputs = kept
    nb.cells = kept_cells


def _cut(text, budget: PageBudget) -> str:
    text = text if isinstance(text, str) else "".join(text)
    allowed = budget.take_text(len(text))
    return text if allowed == len(text) else text[:allowed] + CUT_TEXT


def banner(row: Row) -> str:
    """A short HTML notice of the grade (the grade block, summary.py) and of anything unusual about it."""
    from grader.pages.summary import STYLE, grade_block

    lines = [f'<section id="grader-summary"><style>{STYLE}</style>{grade_block(row)}'
             f"(status: <code>{html.escape(row.status)}</code>)</section>"]
    if status(row.status).student:
        lines.append(html.escape(status(row.status).student))
    if row.detail:
        lines.append(html.escape(row.detail))
    body = "<br>".join(lines)
    return (f'<div id="grader-notice" style="border:2px solid #888;padding:0.8em;margin:1em;'
            f'font-family:sans-serif;background:#f6f6f6">{body}</div>')


# The page fits its window at any width, from a phone's 390 px up: boxes shrink to it, long lines wrap, and a
# thing that cannot wrap (a wide table, a long formula) scrolls inside its own box, never the page.
FIT_WIDTH = """<style id="grader-fit-width">
.container, #notebook-container, div#notebook, .panel, .panel-body, div.cell, div.inner_cell, div.input,
div.output_wrapper, div.output, div.output_area, div.output_subarea, div.text_cell_render, div.input_area {
  width: auto !important; max-width: 100% !important; min-width: 0 !important; box-sizing: border-box; }
.container { padding-left: 6px; padding-right: 6px; }
div.prompt { min-width: 0 !important; width: auto; padding-right: 0.3em; }
@media (max-width: 700px) { div.prompt { display: none; } div.cell, div.inner_cell, div.output_area { display: block; } }
pre, code, .highlight pre, div.output_area pre, div.output_subarea pre { white-space: pre-wrap !important;
  overflow-wrap: anywhere; word-break: break-word; }
.rendered_html, div.text_cell_render, .panel-heading, #toc { overflow-wrap: anywhere; word-break: break-word; }
.rendered_html table, .rendered_html p, .rendered_html li, math[display="block"] { display: block; max-width: 100%;
  overflow-x: auto; }
.rendered_html table { width: max-content; }
img, svg, video { max-width: 100% !important; height: auto; }
</style>"""


def feedback_page(page: str, row: Row, graded=None, secrets: frozenset[str] = frozenset(),
                  withhold: bool = False) -> str:
    """nbgrader's feedback page (as FeedbackExporter built it: clean, bounded, fitting its window), opened by the summary of the `graded` notebook
    (summary.py: per exercise, every test with its verdict and message) or, without it, by the notice."""
    from grader.pages.summary import anchor, summarised

    page = written.defuse(page)
    at = page.find(">", page.find("<body")) + 1 if "<body" in page else 0
    page = page[:at] + ("" if graded is not None else banner(row)) + page[at:]
    page = page.replace("<img src=", '<img alt="a figure the notebook drew" src=')
    if graded is not None:
        page = summarised(page, graded, row, secrets, status(row.status).student, withhold)
    return written.mark(page, row, anchor)


def notice_page(title: str, row: Row) -> str:
    """A feedback page for a row that has no graded notebook to show."""
    return safe(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                f"<body><h1>{html.escape(title)}</h1>{banner(row)}</body></html>")


def error_page(title: str, row: Row) -> str:
    """The neutral page a student sees when the grader itself failed: no traceback, no internals."""
    neutral = Row(row.student_id, row.assignment, row.notebook, row.score, row.max_score, row.status, "")
    return notice_page(title, neutral)
