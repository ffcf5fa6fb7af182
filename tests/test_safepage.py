"""Feedback pages are safe to open: student markup is sanitised, no script runs, maths renders offline."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.course.hidden import html_text
from grader.pages import safepage
from grader.pages.feedback import FeedbackExporter
from grader.pages.safepage import CSP_META, put_math, safe, take_math

HOSTILE_MARKDOWN = """# My answer
<script>window.__pwned = 1</script>
<img src=x onerror="window.__pwned = 2">
<a href="javascript:window.__pwned = 3">click</a>
<iframe src="https://example.com"></iframe>
The gate: $h_t = \\tanh(W x_t + U h_{t-1} + b)$ and
$$c_t = f_t \\odot c_{t-1} + i_t \\odot g_t$$
"""


def hostile_notebook() -> nbformat.NotebookNode:
    code = new_code_cell("print('<script>window.__pwned = 4</script>')")
    code.outputs = [new_output("stream", name="stdout", text="<script>window.__pwned = 4</script>\n")]
    return new_notebook(cells=[new_markdown_cell(HOSTILE_MARKDOWN), code])


def render(nb) -> str:
    page, _ = FeedbackExporter(template_name="classic").from_notebook_node(nb)
    return page


def test_student_markup_is_inert_and_maths_is_mathml():
    page = render(hostile_notebook())
    assert not re.search(r"(?i)<script", page)
    assert not re.search(r"(?i)<[^>]*\bon\w+\s*=", page), "no event handler attribute in any tag"
    assert not re.search(r"(?i)href\s*=\s*[\"']?javascript:", page)
    assert not re.search(r"(?i)<iframe", page)
    assert page.count("<math") == 2 and 'display="block"' in page
    assert page.index(CSP_META) < page.index("<title") or CSP_META in page[: page.index("</head>")]


def test_control_without_the_sanitiser_the_script_is_in_the_page():
    page, _ = FeedbackExporter(template_name="classic", sanitize_html=False).from_notebook_node(hostile_notebook())
    assert 'onerror="window.__pwned = 2"' in page


def test_math_tokens_cannot_be_guessed_and_dollars_in_prices_stay():
    found: dict[str, str] = {}
    text = take_math("costs $5 and $10, while $x^2$ is maths", found)
    assert len(found) == 1 and "costs $5 and $10" in text
    again: dict[str, str] = {}
    take_math("$x^2$", again)
    assert set(found).isdisjoint(again), "a fresh token every page"
    assert "<math" in put_math(text, found)


def test_safe_adds_the_policy_first_and_removes_scripts():
    page = safe("<html><head><title>t</title><script src='https://cdn/mathjax.js'></script></head><body>x</body></html>")
    assert page.startswith("<html><head>" + CSP_META) and "<script" not in page


# --- what a student can write, and what reaches the page -------------------------------------------
# Each payload is markdown a student puts in their notebook, with what it would do on the page. The maths one
# rides in `\text{}` (latex2mathml copies it unescaped; `/` separates the attributes where a space would not
# survive the conversion).
FIXED = "position:fixed;top:0;left:0;width:100%;height:100%;background:#fff;z-index:99999"
PAYLOADS = {
    "meta_refresh": '<meta http-equiv="refresh" content="0;url=about:blank#pwned">',
    "overlay": f'<div style="{FIXED}">Score: 16 / 16</div>',
    "onerror": '<img src="x" onerror="document.title = \'pwned\'">',
    "iframe": '<iframe srcdoc="&lt;b&gt;framed&lt;/b&gt;"></iframe>',
    "maths_text": ('The formula $\\text{<meta/http-equiv="refresh"/content="0;url=about:blank#pwned">'
                   f'<div/style="{FIXED}">Score:16/16</div>}}$ says it all.'),
}
MARKUP = re.compile(r"(?i)<meta[^>]*refresh|position:\s*fixed|\bon\w+\s*=|<iframe|<object|<embed|<base\b|<form|<link\b|"
                    r"javascript:|<script")


def page_with(markdown: str, sanitize: bool = True) -> str:
    from sample_class import feedback_page

    return feedback_page(markdown=markdown, sanitize=sanitize)[0]


def student_part(page: str) -> str:
    """The page without what the grader itself writes there (its head: styles, policy)."""
    return page[page.index("<body"):]


@pytest.mark.parametrize("name", PAYLOADS)
def test_student_markup_never_reaches_the_page(name):
    assert not MARKUP.search(student_part(page_with(PAYLOADS[name])))


@pytest.mark.parametrize("name", PAYLOADS)
def test_control_without_the_allow_list_the_markup_is_in_the_page(name):
    assert MARKUP.search(student_part(page_with(PAYLOADS[name], sanitize=False)))


@pytest.mark.parametrize("markdown", [
    "[x](javascript:alert(1)) [y](https://evil.example/track) ![z](https://evil.example/pixel.png)",
    "<form action=https://evil.example><input name=p></form><base href=https://evil.example/>",
    "<object data=x></object><embed src=x><link rel=stylesheet href=https://evil.example/s.css>",
    "<p style='color:red' class='navbar-fixed-top' id='grader-summary'>mine</p>",
    "$\\style{position:fixed;top:0}{x} \\href{javascript:alert(1)}{y} \\class{navbar-fixed-top}{z} \\hspace{9999em}$",
    "<svg><script>alert(1)</script></svg><math><mtext><iframe src=x></iframe></mtext></math>",
])
def test_no_handler_frame_form_link_style_class_id_or_remote_url(markdown):
    part = student_part(page_with(markdown))
    assert not MARKUP.search(part)
    assert "evil.example" not in part and "9999em" not in part
    assert not re.search(r'(?i)<[a-z]+[^>]*\s(style|class|id)=[^>]*>(mine|<mi>[xyz])', part)


def test_a_raw_cell_goes_through_the_same_allow_list():
    from nbformat.v4 import new_raw_cell

    from sample_class import feedback_page

    raw = new_raw_cell(PAYLOADS["meta_refresh"] + PAYLOADS["overlay"], metadata={"raw_mimetype": "text/html"})
    assert not MARKUP.search(student_part(feedback_page(extra_cells=[raw])[0]))


def test_outputs_are_text_and_images_only():
    from nbformat.v4 import new_code_cell, new_output

    from sample_class import feedback_page

    cell = new_code_cell("show()", outputs=[
        new_output("display_data", data={"text/html": PAYLOADS["overlay"], "image/svg+xml": "<svg onload=alert(1)/>",
                                         "text/plain": "<b>plain</b>"}),
        new_output("display_data", data={"image/png": 'x" onerror="alert(1)'}, metadata={"image/png": {"width": "1 onerror=alert(1)"}}),
    ])
    part = student_part(feedback_page(extra_cells=[cell])[0])
    assert not MARKUP.search(part) and "&lt;b&gt;plain&lt;/b&gt;" in part


# --- maths: exactly latex2mathml's MathML, rendered as before -----------------------------------------


def harvested_mathml() -> tuple[set[str], dict[str, set[str]]]:
    """Every element and attribute latex2mathml emits, found by converting each command it knows (with
    arguments of every shape it takes) and each environment."""
    from latex2mathml import commands
    from latex2mathml.converter import convert

    names = {v for v in vars(commands).values() if isinstance(v, str) and v.startswith("\\")}
    for table in vars(commands).values():
        if isinstance(table, dict):
            names |= {k for k in table if isinstance(k, str) and k.startswith("\\")}
    tags: set[str] = set()
    attributes: dict[str, set[str]] = {}

    def harvest(tex: str) -> None:
        for display in ("inline", "block"):
            try:
                out = convert(tex, display=display)
            except Exception:
                return
            for m in re.finditer(r"<([a-z]+)((?:\s+[a-z-]+=\"[^\"]*\")*)\s*/?>", out):
                tags.add(m.group(1))
                attributes.setdefault(m.group(1), set()).update(re.findall(r"([a-z-]+)=", m.group(2)))

    shapes = ["", "{a}", "{a}{b}", "{a}{b}{c}", "{red}{a}", "{1pt}", "{a}{b}{c}{d}", "[2]{a}", " x", "{x}^{2}_{3}",
              "{1}{2}{3}{4}{5}{6}"]
    for name in sorted(names):
        for shape in shapes:
            harvest(name + shape)
            harvest("x" + name + shape + "y")
    harvest("\\smallint")
    for env in ["matrix", "pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "cases", "align", "align*", "split",
                "array", "smallmatrix", "aligned", "gathered", "substack"]:
        harvest(f"\\begin{{{env}}}a & b \\\\ c & d\\end{{{env}}}")
        harvest(f"\\begin{{{env}}}{{c|l}}a & b \\\\ \\hline c & d\\end{{{env}}}")
    return tags, attributes


def test_the_allow_list_holds_exactly_latex2mathml_s_mathml():
    tags, attributes = harvested_mathml()
    assert tags == safepage.MATHML_TAGS
    refused = safepage.MATHML_REFUSED
    for tag in tags:
        assert attributes.get(tag, set()) - refused == safepage.MATHML_ATTRIBUTES.get(tag, set()), tag
    assert {a for names in attributes.values() for a in names} & refused == refused, "each refusal is of something it emits"


def _structure(fragment: str) -> list:
    """What a browser builds from a fragment: tags with their attributes, and text (entities decoded)."""
    from html.parser import HTMLParser

    found = []

    class Walk(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append(("<", tag, sorted(attrs)))

        def handle_endtag(self, tag):
            found.append((">", tag))

        def handle_data(self, data):
            if data:
                found.append(("text", data))

    Walk(convert_charrefs=True).feed(fragment)
    return found


def test_every_maths_span_of_the_course_renders_as_before():
    import nbformat

    from grader.course import layout

    spans = 0
    for nb in layout.available():
        for cell in nbformat.read(nb.source, as_version=4).cells:
            if cell.cell_type != "markdown":
                continue
            for _, _, start, end, display in safepage.math_spans(cell.source):
                rendered = safepage.mathml(cell.source[start:end], display)
                assert rendered.startswith("<math"), cell.source[start:end]
                assert _structure(safepage.clean(rendered)) == _structure(rendered), cell.source[start:end]
                spans += 1
    assert spans > 20


def test_maths_is_found_as_before_in_one_pass():
    """The scanner agrees with the expression that found maths before (a regex that can take quadratic time)."""
    import random

    old = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<![\\$])\$(?![\s$])([^$]+?)(?<![\s\\])\$(?!\d)", re.S)
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice("$$$\\ xy1\n") for _ in range(rng.randint(0, 30)))
        want = [(m.start(), m.end()) for m in old.finditer(text)]
        assert [(s, e) for s, e, *_ in safepage.math_spans(text)] == want, repr(text)


def test_a_page_of_too_much_maths_and_text_is_cut_and_says_so():
    from sample_class import feedback_page

    many = " ".join(f"$x_{{{i}}}$" for i in range(6000))
    page = feedback_page(markdown=many)[0]
    assert page.count("<math") == 5000 and safepage.SHORTENED_ID in page
    assert "maths past the first 5,000 formulas" in page
    long = "word " * 500_000  # 2.5 MB of markdown
    page = feedback_page(markdown=long)[0]
    assert "text past the first 2 MB" in page and len(page) < 3 * 2**20


def test_a_page_that_takes_too_long_stops_rendering_and_says_so():
    from nbformat.v4 import new_markdown_cell, new_notebook

    page, resources = FeedbackExporter(template_name="classic", page_seconds=0).from_notebook_node(
        new_notebook(cells=[new_markdown_cell("# One"), new_markdown_cell("# Two")]))
    assert "building the page took more than 0 s" in page and html_text(page).count(safepage.LATE_TEXT) == 2
    assert resources["shortened"]


def test_maths_stops_at_the_page_s_time_limit_inside_one_cell():
    """One cell of formulas cannot outlast the page's limit: its maths past the limit stays LaTeX source."""
    class RunsOut(safepage.PageBudget):
        """A budget whose time runs out after its 100th check."""
        checks = 0

        def in_time(self) -> bool:
            self.checks += 1
            if self.checks == 101:
                self.started -= self.seconds + 1
            return super().in_time()

    budget = RunsOut(seconds=0.2)
    found: dict[str, str] = {}
    text = take_math(" ".join("$x_i$" for _ in range(1000)), found, budget)
    assert len(found) == 100 and text.count("$x_i$") == 900 and "took more than 0.2 s" in budget.cut[0]


