"""The feedback summary and the class report as a person meets them, in Chromium: pages built from a
hand-made class (no grading run), and one feedback page and the report of the real demo run.

What is checked is what a reader would check: the summary is the first thing on the page, a failing
test's description and message are there and hidden source is not, the summary fits a phone's width,
the links go somewhere, nothing is fetched from outside. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import re
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
    assert "wrong value" in text and "the check failed at" not in text
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


# --- student markup on a feedback page: each payload, and its control -----------------------------

EFFECT_JS = """() => {
  const w = window.innerWidth, h = window.innerHeight;
  const covering = Array.from(document.querySelectorAll('body *')).filter((e) => {
    const s = getComputedStyle(e), r = e.getBoundingClientRect();
    return (s.position === 'fixed' || s.position === 'absolute') && r.width * r.height > 0.5 * w * h;
  }).length;
  return {covering, title: document.title, iframes: document.querySelectorAll('iframe').length,
          maths: Array.from(document.querySelectorAll('math')).filter((m) => m.getBoundingClientRect().width > 0).length};
}"""
# What each payload does to the page when it gets through (tests/test_safepage.py's PAYLOADS).
EFFECTS = {
    "meta_refresh": lambda seen: seen["navigated"],
    "overlay": lambda seen: seen["covering"] > 0,
    "onerror": lambda seen: seen["title"] == "pwned",
    "iframe": lambda seen: seen["iframes"] > 0,
    "maths_text": lambda seen: seen["navigated"] or seen["covering"] > 0,
}


def effects_of(chromium, page_html: str, path: Path) -> dict:
    """Open a page and let it do what it does for a second: where it went, what covers it, what it ran."""
    path.write_text(page_html)
    page, _ = open_page(chromium, path)
    page.wait_for_timeout(1200)
    navigated = page.url != path.as_uri()
    seen = {"navigated": navigated, "covering": 0, "title": "", "iframes": 0, "maths": 0}
    if not navigated:
        seen.update(page.evaluate(EFFECT_JS))
        shot(page, path.stem)
    page.context.close()
    return seen


@pytest.mark.parametrize("name", ["meta_refresh", "overlay", "onerror", "iframe", "maths_text"])
def test_a_student_s_markup_does_nothing_on_the_page(chromium, tmp_path, name):
    from sample_class import feedback_page
    from test_safepage import PAYLOADS

    seen = effects_of(chromium, feedback_page(markdown=PAYLOADS[name])[0], tmp_path / f"payload-{name}.html")
    assert not seen["navigated"] and seen["covering"] == 0 and seen["title"] != "pwned" and seen["iframes"] == 0, seen
    if name == "maths_text":
        assert seen["maths"] >= 1, "the formula still renders, its markup as text"


@pytest.mark.parametrize("name", ["meta_refresh", "overlay", "onerror", "iframe", "maths_text"])
def test_control_without_the_allow_list_the_markup_acts(chromium, tmp_path, name):
    """The same page built without the sanitiser (and, for the event handler, without the policy, which stops
    scripts by itself: the second layer)."""
    from sample_class import feedback_page
    from test_safepage import PAYLOADS

    from grader.pages.safepage import CSP_META

    page_html = feedback_page(markdown=PAYLOADS[name], sanitize=False)[0]
    if name == "onerror":
        page_html = page_html.replace(CSP_META, "")
    seen = effects_of(chromium, page_html, tmp_path / f"control-{name}.html")
    assert EFFECTS[name](seen), seen


# --- width: nothing scrolls sideways, on a phone or a laptop --------------------------------------

def wide_cells() -> list:
    """A notebook's widest things: a long line of code, a long unbroken output, a wide table, wide maths, a wide
    image, a long traceback line."""
    import base64
    import struct
    import zlib

    from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

    def png(width: int, height: int) -> str:
        raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
        chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw))
        return base64.b64encode(b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")).decode()

    long_code = "result = " + " + ".join(f"tensor_number_{i}" for i in range(60))
    table = "| " + " | ".join(f"column_{i}" for i in range(40)) + " |\n|" + "---|" * 40 + "\n| " + " | ".join("x" * 12 for _ in range(40)) + " |"
    maths = "$$" + " + ".join(f"\\frac{{a_{{{i}}}}}{{b_{{{i}}}}}" for i in range(60)) + "$$"
    return [new_markdown_cell(table + "\n\n" + maths + "\n\n" + "unbroken" * 80),
            new_code_cell(long_code, outputs=[
                new_output("stream", name="stdout", text="y" * 1500 + "\n" + "tab\t" * 200 + "\n"),
                new_output("display_data", data={"image/png": png(2400, 30), "text/plain": "<Figure>"}),
                new_output("error", ename="ValueError", evalue="z" * 900, traceback=["ValueError: " + "z" * 900])])]


WIDTH_JS = "() => ({scroll: document.documentElement.scrollWidth, viewport: window.innerWidth})"


def widths(chromium, path: Path) -> dict[int, dict]:
    found = {}
    for width, phone in ((390, True), (1280, False)):
        page, _ = open_page(chromium, path, phone=phone)
        found[width] = page.evaluate(WIDTH_JS)
        shot(page, f"{path.stem}-{width}", full_page=False)
        page.context.close()
    return found


def test_a_page_of_long_lines_and_wide_outputs_does_not_scroll_sideways(chromium, tmp_path):
    from sample_class import feedback_page

    path = tmp_path / "wide.html"
    path.write_text(feedback_page(extra_cells=wide_cells())[0])
    for width, seen in widths(chromium, path).items():
        assert seen["viewport"] == width and seen["scroll"] <= width, (width, seen)


def test_control_without_the_page_s_width_rules_it_scrolls_sideways(chromium, tmp_path):
    from sample_class import feedback_page

    from grader.pages.feedback import FIT_WIDTH

    page_html = feedback_page(extra_cells=wide_cells())[0]
    assert FIT_WIDTH in page_html
    path = tmp_path / "wide-unfitted.html"
    path.write_text(page_html.replace(FIT_WIDTH, ""))
    assert all(seen["scroll"] > width or seen["viewport"] > width for width, seen in widths(chromium, path).items())


# --- pages in the student's words: tracebacks and limits, and their controls ------------------------

STUDENT_CODE_IN_A_CELL = "def helper(x):\n    raise ValueError('lengths must be positive')\n\ndef square(x):\n    return helper(x)\n"
CELL_FILE = "/tmp/ipykernel_7/4242.py"  # where a kernel compiles a cell


def bridge_traceback(as_the_grader_shows_it: bool) -> list[str]:
    """The traceback of an error raised in a student's helper, called by a test through the bridge (both sides in
    this process): as the trusted kernel shows it (protocol.show_traceback: the test's frames without the
    bridge's, then the student's own), or as IPython shows any traceback (the control)."""
    import linecache
    import tempfile

    import torch
    from bridge_pair import Pair
    from IPython.core import ultratb

    from grader.bridge import protocol

    namespace: dict = {}
    exec(compile(STUDENT_CODE_IN_A_CELL, CELL_FILE, "exec"), namespace)
    linecache.cache[CELL_FILE] = (len(STUDENT_CODE_IN_A_CELL), None, STUDENT_CODE_IN_A_CELL.splitlines(True), CELL_FILE)
    with tempfile.TemporaryDirectory() as folder:
        pair = Pair(Path(folder), namespace, {"square": "function"})
        try:
            with pair.cell() as ex:
                with pytest.raises(ValueError) as caught:
                    ex["square"](torch.ones(1))
        finally:
            pair.close()
    formatter = ultratb.AutoFormattedTB(mode="Context", theme_name="linux")
    exc = caught.value

    class Shell:
        InteractiveTB = formatter
        shown: list[str] = []

        def _showtraceback(self, etype, value, stb):
            self.shown = stb

    if not as_the_grader_shows_it:
        return formatter.structured_traceback(type(exc), exc, exc.__traceback__)
    shell = Shell()
    protocol.show_traceback(shell, type(exc), exc, exc.__traceback__)
    return shell.shown


def limit_outputs(traceback: list[str]) -> dict:
    """Outputs of the toy notebook as grading leaves them after a time limit, a dead kernel and an error in the
    student's code: by grade id."""
    from nbformat.v4 import new_output

    interrupted = ["\x1b[0;31m---------------------------------------------------------------------------\x1b[0m\n"
                   "\x1b[0;31mKeyboardInterrupt\x1b[0m                         Traceback (most recent call last)",
                   "Cell \x1b[0;32mIn[3], line 2\x1b[0m\n\x1b[0;32m----> 2\x1b[0m     \x1b[38;5;28;01mwhile\x1b[39;00m True: pass",
                   "\x1b[0;31mKeyboardInterrupt\x1b[0m: "]
    error = new_output("error", ename="ValueError", evalue="lengths must be positive", traceback=traceback)
    return {"square": [new_output("error", ename="KeyboardInterrupt", evalue="", traceback=interrupted)],
            "test_square_visible": [error],
            "test_cube_visible": [new_output("error", ename="CellNotRun", evalue="not run: the kernel died in the test "
                                             "`test_square_hidden`", traceback=["CellNotRun: not run: the kernel died"])],
            "test_cube_hidden": [new_output("error", ename="DeadKernelError", evalue="the kernel died while running this cell",
                                            traceback=["DeadKernelError: the kernel died while running this cell"])]}


