"""Secret lines: found in any spacing, scrubbed from text, told apart from public ones."""

from __future__ import annotations

import nbformat
import pytest

from grader.course import layout
from grader.course.cells import public_lines, secrets_of
from grader.course.hidden import PLACEHOLDER, html_text, leaks, scrub

SECRET = "assert torch.allclose(out, expected)"


def test_leaks_finds_a_line_however_spaced_but_not_inside_a_longer_name():
    lines = frozenset({SECRET})
    assert leaks("x\n  assert   torch.allclose(out,  expected)\n", lines) == [SECRET]
    assert leaks("assert torch.allclose(out, expected)", lines) == [SECRET]
    assert leaks("assert\ttorch.allclose(out, expected) # note", lines) == [SECRET]
    assert leaks("my_assert torch.allclose(out, expected)", lines) == []
    assert leaks("x.assert torch.allclose(out, expected)", lines) == []
    assert leaks("assert torch.allclose(out, expected)_2", lines) == []


@pytest.mark.parametrize("text,found", [("xa a a", True), ("xa a", False), ("a a", True), ("(a  a)", True),
                                        ("a ab", False), ("_a a", False), ("ba a a", True)])
def test_a_line_is_found_after_a_false_start_that_overlaps_it(text, found):
    """A candidate refused for the name before it does not hide an occurrence that starts inside it."""
    assert leaks(text, frozenset({"a a"})) == (["a a"] if found else [])
    assert (scrub(text, frozenset({"a a"})) != text) == found  # the same verdict as the whole regex's


def test_scrub_replaces_every_occurrence_and_colours_do_not_hide_it():
    text = f"\x1b[0;31m{SECRET}\x1b[0m\nother\n{SECRET}"
    cleaned = scrub(text, frozenset({SECRET}))
    assert SECRET not in cleaned and cleaned.count(PLACEHOLDER) == 2 and "other" in cleaned


def test_html_text_drops_scripts_and_decodes_entities():
    assert html_text("<p>a &amp; b</p><script>secret()</script><style>x{}</style>") == "a & b"


def test_secret_lines_exclude_what_the_student_sees_anyway():
    source = nbformat.read(layout.SERIES[0].source, as_version=4)
    secrets = secrets_of(source)
    assert secrets.hidden and secrets.solution
    assert not (secrets.all & public_lines(source))
