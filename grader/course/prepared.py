"""The nbgrader adapter: a course directory, its folder layout, its config, and the calls into nbgrader's API."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nbformat
from traitlets.config import Config

from grader.course.cells import NotebookFacts, facts_of
from grader.course.layout import DATA_FOLDER, Notebook, private_folder
from grader.course.written import RUBRICS_FILE, read_rubrics
from grader.errors import GraderError

log = logging.getLogger(__name__)

# nbgrader's own SQLAlchemy use warns on every autograde; the rows say what matters.
warnings.filterwarnings("ignore", module=r"nbgrader\.")

# Every notebook is graded in a private copy of the course, always as this nbgrader student.
NBGRADER_STUDENT = "student"


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


def remember_alembic_head() -> None:
    """Answer nbgrader's `alembic heads` question from a file after the first time.

    nbgrader runs `alembic heads` in a subprocess (2-3 s) for every gradebook it creates, to stamp its
    schema version; the answer depends only on nbgrader's version, so it is kept in the cache folder.
    """
    import nbgrader
    import nbgrader.api

    from grader.course.layout import course

    if getattr(nbgrader.api.get_alembic_version, "remembered", False):
        return
    asked = nbgrader.api.get_alembic_version

    def get_alembic_version() -> str:
        remembered = course().cache / f"alembic-head-{nbgrader.__version__}"  # the course of the call
        if remembered.exists():
            return remembered.read_text().strip()
        head = asked()
        course().private_cache()
        remembered.write_text(head)
        return head

    get_alembic_version.remembered = True
    nbgrader.api.get_alembic_version = get_alembic_version


def api(root: Path, extra: Config | None = None):
    """An NbGraderAPI over the course directory at `root`."""
    ensure_tools_on_path()
    remember_alembic_head()
    from nbgrader.apps import NbGraderAPI

    return NbGraderAPI(config=course_config(root, extra))


def check(result: dict, what: str) -> None:
    """Raise a GraderError carrying nbgrader's own log when an API call failed."""
    if not result.get("success"):
        detail = (result.get("error") or "") + (result.get("log") or "")
        raise GraderError(f"nbgrader {what} failed:\n{detail.strip()}")


@lru_cache(maxsize=32)
def _facts(source: Path, mtime_ns: int, rubrics: Path, rubrics_mtime_ns: int) -> NotebookFacts:
    return facts_of(nbformat.read(source, as_version=4), read_rubrics(rubrics))


def _mtime_ns(path: Path) -> int:
    return path.stat().st_mtime_ns if path.exists() else 0


@dataclass(frozen=True)
class CourseFolder:
    """nbgrader's folder layout under one course directory (`root`)."""

    root: Path

    def source(self, notebook: Notebook) -> Path:
        """The instructor's source notebook, as nbgrader keeps it."""
        return self.root / "source" / notebook.assignment / notebook.filename

    def released(self, notebook: Notebook) -> Path:
        """Where generate_assignment wrote the student version."""
        return self.root / "release" / notebook.assignment / notebook.filename

    def submitted(self, notebook: Notebook, student: str = NBGRADER_STUDENT) -> Path:
        """Where autograde reads a student's submission."""
        return self.root / "submitted" / student / notebook.assignment / notebook.filename

    def autograded(self, notebook: Notebook, student: str = NBGRADER_STUDENT) -> Path:
        """Where autograde writes the executed submission."""
        return self.root / "autograded" / student / notebook.assignment / notebook.filename

    def feedback(self, notebook: Notebook, student: str = NBGRADER_STUDENT) -> Path:
        """Where generate_feedback writes the HTML page."""
        return self.root / "feedback" / student / notebook.assignment / f"{notebook.name}.html"

    def gradebook(self) -> Path:
        """The gradebook: the source cells (hidden tests included) and, after autograde, the scores."""
        return self.root / "gradebook.db"

    def rubrics(self, notebook: Notebook) -> Path:
        """The rubrics of the assignment's written questions: kept apart from `source/`, which nbgrader releases."""
        return self.root / "rubrics" / notebook.assignment / RUBRICS_FILE

    def data(self, notebook: Notebook) -> Path | None:
        """The assignment's data as this course keeps it (apart from nbgrader's folders), None if it has none."""
        folder = self.root / DATA_FOLDER / notebook.assignment
        return folder if folder.is_dir() else None


