"""nbgrader's own autograde and feedback pipelines, each with our steps put in (not copied from them).

Autograde: nbgrader's list of preprocessors with its `Execute` replaced by `GradedExecute` (sandboxed
kernel, time and output limits, a record of what happened). Feedback: nbgrader's list with the hidden
tests cleared and every output scrubbed of secret lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from traitlets.config import Config

from grader.course.cells import NotebookFacts
from grader.course.layout import Notebook
from grader.course.prepared import NBGRADER_STUDENT, CourseFolder, PreparedCourse, api, check
from grader.grading.settings import Settings

# Library warnings on stderr must not zero a test cell (nbgrader scores any stderr output 0).
STDERR_IGNORED = r"Warning: "


def autograde_preprocessors() -> list:
    """nbgrader's autograde pipeline with its Execute step replaced by ours."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    from grader.grading.execution import GradedExecute

    default = Autograde.class_traits()["autograde_preprocessors"].default()
    return [GradedExecute if step is Execute else step for step in default]


def autograde_config(run_dir: Path, record: Path, settings: Settings, uid: int, trusted, facts: NotebookFacts,
                     notebook_key: str = "", data: Path | None = None, template=None) -> Config:
    """Autograde config for one notebook: our Execute step with the run's settings (its limits), its sandboxed
    kernel under `uid` (reading the assignment's `data` folder, if any; forked from the worker's `template`, None:
    started fresh), and the worker's trusted kernel that runs the test cells (None: the student's runs them)."""
    from grader.kernel.sandbox import STARTUP_TIMEOUT, SandboxedKernelManager

    c = Config()
    c.Autograde.autograde_preprocessors = autograde_preprocessors()
    c.GradedExecute.settings = settings
    c.GradedExecute.startup_timeout = STARTUP_TIMEOUT
    c.GradedExecute.shutdown_kernel = "immediate"  # a disposable sandbox: a graceful exit costs ~2 s and saves nothing
    c.GradedExecute.record_path = str(record)
    c.GradedExecute.kernel_manager_class = SandboxedKernelManager
    c.GradedExecute.trusted = trusted
    c.GradedExecute.exercises = dict(facts.exercise_kinds)
    c.GradedExecute.notebook = notebook_key
    c.GradedExecute.trusted_setup = list(facts.trusted_setup)
    c.SandboxedKernelManager.mode = settings.sandbox
    c.SandboxedKernelManager.run_dir = str(run_dir)
    c.SandboxedKernelManager.uid = uid
    c.SandboxedKernelManager.threads = settings.threads
    c.SandboxedKernelManager.data_dir = str(data) if data else ""
    c.SandboxedKernelManager.template = template
    c.IgnorePattern.enabled = True
    c.IgnorePattern.pattern = STDERR_IGNORED
    return c


def run_autograde(course: PreparedCourse, notebook: Notebook, nb: nbformat.NotebookNode, job_dir: Path,
                  settings: Settings, uid: int, trusted=None, template=None) -> tuple[CourseFolder, dict]:
    """nbgrader autograde of `nb` in a private copy of the course under `job_dir`: (that copy, the record)."""
    private = course.copy_for(notebook, job_dir / "course")
    submitted = private.submitted(notebook)
    submitted.parent.mkdir(parents=True)
    nbformat.write(nb, submitted)
    run_dir = job_dir / "run"
    run_dir.mkdir()
    record = job_dir / "execution.json"
    config = autograde_config(run_dir, record, settings, uid, trusted, course.facts(notebook), notebook.key,
                              course.data(notebook), template)
    check(api(private.root, config).autograde(notebook.assignment, NBGRADER_STUDENT),
          f"autograde of {notebook.key}")
    return private, (json.loads(record.read_text()) if record.exists() else {})


def feedback_config(facts: NotebookFacts, withhold_outputs: bool = False) -> Config:
    """nbgrader's feedback pipeline plus clearing and scrubbing the hidden tests (and every output if asked)."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades

    from grader.pages.feedback import FeedbackExporter, ScrubHidden

    steps = []
    for step in GenerateFeedback.class_traits()["preprocessors"].default():
        steps.append(step)
        if step is GetGrades:
            steps += [ClearHiddenTests, ScrubHidden]
    c = Config()
    c.GenerateFeedback.preprocessors = steps
    c.GenerateFeedback.exporter_class = FeedbackExporter
    c.ScrubHidden.lines = sorted(facts.secrets)
    c.ScrubHidden.hidden_cells = list(facts.hidden_cells)
    c.ScrubHidden.withhold_outputs = withhold_outputs
    return c


def generate_feedback(private: CourseFolder, notebook: Notebook, facts: NotebookFacts,
                      withhold_outputs: bool = False) -> str | None:
    """nbgrader's feedback page of the notebook autograded in `private`, scrubbed; None if it failed."""
    result = api(private.root, feedback_config(facts, withhold_outputs)).generate_feedback(
        notebook.assignment, NBGRADER_STUDENT)
    page = private.feedback(notebook)
    return page.read_text() if result.get("success") and page.exists() else None
