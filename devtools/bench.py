"""`make bench`: grading throughput against plain execution and against stock nbgrader.

Measured on one machine, over one synthetic class, in rounds: each round runs every configuration once (in
an order that turns each round, so that no configuration always runs first or last), and each figure is the
median of the rounds (3 by default):

* limit: every submitted notebook executed once with nbclient, plainly, in the environment the grader's
  kernels get (grading mode on, one thread per kernel), summed and divided by the number of cores; and the
  strict limit, the same to each notebook's last reply (no kernel shutdown);
* anchor: stock `nbgrader autograde` (and `generate_feedback`) on the same submissions, serial as it ships;
* ours: `python -m grader autograde` with each kernel started fresh and forked from a warm template
  (`--kernels fresh|fork`), with one worker and with one per core.

Once, in the first round: ours with the test cells in the student's kernel (what the trusted kernel costs)
and on a Dask LocalCluster (what the cluster path costs). While ours runs, every kernel's memory is sampled
(PSS: its private pages plus its share of the pages it shares, the template's among them). The 1-minute
load average is noted at the start of every run: figures from a busy machine say so.

Writes BENCHMARKS.md.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from devtools import REPO
from devtools.benchfile import machine, sections
from grader.course import answers, layout
from grader.course.layout import Notebook

ROUNDS = 3
OURS = [("fresh", 1), ("fresh", 0), ("fork", 1), ("fork", 0)]  # (kernels, workers); 0: one per core


def synthetic_class(root: Path, students: int) -> dict[tuple[str, Notebook], str]:
    """Write `students` submissions of every notebook: a third reference answers, the rest catalogued ones."""
    made = {}
    for notebook in layout.available():
        catalogue = answers.catalogue(notebook)
        released = nbformat.read(notebook.released, as_version=4)
        for i in range(students):
            student = f"student{i:03d}"
            if i % 3 == 0:
                sub, kind = answers.submission(notebook, released=released), "reference"
            else:
                answer = catalogue[i % len(catalogue)]
                sub, kind = answers.submission(notebook, {answer.cell: answer.source}, released=released), answer.name
            path = root / student / notebook.assignment / notebook.filename
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(sub, path)
            made[(student, notebook)] = kind
    return made


def load() -> float:
    """The 1-minute load average now."""
    return os.getloadavg()[0]


@dataclass
class Plain:
    """One notebook executed plainly: seconds in all, to its last reply, to a ready kernel, in its first code cell."""

    total: float
    executed: float
    start: float
    first: float


def plain_execution(path: Path, threads: int, data: Path | None = None) -> Plain:
    """`path` executed with nbclient (its defaults: a graceful shutdown at the end) as the grader's kernels run,
    in a folder where `data` (the assignment's data folder, if any) is `data/`, as the notebook reads it."""
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, "NBGRADER_EXECUTION": "autograde", "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as cwd:
        if data is not None:
            os.symlink(data, os.path.join(cwd, layout.DATA_FOLDER), target_is_directory=True)
        km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(cwd, "kernel"))  # as ours
        client = NotebookClient(nb, km=km, timeout=120, allow_errors=True, resources={"metadata": {"path": cwd}})
        start = time.perf_counter()
        first = None
        with client.setup_kernel(cleanup_kc=True, env=env):  # shut down at the end, as the grader's kernels are
            ready = time.perf_counter() - start
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
                if first is None and cell.cell_type == "code" and cell.source.strip():
                    first = time.perf_counter() - start - ready
            executed = time.perf_counter() - start
        return Plain(time.perf_counter() - start, executed, ready, first or 0.0)


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, done


# --- memory: every kernel's PSS while a run goes on ----------------------------------------------------------

def _status(pid: int) -> dict[str, str]:
    try:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())}
    except (OSError, ValueError):
        return {}


def _pss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _descendants(root: int) -> list[int]:
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        try:
            children = [int(c) for t in os.listdir(f"/proc/{pid}/task")
                        for c in Path(f"/proc/{pid}/task/{t}/children").read_text().split()]
        except OSError:
            continue
        found += children
        stack += children
    return found


class MemorySampler:
    """Samples the peak PSS of each kernel under a process: student kernels (run as a leased uid, not the trusted
    one), trusted kernels, and kernel templates, in kB."""

    def __init__(self, root: int, every: float = 0.25):
        self.root, self.every = root, every
        self.peaks: dict[str, dict[int, int]] = {"student": {}, "trusted": {}, "template": {}}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def kind(self, pid: int) -> str | None:
        from grader.kernel.uids import FIRST_UID, UID_COUNT

        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        uid = int(_status(pid).get("Uid", "0").split()[0])
        if FIRST_UID <= uid < FIRST_UID + UID_COUNT:
            return "trusted" if b"/trusted/" in cmdline else "student"
        if uid == 0 and b"kernel-template" in cmdline and _status(pid).get("NSpid", "").split()[1:] == ["1"]:
            return "template"  # pid 1 of its own pid namespace (its kernels' pid 1 is one namespace deeper)
        return None

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for pid in _descendants(self.root):
                kind = self.kind(pid)
                pss = _pss_kb(pid) if kind else None
                if kind and pss:
                    self.peaks[kind][pid] = max(pss, self.peaks[kind].get(pid, 0))

    def median_mb(self, kind: str) -> float:
        values = list(self.peaks[kind].values())
        return statistics.median(values) / 1024 if values else float("nan")


