"""Per-student feedback: nbgrader's own HTML, with every hidden test scrubbed out of it.

Stock `generate_feedback` renders the autograded notebook as is, hidden tests included (nbgrader
issues #917, #1363), and even with `ClearHiddenTests` a failed hidden test's traceback repeats its
source. Here a hidden test cell shows only its points and, when it failed, the error's type and
message; every other output is scrubbed of secret lines, and kept only in plain text and raster
images (an HTML or SVG output could carry text that scrubbing cannot see).
"""

from __future__ import annotations

import html

from jinja2 import BytecodeCache
from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_output
from traitlets import Bool, List, Unicode

from grader.course.cells import is_written
from grader.course.hidden import scrub
from grader.pages import written
from grader.pages.safepage import put_math, safe, take_math
from grader.results import Row
from grader.statuses import status

KEPT_MIME = ("text/plain", "image/png", "image/jpeg")


class ScrubHidden(Preprocessor):
    """Remove hidden-test source and anything that could repeat it from a graded notebook; show written answers as
    the text the student typed."""

    enabled = True
    lines = List(Unicode(), help="Secret lines to remove from every output").tag(config=True)
    hidden_cells = List(Unicode(), help="Grade ids of the cells that hold hidden tests").tag(config=True)
    withhold_outputs = Bool(False, help="Show no output at all (cheating was detected)").tag(config=True)

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
        """A failed hidden test, as its error type and message only."""
        message = scrub(f"{output.ename}: {output.evalue}", secrets)
        return new_output("error", ename=output.ename, evalue=scrub(output.evalue, secrets), traceback=[message])

    def _clean(self, output, secrets):
        kind = output.output_type
        if kind == "stream":
            output.text = scrub(output.text, secrets)
        elif kind == "error":
            output.evalue = scrub(output.evalue, secrets)
            output.traceback = [scrub(line, secrets) for line in output.traceback]
        elif kind in ("execute_result", "display_data"):
            data = {k: v for k, v in output.get("data", {}).items() if k in KEPT_MIME}
            if not data:
                return None
            if "text/plain" in data:
                data["text/plain"] = scrub(data["text/plain"], secrets)
            output.data = data
        return output


class _SharedBytecode(BytecodeCache):
    """Compiled templates kept for the life of the process: every feedback page uses the same ones."""

    store: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.store:
            bucket.bytecode_from_string(self.store[bucket.key])

    def dump_bytecode(self, bucket):
        self.store[bucket.key] = bucket.bytecode_to_string()


class FeedbackExporter(HTMLExporter):
    """nbgrader's feedback exporter, made safe and cheaper.

    Safe: student markdown is sanitised, maths is rendered to MathML when the page is built, and the page
    runs no script (safepage.py). Cheaper: templates compiled once per process, not per page, and no
    second parse of the page (HTMLExporter re-parses every page with BeautifulSoup to add accessibility
    attributes to the markup of JupyterLab's template; nbgrader's feedback template has none of it, and
    the parse costs as much as the rendering; `feedback_page` gives images their alt text instead).
    """

    sanitize_html = Bool(True).tag(config=True)

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = _SharedBytecode()
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        from nbconvert.exporters.templateexporter import TemplateExporter
        from nbconvert.filters.highlight import Highlight2HTML
        from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        self.register_filter("highlight_code", self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type",
                             WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        found: dict[str, str] = {}
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = take_math(cell.source, found)
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        return safe(put_math(page, found)), resources


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


WRAP_OUTPUTS = "<style>.output_area pre, .output_subarea pre { white-space: pre-wrap; }</style>"


def feedback_page(page: str, row: Row, graded=None, secrets: frozenset[str] = frozenset(),
                  withhold: bool = False) -> str:
    """nbgrader's feedback page, long output lines wrapped, opened by the summary of the `graded` notebook
    (summary.py: per exercise, every test with its verdict and message) or, without it, by the notice."""
    from grader.pages.summary import anchor, summarised

    page = written.defuse(page)
    at = page.find(">", page.find("<body")) + 1 if "<body" in page else 0
    page = page[:at] + WRAP_OUTPUTS + ("" if graded is not None else banner(row)) + page[at:]
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
