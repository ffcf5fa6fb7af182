"""Submissions of one notebook that look alike, for a person to judge (nothing here changes a score).

Each student's solution cells of a notebook are fingerprinted together, as one document: one exercise
alone is a few lines, too little to tell copying from the obvious way to write it. Two lists come out:

- *pairs*: two students one of whose documents shares at least `PAIR_THRESHOLD` of its code with the other, not counting
  what everyone shares anyway: the released notebook's code (signatures, docstrings, given cells) and
  the reference solution;
- *reference*: students whose code matches the reference solution (the released code not counted),
  where a leaked solution shows up.

Fingerprinting is the `copydetect` package's (pinned in pyproject.toml): token-based winnowing
(Schleimer, Wilkerson and Aiken 2003, the algorithm behind MOSS). Its Pygments tokenizer drops comments
and whitespace and replaces every name by one letter, so renaming variables and reformatting change
nothing, and its boilerplate filter removes any fingerprint of the released code. It is pure Python
(its dependencies are numpy, matplotlib, jinja2, pygments and tqdm; only tqdm is new here) and exposes
the fingerprint and the comparison as functions (`CodeFingerprint`, `compare_files`), so no files and
no report of its own are needed. Alternatives considered: Dolos (JavaScript) and JPlag (Java), both
outside this Python environment. copydetect hashes with Python's `hash()`, so fingerprints are only
comparable within one process: `compare` makes all of them itself.

`compare` is pure: plain strings in, a `Similarity` out; `solution_sources` and `template_sources`
read the cells out of notebooks; `of_submissions` does it all for a folder of submissions.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path

import nbformat

from grader.course import cells
from grader.course.layout import Notebook

# Shortest run of normalised code that counts as shared, in characters of copydetect's filtered code
# (names are one letter there: `self.out(hidden)` is `V.V(V)`, 6 characters). 25 is copydetect's own
# default noise threshold; with the window below, any shared run of 30 is guaranteed to be found.
NOISE = 25
WINDOW = 6
# A pair is listed when at least this share of one student's own code (released code and reference not
# counted) is also in the other's, and the shared code is at least MIN_SHARED filtered characters
# (a few statements): short leftovers after the boilerplate is removed prove nothing. Measured on the
# catalogues' correct answers: two written independently share at most 0.45 (two masked losses; two
# Seq2Seq classes whose __init__ build the same layers); a copy renamed and reformatted shares 1.0.
PAIR_THRESHOLD = 0.6
# A student is listed against the reference when this share of their code (released code not counted)
# is the reference's. On the catalogues, answers that change one detail of the reference reach 0.76.
REFERENCE_THRESHOLD = 0.8
MIN_SHARED = 60
REFERENCE = "reference solution"
# Opens each cell in a document. It survives copydetect's filter as it is (operators are kept) and is
# longer than NOISE, so no fingerprint spans two cells: cells written by different hands (the reference's
# end, a student's start) never join into one shared run.
RULE = "-" * 32
# What the comparison reads of one student's notebook: the pairwise comparison costs the product of two
# documents' lengths, so one student's megabytes of code must not make the report wait. Honest answers to
# a notebook are a few thousand characters.
MAX_DOCUMENT_CHARS = 50_000


@dataclass(frozen=True)
class Match:
    """Two documents that share code: who, how much, and where."""

    first: str
    second: str
    similarity: float  # the larger of the two shares
    shares: tuple[float, float]  # of each one's own code, the part found in the other
    shared: int  # filtered characters in common
    code: tuple[str, str]  # both documents as written
    spans: tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]  # the shared parts of each, as offsets


@dataclass(frozen=True)
class Similarity:
    """One notebook's similarity findings."""

    students: int  # how many submissions had solution code to compare
    pairs: list[Match] = field(default_factory=list)  # most similar first
    reference: list[Match] = field(default_factory=list)  # first is the student, second the reference
    error: str = ""  # why the comparison could not be made, when it could not
    cut: list[str] = field(default_factory=list)  # students whose code was longer than the comparison reads


def solution_sources(nb: nbformat.NotebookNode) -> dict[str, str]:
    """{grade id: source} of the code a student wrote in a (submitted) notebook, in notebook order: its
    solution cells, and code cells the student added (no nbgrader metadata), as `added-<n>`."""
    found = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cells.is_solution(cell) and cells.grade_id(cell):
            found[cells.grade_id(cell)] = cell.source
        elif not cells.nbgrader_meta(cell):
            found[f"added-{i}"] = cell.source
    return found


def template_sources(released: nbformat.NotebookNode) -> list[str]:
    """Every code cell of the released notebook: what each student starts from."""
    return [cell.source for cell in released.cells if cell.cell_type == "code"]


def document(sources: dict[str, str], order: list[str] | None = None, untouched: frozenset[str] = frozenset()) -> str:
    """One student's solution cells as one document, each under a comment naming its cell; cells left as
    released (`untouched`, compared stripped) are left out."""
    ids = [g for g in (order or []) if g in sources] + [g for g in sources if g not in (order or [])]
    return "\n\n".join(f"# cell {gid}\n{RULE}\n{sources[gid].strip()}" for gid in ids
                        if sources[gid].strip() and sources[gid].strip() not in untouched)


def _filtered(code: str) -> str:
    from copydetect.utils import filter_code

    return filter_code(code, "cell.py", "python")[0]