class PlainSampler(MemorySampler):
    """The plain kernels (children of this process running ipykernel)."""

    def kind(self, pid: int) -> str | None:
        try:
            return "student" if b"ipykernel_launcher" in Path(f"/proc/{pid}/cmdline").read_bytes() else None
        except OSError:
            return None


# --- one round ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    """One configuration's run: seconds, the load when it started, and what it measured."""

    seconds: float
    load: float
    rows: list = field(default_factory=list)  # ours: every row; plain: {notebook key: [Plain]}
    memory: dict[str, float] = field(default_factory=dict)  # kind -> median peak PSS MB


def run_plain(made, subs: Path) -> Run:
    started, at = load(), time.perf_counter()
    per_notebook: dict[str, list[Plain]] = {}
    with PlainSampler(os.getpid()) as memory:
        for (student, notebook) in made:
            result = plain_execution(subs / student / notebook.assignment / notebook.filename, threads=1,
                                     data=notebook.data)
            per_notebook.setdefault(notebook.key, []).append(result)
    return Run(time.perf_counter() - at, started, per_notebook, {"student": memory.median_mb("student")})


def run_stock(course: Path, notebooks: list[Notebook]) -> tuple[Run, float]:
    """Stock autograde of every assignment (and, apart, its generate_feedback): (the autograde run, feedback seconds)."""
    started = load()
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    autograde = feedback = 0.0
    for assignment in dict.fromkeys(notebook.assignment for notebook in notebooks):
        seconds, _ = timed([nbgrader, "autograde", assignment, "--force"], cwd=course)
        autograde += seconds
        seconds, _ = timed([nbgrader, "generate_feedback", assignment, "--force"], cwd=course)
        feedback += seconds
    return Run(autograde, started), feedback


def run_ours(subs: Path, out: Path, sandbox: str, extra: list[str]) -> Run:
    from grader.results import load_all

    shutil.rmtree(out, ignore_errors=True)
    started, at = load(), time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(out),
                                "--sandbox", sandbox, "--timeout", "60", *extra],  # given limits: no reference measured
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    with MemorySampler(process.pid) as memory:
        _, err = process.communicate()
    seconds = time.perf_counter() - at
    if process.returncode != 0:
        raise RuntimeError(f"grader failed:\n{err[-3000:]}")
    return Run(seconds, started, load_all(out), {k: memory.median_mb(k) for k in memory.peaks})


@dataclass
class Figures:
    cores: int
    notebooks: int
    rounds: int
    sandbox: str
    forked: str  # how the forked runs' kernels started, as the grader said
    runs: dict[str, list[Run]]  # configuration -> its run in each round
    anchor_feedback: list[float]

    def seconds(self, name: str) -> float:
        return statistics.median(r.seconds for r in self.runs[name])

    def loads(self, name: str) -> str:
        return ", ".join(f"{r.load:.1f}" for r in self.runs[name])

    @property
    def limit(self) -> float:
        return self.seconds("plain") / self.cores

    @property
    def strict_limit(self) -> float:
        return statistics.median(sum(p.executed for ps in r.rows.values() for p in ps) for r in self.runs["plain"]) / self.cores


def ours_name(kernels: str, workers: int) -> str:
    return f"ours {kernels}, {workers or 'all'}"