@dataclass(frozen=True)
class PreparedCourse(CourseFolder):
    """A course directory with every assignment generated into its gradebook; read-only once prepared."""

    def facts(self, notebook: Notebook) -> NotebookFacts:
        """What the source notebook (and its rubrics) say about grading it (read once per process)."""
        path, rubrics = self.source(notebook), self.rubrics(notebook)
        return _facts(path, path.stat().st_mtime_ns, rubrics, _mtime_ns(rubrics))

    def sources(self) -> list[Path]:
        """Every source notebook of the course."""
        return sorted((self.root / "source").glob("*/*.ipynb"))

    def copy_for(self, notebook: Notebook, dest: Path) -> CourseFolder:
        """A private copy of this course for grading one notebook: gradebook and source only."""
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.gradebook(), dest / "gradebook.db")
        src = self.root / "source" / notebook.assignment
        shutil.copytree(src, dest / "source" / notebook.assignment, dirs_exist_ok=True)
        return CourseFolder(dest)


def new_course(root: Path, notebooks: list[Notebook]) -> list[str]:
    """A fresh course folder at `root` holding the source notebooks, their rubrics (outside `source/`) and their
    assignments' data (so that the course alone, shipped to a cluster's workers, is all grading needs); its
    assignment names, in order."""
    if root.exists():
        shutil.rmtree(root)
    for notebook in notebooks:
        dest = CourseFolder(root).source(notebook)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebook.source, dest)
        if notebook.rubrics.exists():
            rubrics = CourseFolder(root).rubrics(notebook)
            rubrics.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(notebook.rubrics, rubrics)
        data = root / DATA_FOLDER / notebook.assignment
        if notebook.data is not None and not data.exists():
            shutil.copytree(notebook.data, data)
    return list(dict.fromkeys(notebook.assignment for notebook in notebooks))


def prepare_course(root: Path, notebooks: list[Notebook]) -> PreparedCourse:
    """Copy the source notebooks into a fresh course at `root` and generate every assignment."""
    assignments = new_course(root, notebooks)
    nbg = api(root)
    for assignment in assignments:
        check(nbg.generate_assignment(assignment, force=True, create=True), f"generate_assignment {assignment}")
    return PreparedCourse(root)


CACHE_VERSION = "2"


def cached_course(cache: Path, notebooks: list[Notebook]) -> PreparedCourse:
    """A prepared course for these source notebooks, generated once and reused while they are unchanged.

    Generating the assignments and creating a gradebook costs seconds per run; the result depends only
    on the source notebooks, their rubrics, their data and the nbgrader version, which name the cache entry.
    """
    import nbgrader

    digest = hashlib.sha256(f"{CACHE_VERSION} {nbgrader.__version__}".encode())
    for notebook in notebooks:
        digest.update(notebook.key.encode() + b"\0" + notebook.source.read_bytes())
        if notebook.rubrics.exists():
            digest.update(b"\0rubrics\0" + notebook.rubrics.read_bytes())
        for path in sorted(notebook.data.rglob("*")) if notebook.data is not None else []:
            if path.is_file():
                digest.update(path.relative_to(notebook.data).as_posix().encode() + b"\0" + path.read_bytes())
    entry = cache / f"course-{digest.hexdigest()[:16]}"
    if (entry / "gradebook.db").exists():
        return PreparedCourse(entry)
    log.info("preparing the course in %s", entry)
    private_folder(cache)  # the gradebook holds every hidden test
    building = Path(tempfile.mkdtemp(prefix="building-", dir=cache))
    prepare_course(building / "course", notebooks)
    for old in cache.glob("course-*"):
        if old != entry:  # the same entry finished meanwhile by another run is in use: keep it
            shutil.rmtree(old, ignore_errors=True)
    try:
        os.rename(building / "course", entry)
    except OSError:  # another run finished the same entry first
        pass
    shutil.rmtree(building, ignore_errors=True)
    return PreparedCourse(entry)


def gradebook_scores(course: CourseFolder, notebook: Notebook,
                     student: str = NBGRADER_STUDENT) -> dict[str, float | None]:
    """{grade id: score} of each graded cell of one autograded notebook, from the gradebook: a test cell's points,
    and for a written answer None (nobody has scored it: a person will) or 0 (nbgrader found it as released)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course.gradebook()}") as gb:
        sub = gb.find_submission_notebook(notebook.name, notebook.assignment, student)
        return {g.name: None if g.auto_score is None and g.manual_score is None else float(g.score or 0.0)
                for g in sub.grades if g.max_score > 0}
