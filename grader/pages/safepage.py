"""Pages that are safe to open: no script runs, whatever a student wrote, and maths still renders offline.

Feedback pages show a student's own markdown and outputs; the class report shows their details. Student
markdown is sanitised when rendered (nbconvert's `sanitize_html`, bleach underneath); on top of that
every page this grader writes carries a Content-Security-Policy that allows no script at all (inline
styles and `data:` images only) and holds no `<script>` of its own. Maths is rendered when the page is
built, as MathML (latex2mathml; browsers draw MathML natively), instead of by MathJax from a CDN.
"""

from __future__ import annotations

import re
import secrets

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
       "base-uri 'none'; form-action 'none'")
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
MATH = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<![\\$])\$(?![\s$])([^$]+?)(?<![\s\\])\$(?!\d)", re.S)
SCRIPT = re.compile(r"<script\b.*?</script\s*>", re.S | re.I)


def mathml(latex: str, display: bool) -> str:
    """LaTeX as MathML (escaped by the converter); the source as plain text when it cannot be converted."""
    import html

    from latex2mathml.converter import convert

    try:
        return convert(latex, display="block" if display else "inline")
    except Exception:
        return f"<code>{html.escape(latex)}</code>"


def take_math(markdown: str, found: dict[str, str]) -> str:
    """`markdown` with each maths span replaced by an unguessable token; `found` maps tokens to MathML."""
    nonce = secrets.token_hex(8)

    def swap(match: re.Match) -> str:
        display = match.group(1) is not None
        token = f"gradermath{nonce}x{len(found)}"
        found[token] = mathml(match.group(1) if display else match.group(2), display)
        return token

    return MATH.sub(swap, markdown)


def put_math(page: str, found: dict[str, str]) -> str:
    """Put the MathML back where its tokens are."""
    for token, markup in found.items():
        page = page.replace(token, markup)
    return page


def safe(page: str) -> str:
    """The page without any script, with a policy that runs none, first thing in its head."""
    page = SCRIPT.sub("", page)
    head = re.search(r"<head[^>]*>", page, re.I)
    if head:
        return page[: head.end()] + CSP_META + page[head.end():]
    return f"<!DOCTYPE html><html><head>{CSP_META}</head><body>{page}</body></html>"
