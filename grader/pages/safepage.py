"""Pages that are safe to open: no student markup, no script, bounded in size and in the time they take to
build, and maths that still renders offline.

Feedback pages show a student's own markdown and outputs; the class report shows their details. Two
layers, each enough on its own against what a student writes:

* An allow-list sanitiser (`clean`, the `nh3` package: maintained, and in Rust, so a page of student
  markdown costs milliseconds) over every piece of student markdown *after* its maths is rendered: plain
  HTML text markup, links only within the page, images only as embedded PNG, JPEG, GIF or WebP, and
  exactly the MathML elements and attributes `latex2mathml` emits. No event handler, `style`, `class`
  or `id`, no `iframe`, `meta`, `base`, `object`, `embed`, `form` or `link` survives it; student text in
  maths (`\\text{...}`, which latex2mathml copies unescaped) is cleaned like any other markup. Outputs
  are kept only as plain text (escaped by the template) and images whose data is base64 (feedback.py).
* A Content-Security-Policy on every page this grader writes that allows no script at all (inline styles
  and `data:` images only); the pages hold no `<script>` of their own.

Maths is rendered when the page is built, as MathML (latex2mathml; browsers draw MathML natively),
instead of by MathJax from a CDN. Finding it is one linear pass (`take_math`), and putting it back one
substitution per piece of markdown (`put_math`), so a cell of 40,000 spans costs what its length costs.
`PageBudget` bounds what student content can add to one page: the maths spans rendered, the bytes of
markdown, code and text output shown, and the seconds spent rendering; past a bound the rest is left
out and the page says so.
"""

from __future__ import annotations

import html
import re
import secrets
import time
from dataclasses import dataclass, field

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
       "base-uri 'none'; form-action 'none'")
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
SCRIPT = re.compile(r"<script\b.*?</script\s*>", re.S | re.I)

# ---------------------------------------------------------------------------------------------
# The allow-list.

# What markdown renders to (mistune, through nbconvert), as text markup.
HTML_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em", "h1",
             "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s",
             "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
             "thead", "tr", "u", "ul", "var"}
HTML_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"}, "ol": {"start"},
                   "td": {"align", "colspan", "rowspan"}, "th": {"align", "colspan", "rowspan"},
                   "abbr": {"title"}, "details": {"open"}}
# Exactly the MathML latex2mathml 3.81 emits (tests/test_safepage.py harvests it from every command it
# knows and checks both ways), less the attributes it copies from the student's LaTeX that could reach
# outside the maths: `style` (\style), `class` (\class) and `href` (\href).
MATHML_TAGS = {"math", "menclose", "mfrac", "mi", "mn", "mo", "mover", "mpadded", "mphantom", "mroot", "mrow",
               "mspace", "msqrt", "mstyle", "msub", "msubsup", "msup", "mtable", "mtd", "mtext", "mtr", "munder",
               "munderover"}
MATHML_ATTRIBUTES = {
    "math": {"display", "xmlns"}, "menclose": {"notation"}, "mfrac": {"linethickness"},
    "mi": {"mathvariant", "movablelimits"}, "mn": {"mathvariant"},
    "mo": {"accent", "fence", "form", "largeop", "lspace", "mathvariant", "maxsize", "minsize", "movablelimits",
           "rspace", "separator", "stretchy"},
    "mover": {"accent"}, "mpadded": {"border-color", "depth", "height", "lspace", "mathbackground", "voffset", "width"},
    "mrow": {"movablelimits"}, "mspace": {"depth", "height", "linebreak", "mathbackground", "width"},
    "mstyle": {"displaystyle", "mathcolor", "mathsize", "scriptlevel"},
    "mtable": {"columnlines", "columnspacing", "displaystyle", "rowlines", "rowspacing"},
    "mtd": {"columnalign"}, "mtext": {"mathvariant"},
}
MATHML_REFUSED = {"style", "class", "href"}
MATHML_NS = "http://www.w3.org/1998/Math/MathML"
# Attribute values that could make a piece of maths cover the page or carry text: sizes stay small, colours
# are names or hex codes, every other value is a short keyword.
SIZES = {"width", "height", "depth", "lspace", "rspace", "voffset", "minsize", "maxsize", "linethickness", "mathsize",
         "columnspacing", "rowspacing"}