def test_control_without_the_time_limit_one_cell_renders_all_its_maths():
    found: dict[str, str] = {}
    take_math(" ".join("$x_i$" for _ in range(1000)), found, safepage.PageBudget(seconds=10**9))
    assert len(found) == 1000


def test_control_a_whole_page_replace_per_span_grows_with_spans_times_page():
    """What the page builder did before: one replace over the whole page per span (quadratic); the tokens
    are now put back in one substitution."""
    calls = []

    class Counting(str):
        def replace(self, *args):
            calls.append(1)
            return Counting(str.replace(self, *args))

    found: dict[str, str] = {}
    text = safepage.take_math(" ".join(f"$x_{i}$" for i in range(200)), found)
    page = Counting(text)
    for token, markup in found.items():  # the old put_math
        page = page.replace(token, markup)
    assert len(calls) == 200
    assert safepage.put_math(text, found).count("<math") == 200


# The floods a student's markdown can make of a page: one cell of 40,000 formulas (526 kB), and 10,000 cells of
# 1.8 kB (18 MB). Each run builds its pages in a process of its own, which reports for each the seconds, the
# page's size, what it rendered and how much more memory the process held at its peak.
FLOODS = {
    "formulas": "[' '.join('$x_i$' for _ in range(40_000))]",
    "cells": "['Some words of a long essay. ' * 64 + '$x_i$' for _ in range(10_000)]",
}
FLOOD_RUN = """
import json, resource, sys, time
import nbformat
from grader.pages import feedback, safepage

class Unbounded(safepage.PageBudget):  # the control: every bound of the page's budget lifted
    def __init__(self, seconds):
        super().__init__(maths=10**9, text_bytes=10**12, image_bytes=10**12, seconds=10**9)

found = []
for name, sources, lifted, seconds in json.loads(sys.argv[1]):
    feedback.PageBudget = Unbounded if lifted else safepage.PageBudget
    nb = nbformat.from_dict({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                             "cells": [{"id": f"c{i}", "cell_type": "markdown", "metadata": {}, "source": s}
                                       for i, s in enumerate(eval(sources))]})
    exporter = feedback.FeedbackExporter(template_name="classic", page_seconds=seconds)
    before, started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.monotonic()
    page, resources = exporter.from_notebook_node(nb)
    found.append({"name": name, "seconds": time.monotonic() - started, "bytes": len(page),
                  "maths": page.count("<math"), "cells": page.count('class="text_cell_render'),
                  "shortened": resources["shortened"],
                  "memory_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024})
print(json.dumps(found))
"""
PAGE_SECONDS = 3  # the page's time limit in these runs (10 s in grading)


