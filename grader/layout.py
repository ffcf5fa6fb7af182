"""Where things live and what they are called: the one place for paths and names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"
DIST = ROOT / "dist"
STUDENT_BUNDLE = DIST / "student.zip"
STUDENT_README = ROOT / "grader" / "student_README.md"
STUDENT_START_LAB = ROOT / "grader" / "student_start_lab.py"
# Jupyter config for students: nbgrader's Validate button, none of the instructor's panels.
STUDENT_JUPYTER_CONFIG = ROOT / "grader" / "student_jupyter"
DEMO_SUBMISSIONS = ROOT / "demo" / "submissions"
CACHE = ROOT / ".cache"  # prepared nbgrader courses, reused while the source notebooks are unchanged

# Folders an LMS export or an operating system leaves behind; never a student or a notebook.
IGNORED_NAMES = frozenset({"__MACOSX", ".ipynb_checkpoints", "__pycache__"})


@dataclass(frozen=True)
class Notebook:
    """One graded notebook: its assignment folder, file stem and exercise names."""

    assignment: str
    name: str
    exercises: tuple[str, ...]

    @property
    def filename(self) -> str:
        """The notebook's file name, the same in solutions/, notebooks/ and submissions."""
        return f"{self.name}.ipynb"

    @property
    def source(self) -> Path:
        """The instructor's source notebook (solutions and hidden tests)."""
        return SOLUTIONS / self.assignment / self.filename

    @property
    def released(self) -> Path:
        """The student version generated from the source."""
        return NOTEBOOKS / self.assignment / self.filename

    @property
    def key(self) -> str:
        """`assignment/notebook`, how messages and the report name it."""
        return f"{self.assignment}/{self.name}"

    def exercise_of(self, grade_id: str) -> str:
        """The exercise a grade id belongs to (`test_run_packed_hidden` -> `run_packed`)."""
        bare = grade_id.removeprefix("test_")
        matches = [e for e in self.exercises if bare == e or bare.startswith(e + "_")]
        return max(matches, key=len) if matches else "other"


COURSE: tuple[Notebook, ...] = (
    Notebook("01_packed_sequences", "packed_sequences", ("lstm_cell", "run_packed")),
    Notebook(
        "02_seq2seq",
        "seq2seq",
        ("make_decoder_inputs", "Seq2Seq", "sequence_loss", "greedy_decode"),
    ),
    Notebook(
        "03_bilstm_tagger",
        "bilstm_tagger",
        ("BiLSTMTagger", "token_accuracy", "masked_cross_entropy"),
    ),
)


def assignments() -> list[str]:
    """Assignment names in course order."""
    return list(dict.fromkeys(nb.assignment for nb in COURSE))


def notebooks_of(assignment: str) -> list[Notebook]:
    """The notebooks of one assignment; an unknown name is an error that lists the known ones."""
    found = [nb for nb in COURSE if nb.assignment == assignment]
    if not found:
        raise KeyError(
            f"unknown assignment {assignment!r}; the course has: {', '.join(assignments())}"
        )
    return found


def available() -> list[Notebook]:
    """The notebooks whose source exists (the course is built one notebook at a time)."""
    return [nb for nb in COURSE if nb.source.exists()]
