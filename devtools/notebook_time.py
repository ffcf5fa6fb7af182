"""`python -m devtools notebook-time`: how long a notebook takes in full while another one runs beside it.

The course promises that each notebook runs top to bottom on a laptop CPU in about a minute and a half,
and a student's laptop is rarely idle. This runs one notebook as a student runs it (not in grading mode)
while another notebook of the course runs beside it for the whole time (started with it, and started
again whenever it finishes), a few times, and writes the median into its own section of BENCHMARKS.md,
with the machine's load average before and after each run: on a shared machine the load says what else
was running.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from devtools import REPO
from devtools.benchfile import machine, write_section
from grader.course import layout
from grader.course.layout import Notebook

SECTION = "notebook-time"  # notebook 4's, the one the course's time promise was first measured on


def section(notebook: Notebook) -> str:
    """The name of the notebook's own section of BENCHMARKS.md."""
    return SECTION if notebook.name == "attention" else f"{SECTION}-{notebook.name}"


def run_in_full(source: Path, folder: Path, timeout: int = 300) -> tuple[nbformat.NotebookNode, float]:
    """The notebook executed top to bottom in `folder` as a student runs it (not in grading mode), and its seconds."""
    from nbclient import NotebookClient

    nb = nbformat.read(source, as_version=4)
    data = source.parent / layout.DATA_FOLDER
    if data.is_dir() and not (folder / layout.DATA_FOLDER).exists():  # the notebook reads data/ beside it
        (folder / layout.DATA_FOLDER).symlink_to(data.resolve(), target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != "NBGRADER_EXECUTION"}
    start = time.monotonic()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute(env=env)
    return nb, time.monotonic() - start


def _keep_running(source: str) -> None:
    """Run a notebook again and again until this process is killed (its kernel then exits with it)."""
    with tempfile.TemporaryDirectory(prefix="notebook-time-beside-") as folder:
        while True:
            run_in_full(Path(source), Path(folder))


@dataclass(frozen=True)
class Run:
    version: str  # which file was timed: "this" or the one compared with
    seconds: float
    cpu_seconds: float  # user and system time of the notebook's own kernel
    load_before: float  # one-minute load average
    load_after: float


def measure(versions: dict[str, Path], beside: Notebook, repeats: int = 3) -> list[Run]:
    """Each notebook file in `versions` run in full `repeats` times, the versions taking turns, each run with
    `beside` running in a loop next to it (so that a busy moment of the machine weighs on all of them alike)."""
    spawn = multiprocessing.get_context("spawn")
    runs = []
    for _ in range(repeats):
        for version, source in versions.items():
            load_before = os.getloadavg()[0]
            neighbour = spawn.Process(target=_keep_running, args=(str(beside.source),), daemon=True)
            neighbour.start()
            try:
                used = _children_cpu()
                with tempfile.TemporaryDirectory(prefix="notebook-time-") as folder:
                    _, seconds = run_in_full(source, Path(folder))
                used = _children_cpu() - used  # the kernel, reaped when it shut down (the neighbour runs on)
            finally:
                neighbour.kill()
                neighbour.join()
            runs.append(Run(version, seconds, used, load_before, os.getloadavg()[0]))
            time.sleep(2)  # the neighbour's kernel notices its parent is gone within a second, and exits
    return runs


def _children_cpu() -> float:
    """User and system seconds of this process's children that have exited and been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median(runs: list[Run], version: str = "this", cpu: bool = False) -> float:
    return statistics.median(r.cpu_seconds if cpu else r.seconds for r in runs if r.version == version)


def markdown(notebook: Notebook, beside: Notebook, runs: list[Run], compared: str | None = None) -> str:
    """The section of BENCHMARKS.md."""
    from importlib.metadata import version

    repeats = sum(r.version == "this" for r in runs)
    lines = [
        f"# Notebook run time: {notebook.key}",
        "",
        f"Measured by `make bench-notebook` (`python -m devtools notebook-time`) on {datetime.date.today().isoformat()}: "
        f"{os.cpu_count()} cores ({machine()}), Python {platform.python_version()}, torch {version('torch')}. "
        f"`{notebook.key}` run in full (as a student runs it, not in grading mode) with `{beside.key}` running "
        "beside it the whole time (started with it and started again whenever it finished), "
        f"{repeats} times; wall-clock seconds of nbclient's `execute()`, kernel start and shutdown included.",
    ]
    if compared:
        lines += ["", f"Compared in the same run with {compared} (\"before\"): the two took turns, each beside the same "
                  "neighbour."]
    lines += [
        "",
        "| run | notebook | seconds | kernel CPU seconds | load average before | after |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
        *[f"| {i} | {'this' if r.version == 'this' else 'before'} | {r.seconds:.1f} | {r.cpu_seconds:.1f} | "
          f"{r.load_before:.2f} | {r.load_after:.2f} |" for i, r in enumerate(runs, 1)],
        "",
        f"**Median: {median(runs):.1f} s, of which the kernel's CPU {median(runs, cpu=True):.1f} s**"
        + (f" (before: {median(runs, 'before'):.1f} s and {median(runs, 'before', cpu=True):.1f} s)." if compared
           else ".")
        + " The load average counts every runnable process on the machine (the two notebooks alone make about "
        "2): above that, other work shared the cores, and the wall-clock seconds grow with it. The kernel's CPU "
        "seconds (user and system time of the notebook's own kernel) depend far less on the load: with one "
        "neighbour on two cores each notebook has a core, and the wall-clock time comes close to them plus the "
        "kernel's start and shutdown.",
    ]
    return "\n".join(lines)


def notebook_time(notebook: Notebook, beside: Notebook, repeats: int, output: Path = REPO / "BENCHMARKS.md",
                  compare: Path | None = None, compared: str | None = None) -> list[Run]:
    """Measure (beside `compare`, another version of the notebook, when given) and write the section of BENCHMARKS.md."""
    versions = {"this": notebook.source} | ({"before": compare} if compare else {})
    runs = measure(versions, beside, repeats)
    write_section(output, section(notebook), markdown(notebook, beside, runs, compared or (str(compare) if compare else None)))
    return runs
