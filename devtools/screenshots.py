"""`python -m grader screenshots`: the README's pictures of the class report and one feedback page,
taken in headless Chromium from the output of `make demo`.

Chromium is Debian's (`apt-get install chromium`), driven by Playwright (a dev dependency); nothing is
downloaded, and every request off the page's own file is refused, so the pictures show what an
instructor or a student sees offline.
"""

from __future__ import annotations

from pathlib import Path

from devtools import REPO
from grader.course import layout
from grader.errors import GraderError
from grader.results import feedback_path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = REPO / "docs" / "screenshots"
FEEDBACK = ("ben", layout.SERIES[1])  # a partial submission: failed tests with their messages
PHONE = {"width": 390, "height": 844}
WIDTH = 1280
MAX_HEIGHT = 2400
# The report in two pictures: its top, and the sections that say where to look.
REPORT_PARTS = {"report.png": ("Class report", "Pass rate per test cell"),
                "report-analysis.png": ("Item analysis", "Rows that need a look")}


def launch(playwright):
    """Debian's Chromium, headless."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def offline(page) -> None:
    """Refuse every request that is not the page's own file or an embedded image."""
    page.route(lambda url: not url.startswith(("file:", "data:")), lambda route: route.abort())


def _top(page, heading: str) -> float:
    """Where the heading with this text starts on the page, in CSS pixels."""
    return page.evaluate("""(text) => {
        const h = Array.from(document.querySelectorAll('h1, h2')).find((e) => e.textContent.trim() === text);
        return h ? h.getBoundingClientRect().top + window.scrollY : null; }""", heading)


def take(out: Path, dest: Path = SCREENSHOTS, browser=None) -> list[Path]:
    """From the demo's OUT folder: dest/report.png (the report's top), dest/report-analysis.png (item
    analysis, exercises, roster) at desktop width, and dest/feedback.png (one student's page on a phone).
    `browser`: a Playwright browser to use instead of launching one."""
    student, nb = FEEDBACK
    report = out / "report.html"
    feedback = feedback_path(out, student, nb.assignment, nb.name)
    for path in (report, feedback):
        if not path.exists():
            raise GraderError(f"{path}: not found; run `make demo` (or `python -m grader demo --out {out}`) first")
    if browser is None and not CHROMIUM.exists():
        raise GraderError(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise GraderError("playwright is not installed: pip install -e '.[dev]'") from None
    dest.mkdir(parents=True, exist_ok=True)
    if browser is not None:
        return _shoot(browser, report, feedback, dest)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            return _shoot(browser, report, feedback, dest)
        finally:
            browser.close()


def _shoot(browser, report: Path, feedback: Path, dest: Path) -> list[Path]:
    shots = []
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    offline(page)
    page.goto(report.resolve().as_uri(), wait_until="load")
    for name, (first, after) in REPORT_PARTS.items():
        top, end = _top(page, first), _top(page, after)
        if top is None or end is None:
            raise GraderError(f"{report}: no section {first!r} or {after!r}; is it this grader's report?")
        top = max(0, top - 16)
        shots.append(dest / name)
        page.screenshot(path=shots[-1], full_page=True,
                        clip={"x": 0, "y": top, "width": WIDTH, "height": min(MAX_HEIGHT, end - top)})
    page.close()
    phone = browser.new_context(viewport=PHONE, is_mobile=True, device_scale_factor=2)
    page = phone.new_page()
    offline(page)
    page.goto(feedback.resolve().as_uri(), wait_until="load")
    shots.append(dest / "feedback.png")
    page.screenshot(path=shots[-1])
    phone.close()
    return shots
