"""One definition per status, read by every place that shows one."""

from __future__ import annotations

import dataclasses
import html

import pytest

from grader import statuses
from grader.course import layout
from grader.pages.feedback import banner, error_page, notice_page
from grader.report import page as report_page
from grader.results import Row

ALL = list(statuses.STATUSES.values())


@pytest.mark.parametrize("status", ALL, ids=lambda s: s.name)
def test_each_status_says_everything_a_reader_needs(status):
    for f in dataclasses.fields(status):
        value = getattr(status, f.name)
        if f.name == "student" and status.name == "graded":
            continue  # the score says it all
        assert value not in ("", None), f"{status.name} lacks `{f.name}`"


def test_the_readme_table_is_the_statuses_module():
    readme = (layout.course().root / "README.md").read_text()
    assert statuses.readme_table() in readme, "paste statuses.readme_table() into the README's status section"


@pytest.mark.parametrize("status", ALL, ids=lambda s: s.name)
def test_feedback_and_report_show_each_status(status):
    first = layout.SERIES[0]
    row = Row("ann", first.assignment, first.name, 1.0, 2.0, status.name, "what happened")
    page = notice_page("t", row)
    assert status.student in page and f"<code>{status.name}</code>" in banner(row)
    assert f".s-{status.name} " in report_page.STYLE
    rendered = report_page.render([row], {})
    assert html.escape(status.meaning) in rendered
    assert f'class="s-{status.name}"' in rendered
    assert (row.detail in rendered) == status.needs_look


def test_an_error_page_shows_no_internals():
    row = Row("ann", "01_a", "a", 0.0, 2.0, "error", "KeyError: 'secret' in grader/task.py", traceback="Traceback ...")
    page = error_page("t", row)
    assert "KeyError" not in page and "Traceback" not in page
    assert statuses.status("error").student in page
