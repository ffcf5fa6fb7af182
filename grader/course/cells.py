"""nbgrader's cell facts, read in one place: grade ids, points, kinds of cell, solution and hidden regions.

Every module that asks "is this a test cell?", "how many points?", "which lines are hidden?" asks here,
so the answer cannot drift. Functions take a cell (an nbformat NotebookNode or a plain dict: a submission
may hold anything) and never raise on malformed metadata: what they cannot read, they report as absent.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import nbformat

REGIONS = {"solution": ("### BEGIN SOLUTION", "### END SOLUTION"),
           "hidden": ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")}
# Cell metadata, set in the source notebook, marking a given cell safe for the trusted kernel to run.
TRUSTED_KEY = "grader"


def nbgrader_meta(cell) -> dict:
    """A cell's nbgrader metadata, or {} when it has none (or something that is not a mapping)."""
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    found = meta.get("nbgrader") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


def grade_id(cell) -> str | None:
    """The cell's nbgrader grade id, or None."""
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if gid is None or isinstance(gid, str) else str(gid)


def is_solution(cell) -> bool:
    """A cell the student fills in (nbgrader `solution`)."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell) -> bool:
    """A graded test cell: `grade` without `solution` (a graded solution cell is a written answer)."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def is_written(cell) -> bool:
    """A written answer: nbgrader's "manually graded answer" (`grade` and `solution`), scored by a person."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and bool(meta.get("solution"))


def is_code_solution(cell) -> bool:
    """A solution cell the student fills with code (a written answer is prose, scored by a person)."""
    return is_solution(cell) and not is_written(cell)


def is_given(cell) -> bool:
    """Read-only code the assignment gives: locked, neither a solution nor a test."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("locked")) and not meta.get("grade") and not meta.get("solution")


def is_answer(cell) -> bool:
    """Code the student wrote: a solution cell, or any cell nbgrader does not lock."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("solution")) or not meta.get("locked")


def points(cell) -> float:
    """The points a test cell or a written answer is worth (0 for anything else)."""
    value = nbgrader_meta(cell).get("points", 0)
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def is_trusted_setup(cell) -> bool:
    """A given cell the instructor marked safe for the trusted kernel (imports, constants, helpers)."""
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    mark = meta.get(TRUSTED_KEY) if isinstance(meta, dict) else None
    return isinstance(mark, dict) and mark.get("trusted") is True


def split_regions(source: str) -> tuple[list[str], dict[str, list[str]]]:
    """A cell's public lines and its lines inside each kind of region (solution, hidden tests)."""
    public, inside, kind = [], {k: [] for k in REGIONS}, None
    for line in source.splitlines():
        marker = line.strip()
        begin = [k for k, (b, _) in REGIONS.items() if marker == b]
        if begin:
            kind = begin[0]
        elif kind and marker == REGIONS[kind][1]:
            kind = None
        elif kind:
            inside[kind].append(line)
        else:
            public.append(line)
    return public, inside


def cell_regions(cell) -> tuple[list[str], dict[str, list[str]]]:
    """`split_regions` of a cell's source; a written answer without markers is a solution as a whole (nbgrader
    releases it as "YOUR ANSWER HERE")."""
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    if is_written(cell) and REGIONS["solution"][0] not in source:
        return [], {"solution": source.splitlines(), "hidden": []}
    return split_regions(source)


def has_hidden_tests(cell) -> bool:
    """A source test cell with a hidden-tests region."""
    return REGIONS["hidden"][0] in cell.get("source", "")


def without_markers(source: str) -> str:
    """A solution cell's source with the region markers removed (what the reference solution reads)."""
    markers = {m for pair in REGIONS.values() for m in pair}
    return "\n".join(line for line in source.splitlines() if line.strip() not in markers)


def is_hidden_in_release(source: str) -> bool:
    """A released test cell whose code was all hidden: only comments are left."""
    try:
        return not ast.parse(source).body
    except SyntaxError:
        return False


def description(source: str) -> str:
    """A test cell's leading comment, joined into one line: the part the released notebook shows (its
    description in the feedback summary, also where its code is hidden)."""
    public, _ = split_regions(source)
    lines = []
    for line in public:
        text = line.strip()
        if not text.startswith("#") or text.startswith("###"):
            break
        lines.append(text.lstrip("#").strip())
    return " ".join(t for t in lines if t)


