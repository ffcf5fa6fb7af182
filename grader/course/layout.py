"""Where things live and what they are called: the one place for paths and names."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from grader.errors import GraderError

ROOT = Path(__file__).resolve().parents[2]
STUDENT_FILES = Path(__file__).resolve().parent / "student"  # what every bundle carries besides notebooks
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"
DIST = ROOT / "dist"
STUDENT_BUNDLE = DIST / "student.zip"
STUDENT_README = STUDENT_FILES / "README.md"
STUDENT_START_LAB = STUDENT_FILES / "start_lab.py"
# Jupyter config for students: nbgrader's Validate button, none of the instructor's panels.
STUDENT_JUPYTER_CONFIG = STUDENT_FILES / "jupyter"
DEMO_SUBMISSIONS = ROOT / "demo" / "submissions"
CACHE = ROOT / ".cache"  # prepared nbgrader courses, reused while the source notebooks are unchanged
# Lock files leasing kernel uids: one folder per host, shared by every grading run on it.
UID_LOCKS = Path("/tmp/grader-uids")

# Folders an LMS export or an operating system leaves behind; never a student or a notebook.
IGNORED_NAMES = frozenset({"__MACOSX", ".ipynb_checkpoints", "__pycache__"})


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
        return SOLUTIONS / self.assignment / self.filename

    @property
    def rubrics(self) -> Path:
        """The rubrics of the assignment's written questions (course/written.py), beside the source; never released."""
        from grader.course.written import RUBRICS_FILE

        return SOLUTIONS / self.assignment / RUBRICS_FILE

    @property
    def released(self) -> Path:
        """The student version generated from the source."""
        return NOTEBOOKS / self.assignment / self.filename

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
