"""Release: regenerate notebooks/ from solutions/ with nbgrader and build the student bundles.

One bundle per assignment (`dist/<assignment>.zip`): its released notebooks with every other file of
its assignment folder (data included), the student README written for that bundle, the lab launcher,
Jupyter's config, the licenses, and that assignment's own requirements pinned from the course's lock
file. A whole-course bundle (`dist/course.zip`) is built only on request, because later notebooks give
earlier answers as code; release finds which (`given_answers`) and says so, in the bundle's README too.
"""

from __future__ import annotations

import ast
import io
import re
import string
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nbformat

from grader.course import layout
from grader.course.cells import defined_names, facts_of, solution_secrets
from grader.course.hidden import leaks, notebook_text
from grader.course.layout import Notebook
from grader.course.prepared import PreparedCourse, prepare_course
from grader.errors import GraderError

# What every student installs, whatever the assignment: JupyterLab with nbgrader's Validate button, a kernel.
STUDENT_TOOLS = ("jupyterlab", "notebook", "nbgrader", "ipykernel")
# A fixed timestamp so that the same files give the same zip, byte for byte.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# A solution cell counts as given by a later notebook when at least this share of its secret lines is in it.
GIVEN_SHARE = 0.5


def normalized(nb: nbformat.NotebookNode) -> str:
    """A notebook as committed: no outputs, no execution counts, stable JSON."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    return nbformat.writes(nb) + "\n"


def released_text(course: PreparedCourse, nb: Notebook) -> str:
    """The student version of `nb` that nbgrader generated in `course`, as committed."""
    return normalized(nbformat.read(course.released(nb), as_version=4))


def out_of_date(course: PreparedCourse, notebooks: list[Notebook]) -> list[Notebook]:
    """The notebooks whose committed release differs from what their source generates."""
    return [nb for nb in notebooks if not nb.released.exists() or nb.released.read_text() != released_text(course, nb)]


def selected(assignments: list[str] | None) -> list[Notebook]:
    """The available notebooks of `assignments` (all when None), in course order; unknown names are an error."""
    available = layout.available()
    if not available:
        raise GraderError(f"no source notebooks under {layout.course().solutions}: nothing to release")
    if assignments is None:
        return available
    for name in assignments:
        if not any(nb.source.exists() for nb in layout.notebooks_of(name)):  # raises on an unknown name
            raise GraderError(f"{name}: no source notebook under {layout.course().solutions / name}")
    return [nb for nb in available if nb.assignment in assignments]


# ---- requirements ---------------------------------------------------------------------------------------

def canonical(name: str) -> str:
    """A distribution name as package indexes compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """{canonical name: pin line} of a lock file (`name==version`, maybe `; marker`), comments dropped."""
    if not path.exists():
        raise GraderError(f"no lock file {path}: bundles pin their requirements from it (`make lock` writes it)")
    pins = {}
    for line in path.read_text().splitlines():
        pin = line.split("#", 1)[0].strip()
        if pin:
            name = re.split(r"[=<>!~;\[ ]", pin, maxsplit=1)[0]
            pins[canonical(name)] = pin
    return pins


def imported_modules(nb: nbformat.NotebookNode) -> set[str]:
    """The top-level modules a notebook's code imports (IPython's magics and shell lines skipped)."""
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(code)
        except SyntaxError:  # a cell only IPython reads; it imports nothing we could pin
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


@lru_cache(maxsize=1)
def _distributions_by_module() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


def imported_distributions(notebooks: list[Notebook]) -> list[str]:
    """The distributions the notebooks' code imports (not the standard library, not the assignment's own files)."""
    by_module = _distributions_by_module()
    found = set()
    for nb in notebooks:
        local = {path.stem for path in layout.student_files(nb.assignment) if path.suffix == ".py"}
        for module in imported_modules(nbformat.read(nb.source, as_version=4)) - local:
            if module in sys.stdlib_module_names:
                continue
            if module not in by_module:
                raise GraderError(f"{nb.key} imports {module}, which is not installed here: add the package that "
                                  "provides it to pyproject.toml's dependencies and run `make lock`")
            found.update(canonical(d) for d in by_module[module])
    return sorted(found)