COLOURS = {"mathcolor", "mathbackground", "border-color"}
SIZE = re.compile(r"[+-]?(\d{1,2}(\.\d*)?|\.\d+)(em|ex|pt|px|mu|%)?")
COLOUR = re.compile(r"#?[A-Za-z0-9]{1,20}")
KEYWORD = re.compile(r"[A-Za-z0-9 .+\-]{0,64}")
EMBEDDED_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*")
IN_PAGE_LINK = re.compile(r"#[\w.~%-]{0,200}")


def _attribute(tag: str, name: str, value: str) -> str | None:
    """Keep an allowed attribute only with a value that stays inside the page and inside its own box."""
    if name == "href":
        return value if IN_PAGE_LINK.fullmatch(value) else None
    if name == "src":
        return value if EMBEDDED_IMAGE.fullmatch(value) else None
    if tag in MATHML_TAGS:
        if name == "xmlns":
            return value if value == MATHML_NS else None
        if name in SIZES:
            return value if all(SIZE.fullmatch(part) for part in value.split()) and len(value) <= 64 else None
        if name in COLOURS:
            return value if COLOUR.fullmatch(value) else None
        return value if KEYWORD.fullmatch(value) else None
    if name in ("width", "height", "colspan", "rowspan", "start"):
        return value if value.isdigit() and len(value) <= 4 else None
    return value


def clean(fragment: str) -> str:
    """A piece of student HTML (markdown rendered, maths included) with only the allow-listed markup left."""
    import nh3

    attributes = {tag: set(names) for tag, names in HTML_ATTRIBUTES.items()}
    for tag, names in MATHML_ATTRIBUTES.items():
        attributes.setdefault(tag, set()).update(names)
    return nh3.clean(fragment, tags=HTML_TAGS | MATHML_TAGS, attributes=attributes, attribute_filter=_attribute,
                     url_schemes={"data"}, strip_comments=True, link_rel=None,
                     clean_content_tags={"script", "style", "iframe", "object", "embed", "noscript", "template",
                                         "textarea", "title", "select", "svg"})


# ---------------------------------------------------------------------------------------------
# Maths: found in one pass, rendered once, put back in one pass.


def mathml(latex: str, display: bool) -> str:
    """LaTeX as MathML (to be cleaned with the rest of the markdown); the source as plain text when it
    cannot be converted or is too long to be a formula."""
    from latex2mathml.converter import convert

    if len(latex) > MAX_SPAN_CHARS:
        return f"<code>{html.escape(latex)}</code>"
    try:
        return convert(latex, display="block" if display else "inline")
    except Exception:
        return f"<code>{html.escape(latex)}</code>"


MAX_SPAN_CHARS = 2000  # a longer "formula" is shown as text


def _escaped(text: str, at: int) -> bool:
    return at > 0 and text[at - 1] == "\\"


def math_spans(text: str) -> list[tuple[int, int, int, int, bool]]:
    """The maths in markdown, in one linear pass: (start, end, content start, content end, display) of every
    `$$...$$` and `$...$` that the usual rules take for maths (no escaped dollar; inline maths starts and
    ends next to non-space and is not followed by a digit, so "$5 and $10" is not maths)."""
    found = []
    n = len(text)
    no_display_after = n + 1  # no unescaped `$$` starts at or after this position
    i = text.find("$")
    while i != -1:
        if text.startswith("$$", i) and not _escaped(text, i):
            end = -1
            if i + 3 < no_display_after:
                end = text.find("$$", i + 3)
                while end != -1 and _escaped(text, end):
                    end = text.find("$$", end + 1)
                if end == -1:
                    no_display_after = i + 3
            if end != -1:
                found.append((i, end + 2, i + 2, end, True))
                i = text.find("$", end + 2)
                continue
        elif (not _escaped(text, i) and not (i > 0 and text[i - 1] == "$") and i + 1 < n
              and not text[i + 1].isspace() and text[i + 1] != "$"):
            close = text.find("$", i + 1)
            if (close != -1 and not text[close - 1].isspace() and not _escaped(text, close)
                    and not (close + 1 < n and text[close + 1].isdigit())):
                found.append((i, close + 1, i + 1, close, False))
                i = text.find("$", close + 1)
                continue
        i = text.find("$", i + 1)
    return found


