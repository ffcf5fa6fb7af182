"""The class report's sections, rendered from a hand-built class (no grading run)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import nbformat
import pytest
from sample_class import BROKEN, NOTEBOOK, class_rows, copied_pair

from grader.course import answers
from grader.course.hidden import html_text
from grader.report import page as report_page
from grader.report import sections, similarity
from grader.results import feedback_path

SETTINGS = sections.run_settings(60, "bwrap", datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc))


@pytest.fixture(scope="module")
def found() -> dict[str, similarity.Similarity]:
    released = nbformat.read(NOTEBOOK.released, as_version=4)
    students = {**copied_pair(), "leaky": dict(answers.reference(NOTEBOOK))}
    students["amy"]["added-99"] = 'print("<script>alert(1)</script>")  # code that looks like HTML'
    return {NOTEBOOK.key: similarity.compare(students, similarity.template_sources(released), answers.reference(NOTEBOOK))}


@pytest.fixture(scope="module")
def page(found) -> str:
    rows = class_rows()
    linked = {(r.student_id, r.assignment, r.notebook) for r in rows if r.status != "error"}
    return report_page.render(rows, {"t_missing": ["02_seq2seq/Seq2Seq (1).ipynb"]}, None, SETTINGS, found, linked)


def section(page: str, title: str) -> str:
    start = page.index(f"<h2>{title}</h2>")
    end = page.find("<h2>", start + 1)
    return page[start:end if end > 0 else None]


def test_existing_content_is_kept(page):
    for title in ["Score distributions", "Pass rate per test cell", "Roster", "Rows that need a look",
                  "Unplaced files", "Statuses"]:
        assert f"<h2>{title}</h2>" in page
    assert '<img alt="score histograms per notebook and exercise" src="data:image/png;base64,' in page


def test_the_page_works_offline(page):
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "http://" not in page and "https://" not in page


def test_item_analysis_flags_the_broken_test(page):
    items = section(page, "Item analysis")
    assert "1 flagged: <code>test_sequence_loss_visible</code>" in items
    flagged = re.findall(r'<tr class="flag">(.*?)</tr>', items)
    assert len(flagged) == 1 and BROKEN in flagged[0] and "negative" in flagged[0]
    assert re.search(r"<td>-0\.\d\d</td>", flagged[0])
    assert "every student passed" in items


def test_item_analysis_says_why_it_is_absent_for_a_small_class():
    small = [r for r in class_rows() if r.student_id < "s04"]
    items = section(report_page.render(small, {}), "Item analysis")
    assert "Discrimination is not shown: 4 notebooks ran" in items and "at least 10" in items
    assert '<tr class="flag">' not in items and "needs 10" not in items  # said once, above the table


def test_exercises_mean_median_distribution(page):
    ex = section(page, "Exercises")
    assert "<td>Seq2Seq</td>" in ex and "greedy_decode" in ex
    assert "<td>0 pt: 8, 2 pt: 1, 3 pt: 1, 4 pt: 1, 5 pt: 1</td>" in ex  # greedy_decode, by hand from class_rows
    assert '<td class="num">1.17</td>' in ex and '<td class="num">0</td>' in ex  # its mean and median


def test_similarity_pairs_side_by_side_and_escaped(page):
    sim = section(page, "Similar submissions")
    assert "<strong>amy</strong> and <strong>bob</strong>" in sim
    assert sim.count('<div class="side">') == 1 and sim.count("<mark>") >= 2
    assert "<script>" not in sim and "&lt;script&gt;alert(1)&lt;/script&gt;" in sim
    text = html_text(sim)
    assert "nn.GRUCell" in text and "gru_cell" in text  # both sides, as written


def test_reference_list_is_apart(page):
    sim = section(page, "Similar submissions")
    ref = sim[sim.index("Like the reference solution"):]
    assert "<strong>leaky</strong>: 100% of their code matches the reference" in ref
    assert "amy" not in ref and "bob" not in ref
    assert "leaky</strong> and" not in sim  # the reference never makes a pair


def test_similarity_not_computed_or_failed():
    assert "Not computed" in sections.similarity_html(None)
    failed = sections.similarity_html({"a/b": similarity.Similarity(0, error="OSError: <gone>")})
    assert "Not compared: OSError: &lt;gone&gt;" in failed


def test_roster_links_each_score_to_the_feedback_page(page):
    roster = section(page, "Roster")
    links = re.findall(r'<a href="([^"]+)">', roster)
    assert "feedback/s00/02_seq2seq/seq2seq.html" in links
    assert len(links) == len(class_rows()) - 1  # every row but the error one, whose page was not written
    assert all(not link.startswith(("/", "http")) for link in links)
    assert "t_error/" not in roster


def test_feedback_href_quotes_odd_names():
    assert sections.feedback_href("jo doe#1", "01_a", "nb") == "feedback/jo%20doe%231/01_a/nb.html"


def test_run_settings_are_listed(page):
    settings = section(page, "Run settings")
    for value in ["60 s", "bwrap", sections.grader_version(), "2025-03-01 09:30 UTC"]:
        assert f"<td>{value}</td>" in settings
    assert "<h2>Run settings</h2>" not in report_page.render(class_rows(), {})


def test_write_links_only_existing_feedback_pages(tmp_path):
    rows = class_rows()
    for r in rows[:2]:
        path = feedback_path(tmp_path, r.student_id, r.assignment, r.notebook)
        path.parent.mkdir(parents=True)
        path.write_text("<html></html>")
    page = report_page.write(tmp_path, rows, {}, settings=SETTINGS).read_text()
    links = re.findall(r'<a href="(feedback/[^"]+)">', page)
    assert len(links) == 2 and all((tmp_path / link).exists() for link in links)


def test_screenshots_without_a_demo_run_say_what_to_do(tmp_path, capsys):
    from devtools.__main__ import main

    assert main(["screenshots", "--out", str(tmp_path / "nothing"), "--dest", str(tmp_path / "shots")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "run `make demo`" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "shots").exists()


def test_the_report_lists_why_tests_failed_whole_hidden_tests_included():
    from dataclasses import replace

    rows = class_rows()
    expected = "AssertionError: row 0: got [0, 1], expected [11, 11, 12]"
    changed = []
    for i, row in enumerate(rows):
        cells = [replace(c, message=expected) if c.hidden and c.score < c.max_score else c for c in row.cells]
        changed.append(replace(row, cells=cells))
    text = html_text(report_page.render(changed, {}))
    assert re.search(r"\d+× " + re.escape(expected), text), "the instructor sees the whole message with its count"