def run(students: int, workdir: Path, sandbox: str = "auto", rounds: int = ROUNDS, extras: bool = True) -> Figures:
    """Every measurement of the benchmark, over one synthetic class."""
    from devtools.stock import stock_course
    from grader.course.prepared import ensure_tools_on_path
    from grader.kernel import forked
    from grader.kernel.sandbox import resolve_mode

    ensure_tools_on_path()
    cores = os.cpu_count() or 1
    subs = workdir / "submissions"
    made = synthetic_class(subs, students)
    notebooks = layout.available()
    mode, _ = resolve_mode(sandbox)
    print(f"{len(made)} submitted notebooks ({students} students x {len(notebooks)} notebooks), {cores} cores, "
          f"{rounds} rounds", flush=True)
    course = stock_course(workdir, notebooks, subs)
    configurations = ["plain", "stock"] + [ours_name(k, w) for k, w in OURS]
    runs: dict[str, list[Run]] = {name: [] for name in configurations}
    anchor_feedback = []
    for r in range(rounds):
        order = configurations[r % len(configurations):] + configurations[:r % len(configurations)]
        for name in order:
            if name == "plain":
                runs[name].append(run_plain(made, subs))
            elif name == "stock":
                done, feedback = run_stock(course, notebooks)
                runs[name].append(done)
                anchor_feedback.append(feedback)
            else:
                kernels, workers = next((k, w) for k, w in OURS if ours_name(k, w) == name)
                runs[name].append(run_ours(subs, workdir / "out", mode, ["--kernels", kernels, "--workers",
                                                                         str(workers or cores)]))
            print(f"round {r + 1}, {name}: {runs[name][-1].seconds:.1f} s (load {runs[name][-1].load:.1f})", flush=True)
        if r == 0 and extras:
            for name, extra in [("one kernel", ["--workers", str(cores), "--single-kernel"]),
                                ("dask", ["--scheduler", "local"])]:
                runs[name] = [run_ours(subs, workdir / "out", mode, extra)]
                print(f"round 1, {name}: {runs[name][-1].seconds:.1f} s (load {runs[name][-1].load:.1f})", flush=True)
    return Figures(cores, len(made), rounds, mode, forked.resolve("auto", mode)[1], runs, anchor_feedback)


# --- BENCHMARKS.md -----------------------------------------------------------------------------------------

def _median(values) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def breakdown(f: Figures, notebook: Notebook) -> list[str]:
    """The per-notebook rows: plain, ours fresh and ours forked (with one worker per core)."""
    plain = [p for r in f.runs["plain"] for p in r.rows.get(notebook.key, [])]
    lines = [f"| {notebook.key} | plain | {_median(p.start for p in plain):.2f} | {_median(p.first for p in plain):.2f} | "
             f"{_median(p.executed - p.start - p.first for p in plain):.2f} | | {_median(p.total for p in plain):.2f} |"]
    for kernels in ("fresh", "fork"):
        rows = [row for r in f.runs[ours_name(kernels, 0)] for row in r.rows
                if row.assignment == notebook.assignment and row.notebook == notebook.name]
        t = lambda key: _median(row.timings.get(key, float("nan")) for row in rows)  # noqa: E731
        lines.append(f"| | ours {'forked' if kernels == 'fork' else kernels} | {t('start'):.2f} | {t('import'):.2f} | "
                     f"{t('cells'):.2f} | {t('feedback'):.2f} | {_median(row.seconds for row in rows):.2f} |")
    return lines