def student_requirements(notebooks: list[Notebook], lock: dict[str, str]) -> str:
    """requirements.txt for students of these notebooks: the lab tools and what the notebooks import, each at
    its locked version; every other package is held to the lock through constraints.txt."""
    names = [canonical(n) for n in STUDENT_TOOLS] + imported_distributions(notebooks)
    missing = [n for n in names if n not in lock]
    if missing:
        raise GraderError(f"{', '.join(missing)} not in the lock file: add to pyproject.toml's dependencies and "
                          "run `make lock`")
    pins = list(dict.fromkeys(lock[n] for n in names))
    return ("# Install with: pip install -r requirements.txt\n"
            "# (constraints.txt holds every other package at the version the course was tested with)\n"
            "-c constraints.txt\n" + "\n".join(pins) + "\n")


def student_constraints(lock: dict[str, str]) -> str:
    """constraints.txt for students: the course's lock, every package at its tested version."""
    return ("# The exact versions this course was tested with; requirements.txt installs within them.\n"
            + "\n".join(lock[name] for name in sorted(lock)) + "\n")


STUDENT_ENVIRONMENT = """\
# conda env create -f environment.yml && conda activate seqmodels
name: seqmodels
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
      - -r requirements.txt
"""


# ---- answers that later notebooks give --------------------------------------------------------------------

@dataclass(frozen=True)
class GivenAnswers:
    """Exercises of an earlier assignment whose answers a later notebook gives as code."""

    later: Notebook
    earlier: Notebook
    exercises: tuple[str, ...]

    def __str__(self) -> str:
        names = ", ".join(self.exercises)
        return f"{self.later.key} gives {self.earlier.assignment}'s answers ({names}) as code"


def solution_lines(source: nbformat.NotebookNode) -> list[tuple[tuple[str, ...], frozenset[str]]]:
    """(exercise names, secret lines) of each solution cell of a source notebook that has secret lines."""
    code = facts_of(source).solutions
    return [(tuple(defined_names(code[gid])) or (gid,), lines) for gid, lines in solution_secrets(source).items() if lines]


def given_answers(texts: dict[Notebook, str]) -> list[GivenAnswers]:
    """For each released notebook in `texts`, the earlier assignments' exercises it gives as code: those with at
    least half of their solution's secret lines in its text."""
    found = []
    for later, text in texts.items():
        readable = notebook_text(nbformat.reads(text, as_version=4))
        earlier_ones = [nb for nb in layout.available()
                        if layout.SERIES.index(nb) < layout.SERIES.index(later) and nb.assignment != later.assignment]
        for earlier in earlier_ones:
            given = [name for names, lines in solution_lines(nbformat.read(earlier.source, as_version=4))
                     if len(leaks(readable, lines)) >= GIVEN_SHARE * len(lines) for name in names]
            if given:
                found.append(GivenAnswers(later, earlier, tuple(given)))
    return found


# ---- bundles ----------------------------------------------------------------------------------------------

