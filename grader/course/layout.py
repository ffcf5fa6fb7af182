"""Where things live and what they are called: the one place for paths and names.

Two kinds of place. The package's own files (the student README, the lab launcher, Jupyter's config)
are package data beside this module, wherever the package is installed. The *course folder* is the
instructor's: `solutions/`, `notebooks/`, `demo/`, `dist/`, the lock file and the private cache. It is
the working directory unless `--course DIR` chooses another (`use_course`); never where the package is
installed, so that an installed wheel grades the course it is run in.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

from grader.errors import GraderError

STUDENT_FILES = Path(__file__).resolve().parent / "student"  # what every bundle carries besides notebooks
STUDENT_README = STUDENT_FILES / "README.md"  # a template: release fills in the bundle's assignments
STUDENT_START_LAB = STUDENT_FILES / "start_lab.py"
# Jupyter config for students: nbgrader's Validate button, none of the instructor's panels.
STUDENT_JUPYTER_CONFIG = STUDENT_FILES / "jupyter"
# Lock files leasing kernel uids: one folder per host, shared by every grading run on it.
UID_LOCKS = Path("/tmp/grader-uids")

# Folders an LMS export or an operating system leaves behind; never a student or a notebook.
IGNORED_NAMES = frozenset({"__MACOSX", ".ipynb_checkpoints", "__pycache__"})
# The rubrics of an assignment's written questions (course/written.py), beside its source notebooks.
RUBRICS_FILE = "rubrics.toml"
# Files of an assignment folder that hold answers or rubrics: the instructor's alone, never released.
INSTRUCTOR_ONLY = frozenset({"answers.py", RUBRICS_FILE})
# An assignment's data: a folder of this name beside its notebooks, read by them as `data/`.
DATA_FOLDER = "data"
# The course folder's lock file: every package's exact version, for `make` and for students' installs.
LOCK_FILE = "constraints.txt"
# The course folder's licenses, carried by every bundle: the code's, then the course content's.
LICENSE_FILES = ("LICENSE", "LICENSE-CONTENT.md")


@dataclass(frozen=True)
class Course:
    """A course folder: the instructor's sources, the released notebooks, the demo, the build outputs."""

    root: Path

    @property
    def solutions(self) -> Path:
        """The source notebooks (solutions and hidden tests), one folder per assignment."""
        return self.root / "solutions"

    @property
    def notebooks(self) -> Path:
        """The student versions generated from the sources, with their assignment folders' files."""
        return self.root / "notebooks"

    @property
    def dist(self) -> Path:
        """Build outputs: the student bundles."""
        return self.root / "dist"

    def bundle(self, assignment: str) -> Path:
        """The student bundle of one assignment."""
        return self.dist / f"{assignment}.zip"

    @property
    def whole_course_bundle(self) -> Path:
        """The bundle of every assignment at once (built only on request: later notebooks give earlier answers)."""
        return self.dist / "course.zip"

    @property
    def demo_submissions(self) -> Path:
        """The demo class, one folder per student."""
        return self.root / "demo" / "submissions"

    @property
    def demo_canvas(self) -> Path:
        """The demo class as Canvas exports it."""
        return self.root / "demo" / "canvas"

    @property
    def lock(self) -> Path:
        """The lock file (`make lock` writes it)."""
        return self.root / LOCK_FILE

    @property
    def cache(self) -> Path:
        """Prepared nbgrader courses and other remembered answers; holds every hidden test (see private_cache)."""
        return self.root / ".cache"

    def private_cache(self) -> Path:
        """The cache folder, created if needed, readable by its owner only: it holds every hidden test."""
        return private_folder(self.cache)

    def shown(self, path: Path) -> Path:
        """`path` as messages show it: relative to the course folder when inside it."""
        return path.relative_to(self.root) if path.is_relative_to(self.root) else path

    def checked(self) -> Course:
        """This course, or a GraderError when the folder holds no course."""
        if not self.solutions.is_dir():
            raise GraderError(f"{self.root} is not a course folder (it has no solutions/): run the grader in the "
                              "course's folder, or pass --course DIR")
        return self


