"""The nbgrader adapter: a course directory, its config, and the calls into nbgrader's API."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

from .layout import Notebook


# nbgrader's own SQLAlchemy use warns on every autograde; the rows say what matters.
warnings.filterwarnings("ignore", module=r"nbgrader\.")


class GraderError(RuntimeError):
    """Grading cannot proceed; the message says why and what to do next."""


def ensure_tools_on_path() -> None:
    """nbgrader shells out to `alembic` (gradebook creation): put this interpreter's bin/ first."""
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + path


def course_config(root: Path, extra: Config | None = None) -> Config:
    """nbgrader config for a course directory at `root`, its gradebook inside it."""
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    c.CourseDirectory.course_id = ""
    # Keep stray files out of the student's folder: only notebooks matter here.
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "__MACOSX"]
    c.NbGraderAPI.log_level = logging.WARNING
    if extra is not None:
        c.merge(extra)
    return c


def api(root: Path, extra: Config | None = None):
    """An NbGraderAPI over the course directory at `root`."""
    ensure_tools_on_path()
    from nbgrader.apps import NbGraderAPI

    return NbGraderAPI(config=course_config(root, extra))


def check(result: dict, what: str) -> None:
    """Raise a GraderError carrying nbgrader's own log when an API call failed."""
    if not result.get("success"):
        detail = (result.get("error") or "") + (result.get("log") or "")
        raise GraderError(f"nbgrader {what} failed:\n{detail.strip()}")


@dataclass(frozen=True)
class PreparedCourse:
    """A course directory with every assignment generated into its gradebook."""

    root: Path

    def released(self, nb: Notebook) -> Path:
        """Where generate_assignment wrote the student version of `nb`."""
        return self.root / "release" / nb.assignment / nb.filename

    def gradebook(self) -> Path:
        """The gradebook holding the source cells (hidden tests included)."""
        return self.root / "gradebook.db"

    def copy_for(self, nb: Notebook, dest: Path) -> Path:
        """A private copy of this course for grading one notebook: gradebook and source only."""
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.gradebook(), dest / "gradebook.db")
        src = self.root / "source" / nb.assignment
        shutil.copytree(src, dest / "source" / nb.assignment, dirs_exist_ok=True)
        return dest


def new_course(root: Path, notebooks: list[Notebook]) -> list[str]:
    """A fresh course folder at `root` holding the source notebooks; its assignment names, in order."""
    if root.exists():
        shutil.rmtree(root)
    for nb in notebooks:
        dest = root / "source" / nb.assignment / nb.filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(nb.source, dest)
    return list(dict.fromkeys(nb.assignment for nb in notebooks))


def prepare_course(root: Path, notebooks: list[Notebook]) -> PreparedCourse:
    """Copy the source notebooks into a fresh course at `root` and generate every assignment."""
    assignments = new_course(root, notebooks)
    nbg = api(root)
    for assignment in assignments:
        check(nbg.generate_assignment(assignment, force=True, create=True), f"generate_assignment {assignment}")
    return PreparedCourse(root)


CACHE_VERSION = "1"


def cached_course(cache: Path, notebooks: list[Notebook]) -> PreparedCourse:
    """A prepared course for these source notebooks, generated once and reused while they are unchanged.

    Generating the assignments and creating a gradebook costs seconds per run; the result depends only
    on the source notebooks and the nbgrader version, which name the cache entry.
    """
    import hashlib

    import nbgrader

    digest = hashlib.sha256(f"{CACHE_VERSION} {nbgrader.__version__}".encode())
    for nb in notebooks:
        digest.update(nb.key.encode() + b"\0" + nb.source.read_bytes())
    entry = cache / f"course-{digest.hexdigest()[:16]}"
    if (entry / "gradebook.db").exists():
        return PreparedCourse(entry)
    cache.mkdir(parents=True, exist_ok=True)
    os.chmod(cache, 0o700)  # the gradebook holds every hidden test
    building = Path(tempfile.mkdtemp(prefix="building-", dir=cache))
    prepare_course(building / "course", notebooks)
    for old in cache.glob("course-*"):
        shutil.rmtree(old, ignore_errors=True)
    try:
        os.rename(building / "course", entry)
    except OSError:  # another run finished the same entry first
        pass
    shutil.rmtree(building, ignore_errors=True)
    return PreparedCourse(entry)


@dataclass(frozen=True)
class CellGrade:
    """One graded cell's result from the gradebook."""

    grade_id: str
    score: float
    max_score: float


def read_grades(root: Path, nb: Notebook, student: str) -> list[CellGrade]:
    """Per-cell grades of one autograded notebook, in the source notebook's cell order."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(nb.name, nb.assignment, student)
        order = {cell.name: i for i, cell in enumerate(gb.find_notebook(nb.name, nb.assignment).source_cells)}
        grades = [
            CellGrade(g.name, float(g.score or 0.0), float(g.max_score))
            for g in sub.grades
            if g.max_score > 0
        ]
    return sorted(grades, key=lambda g: order.get(g.grade_id, len(order)))