def title_of(text: str) -> str:
    """A released notebook's title: its first Markdown heading."""
    for cell in nbformat.reads(text, as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


def student_readme(texts: dict[Notebook, str], given: list[GivenAnswers]) -> str:
    """The bundle's README: the student README with this bundle's notebooks and validate commands filled in."""
    assignments = list(dict.fromkeys(nb.assignment for nb in texts))
    contents = "\n".join(f"- `{nb.assignment}/{nb.filename}`: {title_of(text)}" for nb, text in texts.items())
    heading = "one assignment" if len(assignments) == 1 else f"{len(assignments)} assignments"
    notes = "".join(f"\n**Given code.** `{g.later.assignment}/{g.later.filename}` gives assignment "
                    f"`{g.earlier.assignment}`'s answers ({', '.join(f'`{e}`' for e in g.exercises)}) as working "
                    f"code: it is handed out after `{g.earlier.assignment}` is due.\n" for g in given)
    commands = [f"`nbgrader validate {nb.filename}`" for nb in texts]
    template = string.Template(layout.STUDENT_README.read_text())
    return template.substitute(
        contents=f"This bundle holds {heading}, in `notebooks/`:\n\n{contents}\n{notes}",
        validate=commands[0] + (f" ({', '.join(commands[1:])})" if len(commands) > 1 else ""),
        example=next(iter(texts)).filename)


def bundle_files(texts: dict[Notebook, str], given: list[GivenAnswers] | None = None) -> dict[str, bytes]:
    """What a student receives for these released notebooks, by path inside the bundle."""
    course = layout.course()
    notebooks = list(texts)
    given = given_answers(texts) if given is None else given
    files = {f"notebooks/{nb.assignment}/{nb.filename}": text.encode() for nb, text in texts.items()}
    for assignment in dict.fromkeys(nb.assignment for nb in notebooks):
        for path in layout.student_files(assignment):
            files[f"notebooks/{assignment}/{path.relative_to(course.solutions / assignment).as_posix()}"] = path.read_bytes()
    files["README.md"] = student_readme(texts, given).encode()
    files["start_lab.py"] = layout.STUDENT_START_LAB.read_bytes()
    for path in sorted(layout.STUDENT_JUPYTER_CONFIG.rglob("*.json")):
        files[f"jupyter_config/{path.relative_to(layout.STUDENT_JUPYTER_CONFIG).as_posix()}"] = path.read_bytes()
    lock = read_lock(course.lock)
    files["requirements.txt"] = student_requirements(notebooks, lock).encode()
    files["constraints.txt"] = student_constraints(lock).encode()
    files["environment.yml"] = STUDENT_ENVIRONMENT.encode()
    for name in layout.LICENSE_FILES:
        path = course.root / name
        if not path.exists():
            raise GraderError(f"{path}: missing; every bundle carries the course's licenses")
        files[name] = path.read_bytes()
    return files


def bundle_folder(assignments: list[str]) -> str:
    """The folder a bundle unzips to: `seqmodels-<assignment>`, or `seqmodels-course` for several."""
    return f"seqmodels-{assignments[0]}" if len(assignments) == 1 else "seqmodels-course"


def write_zip(path: Path, files: dict[str, bytes], folder: str) -> None:
    """Write `files` under `folder/` into a zip whose bytes depend only on their names and contents."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


@dataclass(frozen=True)
class Bundle:
    """A bundle written by release: where, which assignments, which earlier answers it gives."""

    path: Path
    assignments: tuple[str, ...]
    given: tuple[GivenAnswers, ...]


def write_bundle(path: Path, texts: dict[Notebook, str]) -> Bundle:
    """Write the bundle of these released notebooks to `path`."""
    given = given_answers(texts)
    assignments = list(dict.fromkeys(nb.assignment for nb in texts))
    write_zip(path, bundle_files(texts, given), bundle_folder(assignments))
    return Bundle(path, tuple(assignments), tuple(given))


@dataclass(frozen=True)
class Released:
    """What one release wrote: the notebooks (in notebooks/) and the bundles (in dist/)."""

    notebooks: list[Path]
    bundles: list[Bundle]


def write_released(texts: dict[Notebook, str]) -> list[Path]:
    """notebooks/<assignment>/: each released notebook and its assignment folder's other files, as students get them."""
    course = layout.course()
    written = []
    for nb, text in texts.items():
        nb.released.parent.mkdir(parents=True, exist_ok=True)
        if not nb.released.exists() or nb.released.read_text() != text:
            nb.released.write_text(text)
        written.append(nb.released)
    for assignment in dict.fromkeys(nb.assignment for nb in texts):
        for path in layout.student_files(assignment):
            dest = course.notebooks / assignment / path.relative_to(course.solutions / assignment)
            if not dest.exists() or dest.read_bytes() != path.read_bytes():
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(path.read_bytes())
    return written


def release(assignments: list[str] | None = None, whole_course: bool = False) -> Released:
    """Regenerate notebooks/ for `assignments` (all when None) and write one bundle per assignment; with
    `whole_course`, also one bundle of them all."""
    notebooks = selected(assignments)
    course = layout.course()
    read_lock(course.lock)  # before the slow part: a course without its lock cannot be bundled
    with tempfile.TemporaryDirectory(prefix="grader-release-") as tmp:
        prepared = prepare_course(Path(tmp) / "course", notebooks)
        texts = {nb: released_text(prepared, nb) for nb in notebooks}
    written = write_released(texts)
    bundles = []
    for assignment in dict.fromkeys(nb.assignment for nb in notebooks):
        mine = {nb: text for nb, text in texts.items() if nb.assignment == assignment}
        bundles.append(write_bundle(course.bundle(assignment), mine))
    if whole_course:
        bundles.append(write_bundle(course.whole_course_bundle, texts))
    return Released(written, bundles)