def private_folder(path: Path) -> Path:
    """`path` as a folder that only its owner can enter (0700), created if needed."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


_chosen: Course | None = None


def course() -> Course:
    """The course folder of this run: the one `use_course` chose, else the working directory."""
    return _chosen if _chosen is not None else Course(Path.cwd())


def use_course(root: Path | None) -> Course:
    """Make `root` (None: the working directory) the course folder of this process."""
    global _chosen
    _chosen = None if root is None else Course(Path(root).resolve())
    return course()


@contextmanager
def using_course(root: Path | None) -> Iterator[Course]:
    """`root` (None: the working directory) as the course folder for the duration of a `with` block."""
    before = _chosen
    try:
        yield use_course(root)
    finally:
        use_course(None if before is None else before.root)


@dataclass(frozen=True)
class Notebook:
    """One graded notebook of the series: its assignment folder and file stem."""

    assignment: str
    name: str

    @property
    def filename(self) -> str:
        """The notebook's file name, the same in solutions/, notebooks/ and submissions."""
        return f"{self.name}.ipynb"

    @property
    def source(self) -> Path:
        """The instructor's source notebook (solutions and hidden tests)."""
        return course().solutions / self.assignment / self.filename

    @property
    def rubrics(self) -> Path:
        """The rubrics of the assignment's written questions (course/written.py), beside the source; never released."""
        return course().solutions / self.assignment / RUBRICS_FILE

    @property
    def released(self) -> Path:
        """The student version generated from the source."""
        return course().notebooks / self.assignment / self.filename

    @property
    def data(self) -> Path | None:
        """The assignment's data folder (`data/` beside the source notebook), which the notebook reads as `data/`
        beside it; None when the assignment has none."""
        folder = course().solutions / self.assignment / DATA_FOLDER
        return folder if folder.is_dir() else None

    @property
    def key(self) -> str:
        """`assignment/notebook`, how messages and the report name it."""
        return f"{self.assignment}/{self.name}"

    @cached_property
    def exercises(self) -> tuple[str, ...]:
        """The names the source notebook's solution cells define."""
        import nbformat

        from grader.course.cells import facts_of

        return facts_of(nbformat.read(self.source, as_version=4)).exercises

    def exercise_of(self, grade_id: str) -> str:
        """The exercise a grade id belongs to (`test_run_packed_hidden` -> `run_packed`)."""
        from grader.course.cells import exercise_of

        return exercise_of(grade_id, self.exercises)


SERIES: tuple[Notebook, ...] = (
    Notebook("01_packed_sequences", "packed_sequences"),
    Notebook("02_seq2seq", "seq2seq"),
    Notebook("03_bilstm_tagger", "bilstm_tagger"),
    Notebook("04_attention", "attention"),
    Notebook("05_real_text", "pos_tagging"),
)


def assignments() -> list[str]:
    """Assignment names in course order."""
    return list(dict.fromkeys(notebook.assignment for notebook in SERIES))


def notebooks_of(assignment: str) -> list[Notebook]:
    """The notebooks of one assignment; an unknown name is an error that lists the known ones."""
    found = [notebook for notebook in SERIES if notebook.assignment == assignment]
    if not found:
        raise GraderError(f"unknown assignment {assignment!r}; the course has: {', '.join(assignments())}")
    return found


def available() -> list[Notebook]:
    """The notebooks whose source exists (the course is built one notebook at a time)."""
    return [notebook for notebook in SERIES if notebook.source.exists()]


def student_files(assignment: str) -> list[Path]:
    """The files of an assignment's source folder that students get besides its notebooks (data included),
    in a stable order: everything but the graded notebooks, the instructor's answers and what tools leave."""
    folder = course().solutions / assignment
    graded = {notebook.filename for notebook in notebooks_of(assignment)}
    found = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if (path.is_file() and not (len(parts) == 1 and parts[0] in graded | INSTRUCTOR_ONLY)
                and not any(part in IGNORED_NAMES or part.startswith(".") for part in parts)
                and path.suffix != ".pyc"):
            found.append(path)
    return found
