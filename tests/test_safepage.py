"""Feedback pages are safe to open: student markup is sanitised, no script runs, maths renders offline."""

from __future__ import annotations

import re

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

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
