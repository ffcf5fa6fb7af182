"""What a student must never read: solution code and hidden tests, found and scrubbed.

A *secret line* is a line inside a `### BEGIN SOLUTION` or `### BEGIN HIDDEN TESTS` region of a source
notebook that appears nowhere in its public part (the notebook with those regions removed), so a
line like `torch.manual_seed(0)` that the student sees anyway is not a secret (`cells.secrets_of` finds
them). Leak checks here look for secret lines in what a person would read; feedback scrubs them from
everything it shows.
"""

from __future__ import annotations

import html
import re
from functools import cache
from html.parser import HTMLParser

import nbformat

from grader.course.cells import split_regions

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PLACEHOLDER = "[hidden]"


def readable(text: str) -> str:
    """Text as a person reads it: no ANSI colour codes."""
    return ANSI.sub("", text)


class _TextOf(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(page: str) -> str:
    """The text a browser shows for an HTML page (no tags, styles or scripts; entities decoded)."""
    parser = _TextOf()
    parser.feed(page)
    return html.unescape("".join(parser.parts))


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """Every string a person could read in a notebook: sources, outputs, metadata."""
    parts: list[str] = []

    def walk(value):
        if isinstance(value, str):
            parts.append(readable(value))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(nb)
    return "\n".join(parts)


NAME_BEFORE = r"[\w.]"  # a character that makes a line's first word part of a longer name (or an attribute)


@cache
def _body(line: str) -> re.Pattern:
    """A line as a regex: any run of whitespace between its words, not followed by more of a name."""
    return re.compile(r"\s+".join(map(re.escape, line.split())) + r"(?![\w])")


@cache
def _pattern(line: str) -> re.Pattern:
    """A line as a regex: any run of whitespace between its words, not part of a longer name."""
    return re.compile(f"(?<!{NAME_BEFORE})" + _body(line).pattern)


def _occurs(text: str, line: str) -> bool:
    """Whether the line occurs in `text` as `_pattern` finds it; searched from its first word, a literal that the
    regex engine finds fast (a pattern that starts with a lookbehind is tried at every position of a long text)."""
    body, at = _body(line), 0
    while (found := body.search(text, at)) is not None:
        if found.start() == 0 or not re.match(NAME_BEFORE, text[found.start() - 1]):
            return True
        at = found.start() + 1
    return False


def _may_hold(text: str, line: str) -> bool:
    """Whether `text` holds the line's longest word, without which no spacing of the line can occur in it."""
    return max(line.split(), key=len) in text


def leaks(text: str, lines: frozenset[str]) -> list[str]:
    """The secret lines that occur in `text` (however spaced, as whole words)."""
    text = readable(text)
    return sorted(line for line in lines if _may_hold(text, line) and _occurs(text, line))


def scrub(text: str, lines: frozenset[str]) -> str:
    """`text` with every occurrence of a secret line (however spaced) replaced by a placeholder."""
    text = readable(text)
    for line in sorted(lines, key=len, reverse=True):
        if _may_hold(text, line):
            text = _pattern(line).sub(PLACEHOLDER, text)
    return text