def floods(*jobs: tuple[str, str, bool]) -> list[dict]:
    """Run (name, sources, lifted) jobs in order in one fresh process."""
    import json
    import subprocess
    import sys

    runs = [(name, sources, lifted, PAGE_SECONDS) for name, sources, lifted in jobs]
    done = subprocess.run([sys.executable, "-c", FLOOD_RUN, json.dumps(runs)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_a_flooded_page_costs_no_more_than_the_page_s_limits():
    """Bounded in time (the page's limit and what follows it), size and memory, and it says it was cut. The
    cells flood goes first, so that the process's peak memory is its own."""
    cells, formulas = floods(("cells", FLOODS["cells"], False), ("formulas", FLOODS["formulas"], False))
    for seen in (cells, formulas):
        assert seen["seconds"] < PAGE_SECONDS + 3 and seen["bytes"] < 3.5 * 2**20 and seen["shortened"], seen
    assert cells["memory_mb"] < 150, cells
    assert cells["cells"] < 1200 and any("2 MB" in why for why in cells["shortened"]), \
        ("past the 2 MB of text, cells nbgrader does not grade are left out, not rendered", cells)
    assert formulas["maths"] == 5000 and any("5,000" in why for why in formulas["shortened"]), formulas


@pytest.mark.slow
def test_control_without_the_page_s_limits_the_page_grows_with_the_flood():
    """A tenth of the cells flood and 6,000 formulas, every bound lifted: every cell, all its text and every
    formula reach the page (the whole flood would cost ten times as much, and more)."""
    cells, formulas = floods(("cells", FLOODS["cells"] + "[:1000]", True),
                             ("formulas", "[' '.join('$x_i$' for _ in range(6000))]", True))
    assert cells["cells"] == 1000 and cells["bytes"] > 1.8 * 2**20 and not cells["shortened"], cells
    assert formulas["maths"] == 6000 and not formulas["shortened"], formulas