TWO_TIMEOUTS = ("the test `test_square_hidden` ran longer than 15 s and was stopped: the code of yours it called did "
                "not return in time; the test `test_cube_hidden` ran longer than 15 s and was stopped: the code of yours "
                "it called did not return in time")
IN_WORDS = ["This cell stopped: it ran past the time limit.",
            "This cell did not run: the kernel died in the test `test_square_hidden`.",
            "the kernel died while running this cell",
            "Where your code failed (the test called your `square`)", "the cell defining `square`, line 2, in helper",
            "raise ValueError('lengths must be positive')",
            "the tests `test_square_hidden` and `test_cube_hidden` ran longer than 15 s and were stopped"]
NOT_THEIRS = ["CellNotRun", "KeyboardInterrupt", "DeadKernelError", "protocol.py", "grader_bridge", "TrustedSide",
              "Remote.__call__", "Could not get source"]


def check_in_words(chromium, page_html: str, path: Path) -> str:
    path.write_text(page_html)
    page, _ = open_page(chromium, path, phone=True)
    text = page.evaluate("() => document.body.innerText")
    shot(page, path.stem, full_page=True)
    page.context.close()
    missing = [words for words in IN_WORDS if words not in text]
    shown = [words for words in NOT_THEIRS if words in text] + re.findall(r"\bcell \d+\b", text)
    assert not missing and not shown, (missing, shown)
    assert text.count(TWO_TIMEOUTS) == 0
    return text


def test_tracebacks_and_limits_in_the_student_s_words(chromium, tmp_path):
    from sample_class import feedback_page

    page_html, _ = feedback_page("timeout", TWO_TIMEOUTS, TIMEOUT_WORDS, outputs=limit_outputs(bridge_traceback(True)))
    text = check_in_words(chromium, page_html, tmp_path / "in-words.html")
    assert text.count("This cell did not run") == 1, "said in the cell that did not run, once"


def test_control_without_the_grader_s_words_the_page_shows_the_machinery(chromium, tmp_path):
    from sample_class import feedback_page

    page_html, _ = feedback_page("timeout", TWO_TIMEOUTS, TIMEOUT_WORDS, outputs=limit_outputs(bridge_traceback(False)),
                                 in_words=False)
    with pytest.raises(AssertionError, match="CellNotRun.*protocol.py"):
        check_in_words(chromium, page_html, tmp_path / "machinery.html")