def markdown(f: Figures, students: int) -> str:
    """BENCHMARKS.md."""
    today = datetime.date.today().isoformat()
    anchor, feedback = f.seconds("stock"), statistics.median(f.anchor_feedback)
    all_cores = lambda kernels: f.seconds(ours_name(kernels, 0))  # noqa: E731
    lines = [
        "# Grading throughput",
        "",
        f"Measured by `make bench` (N={students}) on {today}: {f.cores} cores ({machine()}), "
        f"Python {platform.python_version()}, sandbox `{f.sandbox}`. {f.notebooks} submitted notebooks "
        f"({students} synthetic students x {len(layout.available())} notebooks; a third reference answers, the rest "
        f"catalogued wrong or alternative answers). Each figure is the median of {f.rounds} rounds; every round ran "
        "every configuration once, in turn. Wall-clock seconds; the load column is the 1-minute load average when "
        "each of the runs started (a figure measured on a busy machine is not a quiet machine's figure).",
        "",
        "| what | seconds | ratio | load |",
        "| --- | ---: | --- | --- |",
        f"| limit: plain nbclient execution, summed ({f.seconds('plain'):.1f} s) / {f.cores} cores | {f.limit:.1f} | | {f.loads('plain')} |",
        f"| strict limit: the same, to each notebook's last reply (no kernel shutdown) / {f.cores} cores | {f.strict_limit:.1f} | | |",
        f"| anchor: stock `nbgrader autograde`, serial | {anchor:.1f} | | {f.loads('stock')} |",
        f"| anchor + stock `generate_feedback` | {anchor + feedback:.1f} | | |",
    ]
    for kernels, workers in OURS:
        name = ours_name(kernels, workers)
        seconds = f.seconds(name)
        ratio = f"{seconds / f.limit:.2f}x limit, {anchor / seconds:.2f}x faster than the anchor"
        if workers == 0:
            ratio = f"**{seconds / f.limit:.2f}x limit**, **{anchor / seconds:.2f}x faster than the anchor** " \
                    f"({(anchor + feedback) / seconds:.2f}x with its feedback); {seconds / f.strict_limit:.2f}x the strict limit"
        words = "forked from a warm template" if kernels == "fork" else "each kernel started fresh"
        lines.append(f"| ours, {words}, `--workers {workers or f.cores}` | {seconds:.1f} | {ratio} | {f.loads(name)} |")
    if "one kernel" in f.runs:
        lines.append(f"| ours (forked), test cells in the student's kernel (no trusted kernel), one run | "
                     f"{f.seconds('one kernel'):.1f} | the trusted kernel costs **{all_cores('fork') / f.seconds('one kernel'):.2f}x** | "
                     f"{f.loads('one kernel')} |")
    if "dask" in f.runs:
        lines.append(f"| ours (forked) on a Dask `LocalCluster`, {f.cores} single-threaded worker processes, one run | "
                     f"{f.seconds('dask'):.1f} | **{f.seconds('dask') / all_cores('fork'):.2f}x the local pool** "
                     f"(cluster start-up included) | {f.loads('dask')} |")
    forked_ratio, forked_speedup = all_cores("fork") / f.limit, anchor / all_cores("fork")
    verdict = lambda met: "met" if met else "**not met**"  # noqa: E731
    lines += [
        "",
        f"Targets, forked with {f.cores} workers: at most 1.0x the limit: **{forked_ratio:.2f}x**, "
        f"{verdict(forked_ratio <= 1.0)} (stretch 0.8x: {verdict(forked_ratio <= 0.8)}); at least 2.5x faster than "
        f"stock nbgrader: **{forked_speedup:.2f}x**, {verdict(forked_speedup >= 2.5)} (stretch 3x: "
        f"{verdict(forked_speedup >= 3.0)}).",
        "",
        f"Forking: {f.forked}. Forking instead of a fresh start makes grading "
        f"**{all_cores('fresh') / all_cores('fork'):.2f}x** faster with {f.cores} workers "
        f"({f.seconds(ours_name('fresh', 1)) / f.seconds(ours_name('fork', 1)):.2f}x with one).",
        "",
        "Per notebook (medians over students and rounds; ours with one worker per core, sandboxed): *start* is to a "
        "ready kernel, *import* the notebook's first code cell (its imports: torch and the rest, already loaded in a "
        "forked kernel), *cells* the other cells (ours: the test cells in the trusted kernel included), *feedback* "
        "our feedback page; *in all* is the whole notebook (plain: with nbclient's graceful shutdown; ours: from "
        "receiving the submission to its row and page, nbgrader's bookkeeping included).",
        "",
        "| notebook | run | start s | import s | cells s | feedback s | in all s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for notebook in layout.available():
        lines += breakdown(f, notebook)
    mem = lambda name, kind: _median(r.memory.get(kind, float("nan")) for r in f.runs[name])  # noqa: E731
    lines += [
        "",
        "Memory per kernel (PSS, MB: its private pages plus its share of every page it shares; the median over "
        "kernels of each kernel's peak, sampled every 0.25 s):",
        "",
        "| run | student kernel | trusted kernel | kernel template |",
        "| --- | ---: | ---: | ---: |",
        f"| plain (fresh, unsandboxed) | {mem('plain', 'student'):.0f} | | |",
        f"| ours, each kernel fresh | {mem(ours_name('fresh', 0), 'student'):.0f} | {mem(ours_name('fresh', 0), 'trusted'):.0f} | |",
        f"| ours, forked | {mem(ours_name('fork', 0), 'student'):.0f} | {mem(ours_name('fork', 0), 'trusted'):.0f} | "
        f"{mem(ours_name('fork', 0), 'template'):.0f} |",
        "",
        "A forked kernel shares the template's pages (torch, numpy, matplotlib, IPython) until it writes them, so its "
        "PSS counts only a share of them; the template's own PSS is listed apart (one per worker).",
        "",
        "Ours includes preparing the course once per run (nbgrader generate_assignment and a gradebook), the sandbox, "
        "the trusted kernel (started once per worker, given a fresh namespace per notebook), the cheat audit and the "
        "feedback HTML; the anchor does none of the sandboxing or auditing and writes no feedback unless counted "
        "separately. Plain runs of one notebook on this machine vary by 1-2 s from run to run.",
        "",
    ]
    return "\n".join(lines)


def bench(students: int, output: Path = REPO / "BENCHMARKS.md", sandbox: str = "auto",
          keep: bool = False, rounds: int = ROUNDS, extras: bool = True) -> Figures:
    """Run the benchmark and write its figures to `output`."""
    workdir = Path(tempfile.mkdtemp(prefix="grader-bench-"))
    try:
        figures = run(students, workdir, sandbox, rounds, extras)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    kept = sections(output.read_text()) if output.exists() else {}  # what other tools write there
    output.write_text(markdown(figures, students) + "".join(f"\n{block}" for block in kept.values()))
    return figures