def defined_names(source: str) -> dict[str, str]:
    """The top-level functions and classes a cell defines, in order: name -> `function`, `module`
    (a class deriving from an nn.Module) or `class`."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = "function"
        elif isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            found[node.name] = "module" if any(b.split(".")[-1] == "Module" for b in bases) else "class"
    return found


@dataclass(frozen=True)
class TestCell:
    """One test cell of a source notebook."""

    grade_id: str
    points: float
    hidden: bool
    description: str


@dataclass(frozen=True)
class WrittenQuestion:
    """One written answer of a source notebook: graded by a person in formgrader, with a rubric for them."""

    grade_id: str
    points: float
    title: str  # the question's heading (`### Written question: <title> (...)`), or its grade id
    model_answer: str  # the source cell's text: a full-marks answer, never released
    rubric: str = ""  # from the assignment's rubrics file (written.py), never released


@dataclass(frozen=True)
class NotebookFacts:
    """What a source notebook says about grading it."""

    tests: tuple[TestCell, ...]  # in notebook order
    solutions: dict[str, str]  # grade id of each code solution cell -> the reference code, markers removed
    exercise_kinds: dict[str, str]  # names the solution cells define, in order -> function, module or class
    trusted_setup: tuple[str, ...]  # sources of the given cells marked safe for the trusted kernel
    secrets: frozenset[str]  # hidden-test and rubric lines no student may read (see hidden.py)
    written: tuple[WrittenQuestion, ...] = ()  # in notebook order

    @property
    def exercises(self) -> tuple[str, ...]:
        return tuple(self.exercise_kinds)

    @property
    def test_max(self) -> float:
        """The points the tests give (autograded)."""
        return sum(t.points for t in self.tests)

    @property
    def written_max(self) -> float:
        """The points the written answers give (graded by people)."""
        return sum(w.points for w in self.written)

    @property
    def max_score(self) -> float:
        return self.test_max + self.written_max

    @property
    def test_points(self) -> dict[str, float]:
        return {t.grade_id: t.points for t in self.tests}

    @property
    def hidden_cells(self) -> tuple[str, ...]:
        return tuple(t.grade_id for t in self.tests if t.hidden)

    def exercise_of(self, gid: str) -> str:
        """The exercise a grade id belongs to (`test_run_packed_hidden` -> `run_packed`), or `other`."""
        return exercise_of(gid, self.exercises)


def exercise_of(gid: str, exercises: tuple[str, ...]) -> str:
    """The exercise a grade id names (the spec: grade ids name their exercise), the longest match."""
    bare = gid.removeprefix("test_")
    matches = [e for e in exercises if bare == e or bare.startswith(e + "_")]
    return max(matches, key=len) if matches else "other"


WRITTEN_HEADING = "### Written question:"


def question_title(source: str) -> str:
    """`why pack?` from a markdown cell's `### Written question: why pack? (2 points, ...)` line, or ""."""
    for line in source.splitlines():
        if line.startswith(WRITTEN_HEADING):
            return line[len(WRITTEN_HEADING):].split(" (")[0].strip()
    return ""


def facts_of(source: nbformat.NotebookNode, rubrics: dict[str, str] | None = None) -> NotebookFacts:
    """Test cells, reference solutions, exercise names, trusted setup cells, written questions (with their
    `rubrics`, by grade id) and the lines no student may read, of a source notebook."""
    tests, solutions, exercises, setup, written, title = [], {}, {}, [], [], ""
    rubrics = rubrics or {}
    for cell in source.cells:
        if is_test(cell):
            tests.append(TestCell(grade_id(cell), points(cell), has_hidden_tests(cell), description(cell.source)))
        elif is_written(cell):
            gid = grade_id(cell)
            written.append(WrittenQuestion(gid, points(cell), title or gid, without_markers(cell.source).strip(),
                                           rubrics.get(gid, "")))
            title = ""
        elif is_solution(cell):
            solutions[grade_id(cell)] = without_markers(cell.source)
            exercises.update(defined_names(solutions[grade_id(cell)]))
        elif is_trusted_setup(cell) and cell.cell_type == "code":
            setup.append(cell.source)
        if cell.cell_type == "markdown" and not is_written(cell):
            title = question_title(cell.source) or title
    secrets = secrets_of(source, rubrics=rubrics)
    return NotebookFacts(tuple(tests), solutions, exercises, tuple(setup), secrets.hidden | secrets.rubric,
                         tuple(written))


# A *secret line* (see hidden.py) is a meaningful line inside a solution or hidden-test region that the
# notebook's public part does not contain: the one definition that release checks and feedback scrubbing share.
MIN_SECRET_CHARS = 12


def _meaningful(line: str) -> str | None:
    text = line.strip()
    return text if len(text) >= MIN_SECRET_CHARS and any(ch.isalnum() for ch in text) else None


@dataclass(frozen=True)
class Secrets:
    """The secret lines of one source notebook, by kind."""

    solution: frozenset[str]  # reference code and model answers to written questions
    hidden: frozenset[str]
    rubric: frozenset[str] = frozenset()  # what graders read beside written answers

    @property
    def all(self) -> frozenset[str]:
        return self.solution | self.hidden | self.rubric


def public_lines(source: nbformat.NotebookNode) -> frozenset[str]:
    """The meaningful lines of `source` outside every solution and hidden-test region."""
    return frozenset(line for cell in source.cells for line in map(_meaningful, cell_regions(cell)[0]) if line)


def secrets_of(source: nbformat.NotebookNode, also_public: frozenset[str] = frozenset(),
               rubrics: dict[str, str] | None = None) -> Secrets:
    """The solution, hidden-test and rubric lines of `source` (its `rubrics` by grade id) that neither its
    public part nor `also_public` contain."""
    public = public_lines(source) | also_public
    inside: dict[str, set[str]] = {k: set() for k in REGIONS}
    for cell in source.cells:
        for kind, lines in cell_regions(cell)[1].items():
            inside[kind].update(filter(None, map(_meaningful, lines)))
    rubric = {line for text in (rubrics or {}).values() for line in map(_meaningful, text.splitlines()) if line}
    return Secrets(frozenset(inside["solution"] - public), frozenset(inside["hidden"] - public),
                   frozenset(rubric - public))


def solution_secrets(source: nbformat.NotebookNode) -> dict[str, frozenset[str]]:
    """{grade id of each code solution cell: its secret lines} of a source notebook (written answers are not code)."""
    secret = secrets_of(source).solution
    return {grade_id(cell): frozenset(filter(None, map(_meaningful, cell_regions(cell)[1]["solution"]))) & secret
            for cell in source.cells if is_code_solution(cell)}