def _kgrams(codes: list[str]) -> list[int]:
    """Every k-gram hash of each code as it stands in a document (between rules), for a boilerplate list."""
    from copydetect.utils import hashed_kgrams

    hashes: set[int] = set()
    for code in codes:
        hashes.update(int(h) for h in hashed_kgrams(_filtered(f"{RULE}\n{code.strip()}\n{RULE}"), NOISE))
    return sorted(hashes)


def _fingerprint(name: str, code: str, boilerplate: list[int]):
    from copydetect import CodeFingerprint

    return CodeFingerprint(f"{name}.py", NOISE, WINDOW, boilerplate=boilerplate, language="python",
                           fp=io.StringIO(code))


def _spans(slices, code: str) -> tuple[tuple[int, int], ...]:
    """copydetect's slices as (start, end) offsets into `code`, the cell rules cut out of them."""
    if len(slices) == 0 or len(slices[0]) == 0:
        return ()
    rules = [(m, m + len(RULE) + 1) for m in _occurrences(code, RULE)]
    found = []
    for start, end in zip(slices[0], slices[1]):
        pieces = [(int(start), int(end))]
        for r0, r1 in rules:
            pieces = [p for a, b in pieces for p in ((a, min(b, r0)), (max(a, r1), b)) if p[0] < p[1]]
        found += [(a, b) for a, b in pieces if code[a:b].strip()]
    return tuple(found)


def _occurrences(text: str, part: str) -> list[int]:
    found, at = [], text.find(part)
    while at >= 0:
        found.append(at)
        at = text.find(part, at + len(part))
    return found


def _match(a: str, fa, b: str, fb) -> Match | None:
    from copydetect import compare_files

    if not fa.hashes or not fb.hashes:
        return None
    shared, (share_a, share_b), (slices_a, slices_b) = compare_files(fa, fb)
    if not shared:
        return None
    shares = (min(1.0, float(share_a)), min(1.0, float(share_b)))
    return Match(a, b, max(shares), shares, int(shared), (fa.raw_code, fb.raw_code), (_spans(slices_a, fa.raw_code), _spans(slices_b, fb.raw_code)))


def compare(students: dict[str, dict[str, str]], template: list[str], reference: dict[str, str],
            pair_threshold: float = PAIR_THRESHOLD, reference_threshold: float = REFERENCE_THRESHOLD,
            min_shared: int = MIN_SHARED) -> Similarity:
    """Pairs of students, and students against the reference, whose solution code is alike.

    `students` is {student: {grade id: source}} for one notebook, `template` the released notebook's
    code cells, `reference` {grade id: source} of the reference solution.
    """
    order = list(reference)
    released = _kgrams(template)
    everyone = sorted(set(released) | set(_kgrams(list(reference.values()))))
    untouched = frozenset(t.strip() for t in template)
    docs = {s: document(src, order, untouched) for s, src in sorted(students.items())}
    docs = {s: d for s, d in docs.items() if d}
    cut = sorted(s for s, d in docs.items() if len(d) > MAX_DOCUMENT_CHARS)
    docs = {s: d[:MAX_DOCUMENT_CHARS] for s, d in docs.items()}
    own = {s: _fingerprint(s, d, everyone) for s, d in docs.items()}
    pairs = []
    for a, b in combinations(own, 2):
        found = _match(a, own[a], b, own[b])
        if found and found.similarity >= pair_threshold and found.shared >= min_shared:
            pairs.append(found)
    ref = _fingerprint("reference", document(reference, order), released)
    leaks = []
    for s, d in docs.items():
        found = _match(s, _fingerprint(s, d, released), REFERENCE, ref)
        if found and found.shares[0] >= reference_threshold and found.shared >= min_shared:
            leaks.append(found)
    return Similarity(len(docs), sorted(pairs, key=lambda m: (-m.similarity, m.first, m.second)),
                      sorted(leaks, key=lambda m: (-m.shares[0], m.first)), cut=cut)


def of_submissions(submissions: Path, notebooks: list[Notebook]) -> dict[str, Similarity]:
    """{`assignment/notebook`: Similarity} for every student's submission of each notebook under
    `submissions` (unreadable files left out); a notebook that cannot be compared says why."""
    from grader.course import answers
    from grader.grading.submissions import InvalidNotebook, load, locate, read_submitted, repair, students_in

    located, _ = locate(submissions, notebooks, students_in(submissions))
    found = {}
    for nb in notebooks:
        try:
            released = nbformat.read(nb.released, as_version=4)
            students = {}
            for item in located:
                if item.notebook == nb and item.path is not None:
                    try:
                        students[item.student] = solution_sources(repair(load(read_submitted(item.path)), released).nb)
                    except InvalidNotebook:
                        continue
            found[nb.key] = compare(students, template_sources(released), answers.reference(nb))
        except Exception as exc:  # a report without this section beats no report
            found[nb.key] = Similarity(0, error=f"{type(exc).__name__}: {exc}")
    return found


def to_json(found: dict[str, Similarity]) -> dict:
    """Findings as plain data, to keep in OUT beside the rows (the report is rebuilt from them)."""
    return {key: asdict(sim) for key, sim in found.items()}


def from_json(data: dict) -> dict[str, Similarity]:
    """Findings as `to_json` wrote them."""
    def match(m: dict) -> Match:
        spans = tuple(tuple(tuple(span) for span in side) for side in m["spans"])
        return Match(m["first"], m["second"], m["similarity"], tuple(m["shares"]), m["shared"], tuple(m["code"]), spans)

    return {key: Similarity(s["students"], [match(m) for m in s["pairs"]], [match(m) for m in s["reference"]],
                            s.get("error", "")) for key, s in data.items()}
