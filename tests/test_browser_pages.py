"""The feedback summary and the class report as a person meets them, in Chromium: pages built from a
hand-made class (no grading run), and one feedback page and the report of the real demo run.

What is checked is what a reader would check: the summary is the first thing on the page, a failing
test's description and message are there and hidden source is not, the summary fits a phone's width,
the links go somewhere, nothing is fetched from outside. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest
from sample_class import HIDDEN_LINE, NOTEBOOK, class_rows, copied_pair, feedback_page

from grader.course import answers, cells, hidden, layout
from grader.pages import summary
from grader.pages.feedback import notice_page
from grader.report import page as report_page
from grader.report import sections, similarity
from grader.results import feedback_path

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = layout.course().root / "test-artifacts" / "browser"
PHONE = {"width": 390, "height": 844}
TIMEOUT_WORDS = "A cell ran past the time limit and was interrupted; the tests that passed still count."


def open_page(chromium, path: Path, phone: bool = False):
    """A new tab on `path`, offline: (page, the outside URLs it asked for)."""
    context = chromium.new_context(viewport=PHONE, is_mobile=True) if phone else chromium.new_context(
        viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    asked: list[str] = []
    page.route(lambda url: not url.startswith(("file:", "data:")),
               lambda route: (asked.append(route.request.url), route.abort()))
    page.goto(path.as_uri(), wait_until="load")
    return page, asked


def shot(page, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=full_page)


SUMMARY_JS = f"""() => {{
  const s = document.getElementById('{summary.SUMMARY_ID}');
  if (!s) return null;
  const box = s.getBoundingClientRect();
  const widest = Math.max(...Array.from(s.querySelectorAll('*')).map((e) => e.getBoundingClientRect().right));
  return {{first: document.body.firstElementChild === s, top: box.top, right: box.right, widest,
          scrollWidth: s.scrollWidth, clientWidth: s.clientWidth, viewport: window.innerWidth,
          text: s.innerText, targets: Array.from(s.querySelectorAll('a[href^="#"]')).map(
              (a) => [a.getAttribute('href'), !!document.getElementById(decodeURIComponent(a.getAttribute('href').slice(1)))])}};
}}"""


def check_summary_on_a_phone(chromium, path: Path, name: str) -> dict:
    """Open a feedback page at 390 px: the summary comes first, fits, and every link has a target."""
    page, _ = open_page(chromium, path, phone=True)
    seen = page.evaluate(SUMMARY_JS)
    shot(page, name)
    assert seen is not None, f"{path}: no summary"
    assert seen["first"] and seen["top"] < 40, f"{path}: the summary is not the first thing on the page: {seen['top']}"
    # on a phone, content wider than the screen widens the layout viewport (and the page is zoomed out)
    assert seen["viewport"] == PHONE["width"], f"{path}: the page is wider than the phone: {seen['viewport']} px"
    assert seen["scrollWidth"] <= seen["clientWidth"], f"{path}: the summary scrolls sideways"
    assert seen["right"] <= PHONE["width"] and seen["widest"] <= seen["right"] + 1, f"{path}: wider than the phone: {seen}"
    missing = [href for href, found in seen["targets"] if not found]
    assert seen["targets"] and not missing, f"{path}: links to nothing: {missing}"
    seen["page"] = page
    return seen


def test_feedback_summary_of_a_hand_built_page(chromium, tmp_path):
    page_html, info = feedback_page("timeout", "cell test_cube_hidden ran past 60 s and was interrupted", TIMEOUT_WORDS)
    path = tmp_path / "toy.html"
    path.write_text(page_html)
    seen = check_summary_on_a_phone(chromium, path, "summary-toy-phone")
    text = seen["text"]
    assert text.splitlines()[0].startswith("Score: 1 / 5")
    assert "Status: timeout." in text and TIMEOUT_WORDS in text and "ran past 60 s" in text
    assert "Hidden tests: negative numbers and zero, each on its own." in text
    assert "AssertionError: the check failed at: [hidden]" in text
    assert "wrote to stderr: computing" in text
    page = seen["page"]
    body = page.evaluate("() => document.body.innerText")
    assert hidden.leaks(body, info["secrets"]) == [] and "square(-3)" not in body and HIDDEN_LINE not in page_html
    # the failing hidden test's link takes the reader to its cell
    page.click(f'#{summary.SUMMARY_ID} a[href="#cell-test_square_hidden"]')
    page.wait_for_function("() => window.scrollY > 0")
    top, at_end = page.evaluate("() => [document.getElementById('cell-test_square_hidden').getBoundingClientRect().top, "
                                "window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 1]")
    assert abs(top) < 5 or (at_end and 0 <= top < 400), f"the link did not bring the cell to the top ({top})"
    shot(page, "summary-toy-phone-followed")


def test_control_the_width_check_catches_a_summary_that_does_not_wrap(chromium, tmp_path):
    page_html, _ = feedback_page()
    unwrapped = page_html.replace("overflow-wrap: anywhere; word-break: break-word;", "").replace(
        "white-space: pre-wrap;", "white-space: pre;")
    assert unwrapped != page_html
    path = tmp_path / "unwrapped.html"
    path.write_text(unwrapped)
    with pytest.raises(AssertionError, match="sideways|wider than the phone"):
        check_summary_on_a_phone(chromium, path, "summary-unwrapped-phone")


@pytest.fixture(scope="module")
def class_out(tmp_path_factory) -> Path:
    """OUT of a hand-built class with every status, a broken test, a copied pair and a leaked reference."""
    out = tmp_path_factory.mktemp("class") / "out"
    rows = class_rows()
    toy, _ = feedback_page()
    for r in rows:
        if r.status == "error":
            continue  # a grader failure writes no page: the roster must not link it
        path = feedback_path(out, r.student_id, r.assignment, r.notebook)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(toy if r.cells else notice_page(f"{r.assignment}/{r.notebook}: feedback for {r.student_id}", r))
    released = nbformat.read(NOTEBOOK.released, as_version=4)
    students = {**copied_pair(), "leaky": dict(answers.reference(NOTEBOOK))}
    found = {NOTEBOOK.key: similarity.compare(students, similarity.template_sources(released), answers.reference(NOTEBOOK))}
    report_page.write(out, rows, {"t_missing": ["02_seq2seq/Seq2Seq (1).ipynb"]}, "no sandbox: kernels ran unconfined",
                 settings=sections.run_settings(60, "none"), similarity=found)
    return out


def check_report(chromium, out: Path, name: str) -> tuple[object, str]:
    """Open OUT/report.html: offline, images drawn with alt text, every link resolves."""
    page, asked = open_page(chromium, out / "report.html")
    page.wait_for_function("() => Array.from(document.images).every((img) => img.complete)")
    shot(page, name, full_page=True)
    assert asked == [], f"the report asks the network for {asked}"
    images = page.evaluate("() => Array.from(document.images).map((i) => [i.alt, i.naturalWidth])")
    assert images and all(alt and width > 0 for alt, width in images), images
    links = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map((a) => a.href)")
    files = [Path(unquote(urlparse(link).path)) for link in links if link.startswith("file:") and "#" not in link]
    assert files and all(f.is_file() for f in files), [f for f in files if not f.is_file()]
    return page, page.evaluate("() => document.body.innerText")


def test_report_of_a_class_with_every_kind_of_failure(chromium, class_out):
    page, text = check_report(chromium, class_out, "report-class")
    for status in ["timeout", "kernel_died", "output_limit", "invalid_notebook", "missing", "not_submitted",
                   "tampered", "error"]:
        assert status in text
    assert "60 s" in text and "Run settings" in text
    flagged = page.locator("tr.flag")
    assert flagged.count() == 1 and "test_sequence_loss_visible" in flagged.inner_text()
    assert "negative" in flagged.inner_text()
    assert "amy and bob" in text and page.locator(".side mark").count() >= 2
    assert "leaky: 100% of their code matches the reference" in text
    assert "<script>" in text  # the error row's detail, shown as text, never run
    links = page.locator("a[href^='feedback/']")
    assert links.count() == len(class_rows()) - 1
    # a roster link opens that student's page, summary first
    page.locator("a[href='feedback/s01/02_seq2seq/seq2seq.html']").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("feedback/s01/02_seq2seq/seq2seq.html")
    assert page.evaluate("() => document.body.firstElementChild.id") == summary.SUMMARY_ID


def test_demo_feedback_page_and_report(chromium, demo_run):
    """One feedback page of the real demo run (ben's partial seq2seq) and the demo's report."""
    nb = layout.SERIES[1]
    path = feedback_path(demo_run, "ben", nb.assignment, nb.name)
    seen = check_summary_on_a_phone(chromium, path, "summary-demo-phone")
    text = seen["text"]
    wrong = next(a for a in answers.catalogue(nb) if not a.correct)
    assert wrong.cell == "make_decoder_inputs"
    assert "failed (0 / 1)" in text and "Visible tests: the example from the description." in text
    assert "AssertionError: shape (2, 5), expected (2, 4)" in text
    secrets = cells.secrets_of(nbformat.read(nb.source, as_version=4)).hidden
    assert hidden.leaks(seen["page"].evaluate("() => document.body.innerText"), secrets) == []
    page, report_text = check_report(chromium, demo_run, "report-demo")
    assert "Item analysis" in report_text and "Discrimination is not shown" in report_text
    assert page.locator("a[href^='feedback/']").count() == 3 * len(layout.available())


def test_screenshots_of_the_demo(chromium, demo_run, tmp_path):
    """`python -m devtools screenshots` takes the README's pictures from a demo run."""
    import struct

    from devtools.screenshots import PHONE, WIDTH, take

    shots = take(demo_run, tmp_path, chromium)
    assert [p.name for p in shots] == ["report.png", "report-analysis.png", "feedback.png"]
    sizes = {}
    for path in shots:
        head = path.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n", path
        sizes[path.name] = struct.unpack(">II", head[16:24])
    assert sizes["report.png"][0] == sizes["report-analysis.png"][0] == WIDTH
    assert sizes["feedback.png"] == (2 * PHONE["width"], 2 * PHONE["height"])


# --- a page built from a hostile notebook ---------------------------------------------------------

WATCH_JS = """() => ({pwned: window.__pwned ?? null,
    maths: Array.from(document.querySelectorAll('math')).map((m) => {
        const box = m.getBoundingClientRect(); return [box.width, box.height, m.getAttribute('display')]; })})"""


def test_a_hostile_notebook_s_page_runs_no_student_script_and_renders_its_maths(chromium, tmp_path):
    """Student markdown with a script, an event handler and a javascript: link; maths inline and displayed."""
    from test_safepage import hostile_notebook, render

    path = tmp_path / "hostile.html"
    path.write_text(render(hostile_notebook()))
    page, asked = open_page(chromium, path)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.click("text=click")  # the javascript: link
    page.wait_for_timeout(500)
    seen = page.evaluate(WATCH_JS)
    shot(page, "hostile-feedback")
    assert seen["pwned"] is None and dialogs == [], "a student's script ran"
    assert len(seen["maths"]) == 2 and all(w > 10 and h > 5 for w, h, _ in seen["maths"]), seen["maths"]
    assert asked == [], f"the page asked the network for {asked}"


def test_control_without_the_policy_and_the_sanitiser_the_script_runs(chromium, tmp_path):
    from test_safepage import hostile_notebook

    from grader.pages.feedback import FeedbackExporter

    page_html, _ = FeedbackExporter(template_name="classic", sanitize_html=False).from_notebook_node(hostile_notebook())
    policy = page_html.index("<meta http-equiv=\"Content-Security-Policy\"")
    path = tmp_path / "unsafe.html"
    path.write_text(page_html[:policy] + page_html[page_html.index(">", policy) + 1:])  # the policy taken out
    page, _ = open_page(chromium, path)
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__pwned ?? null") is not None, "the control's script did not run"