def take_math(markdown: str, found: dict[str, str], budget: PageBudget | None = None) -> str:
    """`markdown` with each maths span replaced by an unguessable token; `found` maps tokens to MathML. Past
    the page's budget of spans, maths stays as its source text."""
    nonce = secrets.token_hex(8)
    parts, at = [], 0
    for start, end, inner_start, inner_end, display in math_spans(markdown):
        if budget is not None and not (budget.take_maths() and budget.in_time()):
            break
        token = f"gradermath{nonce}x{len(found)}"
        found[token] = mathml(markdown[inner_start:inner_end], display)
        parts += [markdown[at:start], token]
        at = end
    parts.append(markdown[at:])
    return "".join(parts)


TOKEN = re.compile(r"gradermath[0-9a-f]{16}x\d+")


def put_math(page: str, found: dict[str, str]) -> str:
    """Put the MathML back where its tokens are, in one pass."""
    if not found:
        return page
    return TOKEN.sub(lambda m: found.get(m.group(0), m.group(0)), page)


# ---------------------------------------------------------------------------------------------
# What student content can cost one page.


@dataclass
class PageBudget:
    """What student content may add to one page: maths spans rendered, bytes of markdown, code and text output
    shown, bytes of images, and seconds spent rendering them. Past a bound the rest is left out; `cut` says what."""

    maths: int = 5000
    text_bytes: int = 2 * 2**20
    image_bytes: int = 16 * 2**20
    seconds: float = 10.0
    started: float = field(default_factory=time.monotonic)
    cut: list[str] = field(default_factory=list)

    def _note(self, why: str) -> None:
        if why not in self.cut:
            self.cut.append(why)

    def take_maths(self) -> bool:
        self.maths -= 1
        if self.maths < 0:
            self._note("maths past the first 5,000 formulas is shown as its LaTeX source")
        return self.maths >= 0

    def take_text(self, size: int) -> int:
        """How many of `size` characters of text may still be shown."""
        allowed = max(0, min(size, self.text_bytes))
        self.text_bytes -= size
        if allowed < size:
            self._note("text past the first 2 MB of markdown, code and output is left out")
        return allowed

    def take_image(self, size: int) -> bool:
        self.image_bytes -= size
        if self.image_bytes < 0:
            self._note("images past the first 16 MB are left out")
        return self.image_bytes >= 0

    def in_time(self) -> bool:
        if time.monotonic() - self.started <= self.seconds:
            return True
        self._note(f"building the page took more than {self.seconds:g} s, so the rest of the notebook is not shown")
        return False

    def note_html(self) -> str:
        """What the page says when it was shortened ("" when it was not)."""
        if not self.cut:
            return ""
        items = "".join(f"<li>{html.escape(why)}</li>" for why in self.cut)
        return (f'<div id="{SHORTENED_ID}" role="note"><strong>This page was shortened.</strong> Your grade is not '
                f"affected: the tests ran on the whole notebook.<ul>{items}</ul></div>")


SHORTENED_ID = "grader-shortened"
CUT_TEXT = "\n[... the rest is not shown: this page's limit on text was reached ...]\n"
LATE_TEXT = "[not shown: building this page took too long]"


def safe(page: str) -> str:
    """The page without any script, with a policy that runs none, first thing in its head."""
    page = SCRIPT.sub("", page)
    head = re.search(r"<head[^>]*>", page, re.I)
    if head:
        return page[: head.end()] + CSP_META + page[head.end():]
    return f"<!DOCTYPE html><html><head>{CSP_META}</head><body>{page}</body></html>"
