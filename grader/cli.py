"""`python -m grader ...`: thin argparse commands over the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader import logs, version
from grader.course import layout
from grader.errors import GraderError


def cmd_release(args: argparse.Namespace) -> int:
    from grader.course.release import release

    course = layout.course().checked()
    done = release(args.assignment, whole_course=args.whole_course)
    for path in done.notebooks:
        print(f"released {course.shown(path)}")
    for bundle in done.bundles:
        several = f" ({', '.join(bundle.assignments)})" if len(bundle.assignments) > 1 else ""
        print(f"bundle {course.shown(bundle.path)}{several}")
        for given in bundle.given:
            print(f"  note: {given}: hand it out after {given.earlier.assignment} is due")
    return 0


def print_table(rows) -> None:
    """The grade table, as `make demo` shows it."""
    headers = ["student_id", "assignment", "notebook", "score", "status"]
    lines = [[r.student_id, r.assignment, r.notebook,
              f"{r.score:g}/{r.max_score:g}" + (f" ({r.to_grade:g} to grade)" if r.to_grade else ""), r.status]
             for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)]
    for line in [headers] + lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())


# Run in the course folder, so that the lock holds Dask to the versions the course was tested with.
CLUSTER_EXTRA = "pip install -c constraints.txt 'seqmodels-course[cluster]'"
COURSE_HELP = ("the course folder (solutions/, notebooks/, demo/, the cache); default: the working directory, "
               "never where the grader is installed")


def require_dask() -> None:
    """--scheduler needs Dask, an optional extra: say how to install it when it is absent."""
    import importlib.util

    missing = [name for name in ("dask", "distributed") if importlib.util.find_spec(name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise GraderError(f"--scheduler grades on a Dask cluster, and {' and '.join(missing)} {verb} not installed "
                          f"here: in the course folder, {CLUSTER_EXTRA} (in the course's repository, `make` does it)")


def cmd_autograde(args: argparse.Namespace) -> int:
    from grader.run.autograde import autograde

    layout.course().checked()
    if args.scheduler is not None:
        require_dask()

    rows = autograde(Path(args.submissions), Path(args.out), workers=args.workers, timeout=args.timeout,
                     notebook_timeout=args.notebook_timeout, scheduler=args.scheduler, split=not args.single_kernel,
                     assignment=args.assignment, student=args.student, sandbox=args.sandbox,
                     keep_scratch=args.keep_scratch, kernels=args.kernels)
    print_table(rows)
    print(f"\nwrote {Path(args.out) / 'grades.csv'}, {Path(args.out) / 'report.html'} and feedback/")
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    from grader.run.refresh import refresh

    done = refresh(Path(args.out))
    print(f"wrote {Path(args.out) / 'grades.csv'} and {done.report}; "
          f"{len(done.pages)} feedback page(s) brought up to date")
    return 0


def refresh_report(out: Path) -> Path:
    """The class report rebuilt from OUT (export calls it once grades.csv and the pages are up to date)."""
    from grader.lms.grades import class_grades
    from grader.run.refresh import write_report

    return write_report(out, class_grades(out))


def cmd_validate(args: argparse.Namespace) -> int:
    from grader.course.validate import summary, validate

    paths = []
    for given in args.paths:
        path = Path(given)
        if not path.exists():
            raise GraderError(f"{path}: no such file or folder")
        paths += sorted(path.rglob("*.ipynb")) if path.is_dir() else [path]
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    if not paths:
        raise GraderError(f"no notebooks under {', '.join(args.paths)}")
    ok = True
    for path in paths:
        results, changed = validate(path, timeout=args.timeout)
        print(summary(path, results, changed))
        ok = ok and all(r.outcome not in ("fail", "unanswered") for r in results)
    return 0 if ok else 1


def cmd_lab(args: argparse.Namespace) -> int:
    from grader.course.lab import lab

    root = Path(args.root) if args.root is not None else layout.course().checked().notebooks
    return lab(root.resolve(), args.port, not args.no_browser, args.jupyter_args)


def cmd_formgrader(args: argparse.Namespace) -> int:
    from grader.manual.course import build, require_results
    from grader.manual.lab import run_formgrader
    from grader.run.autograde import prepared_course
    from grader.run.refresh import refresh

    out = Path(args.out).resolve()
    require_results(out)
    root = build(out, prepared_course(layout.available()))
    print(f"formgrader on {root}: grade the written answers, then stop JupyterLab (Ctrl-C) to bring grades.csv, "
          f"the feedback pages and the report up to date")
    status = run_formgrader(root, args.port, not args.no_browser, args.jupyter_args)
    rows = refresh(out).grades.rows
    left = [w for r in rows for w in r.written if w.score is None]
    print(f"updated {out / 'grades.csv'}, feedback/ and report.html: "
          f"{len(left)} written answer{'s' if len(left) != 1 else ''} left to grade")
    return status


def cmd_demo(args: argparse.Namespace) -> int:
    from grader.demo.build import rebuild
    from grader.demo.round_trip import round_trip, write_canvas_exports

    course = layout.course().checked()
    if args.rebuild or not course.demo_submissions.exists():
        rebuild()
        write_canvas_exports()  # demo/canvas: the same class as Canvas exports it
        print(f"wrote sample submissions to {course.shown(course.demo_submissions)} and "
              f"{course.shown(course.demo_canvas)}")
    out = Path(args.out) if args.out is not None else course.root / "demo" / "out"
    rows = round_trip(out, timeout=args.timeout, workers=args.workers, assignments=args.assignment)
    print_table(rows)
    print(f"\nfeedback in {out / 'feedback'}, class report {out / 'report.html'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from grader.kernel.forked import MODES as KERNEL_MODES
    from grader.kernel.sandbox import MODES
    from grader.grading.settings import (CELL_FACTOR, CELL_FLOOR, NOTEBOOK_FACTOR, NOTEBOOK_FLOOR,
                                         NOTEBOOK_TIMEOUT_CELLS, RETRY_FACTOR, RETRY_FLOOR)

    parser = argparse.ArgumentParser(prog="python -m grader", description="Release and autograde the course's notebooks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv: everything)")
    parser.add_argument("--course", default=None, metavar="DIR", help=COURSE_HELP)
    # --course after the command name too; SUPPRESS keeps a subcommand from resetting the value given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course", default=argparse.SUPPRESS, metavar="DIR", help=COURSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", parents=[common],
                       help="regenerate notebooks/ from solutions/ and write one student bundle per assignment, "
                            "dist/<assignment>.zip")
    p.add_argument("--assignment", action="append", metavar="NAME",
                   help="release only this assignment (repeatable; default: every assignment)")
    p.add_argument("--whole-course", action="store_true",
                   help="also write dist/course.zip, every released assignment in one bundle (later notebooks give "
                        "earlier answers as code: release says which)")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("autograde", parents=[common],
                       help="grade SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb into OUT")
    p.add_argument("submissions", metavar="SUBMISSIONS")
    p.add_argument("--out", required=True, metavar="OUT", help="where grades.csv, feedback/ and report.html go")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="notebooks graded at once: local processes (default: CPU count); with --scheduler, the most "
                        "tasks in flight on the cluster (default: twice its worker threads)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="grade on a Dask cluster: tcp://HOST:PORT of a running `dask scheduler`, or `local` for a "
                        "LocalCluster of one single-threaded worker process per core (default: local processes); "
                        f"needs the cluster extra: {CLUSTER_EXTRA}")
    p.add_argument("--timeout", type=int, default=None, metavar="SECONDS",
                   help=f"every cell's time limit (default: each cell's own, max({CELL_FLOOR} s, {CELL_FACTOR} x the "
                        f"reference's time), and max({RETRY_FLOOR} s, {RETRY_FACTOR} x) in a later cell calling an "
                        f"exercise that timed out)")
    p.add_argument("--notebook-timeout", type=int, default=None, metavar="SECONDS",
                   help=f"time limit for a whole notebook (default max({NOTEBOOK_FLOOR} s, {NOTEBOOK_FACTOR} x the "
                        f"reference's), or {NOTEBOOK_TIMEOUT_CELLS} x --timeout)")
    p.add_argument("--assignment", action="append", metavar="NAME",
                   help="grade only this assignment (repeatable; default: the assignments present in SUBMISSIONS)")
    p.add_argument("--student", action="append", metavar="ID", help="(re)grade only this student; other rows in OUT are kept")
    p.add_argument("--sandbox", choices=MODES, default="auto", help="auto: bubblewrap where it works (required when CI is set)")
    p.add_argument("--keep-scratch", action="store_true", help="keep each notebook's grading folder (to debug an `error` row)")
    p.add_argument("--kernels", choices=KERNEL_MODES, default="auto",
                   help="fork: each student kernel forked from a warm template per worker (torch imported once); "
                        "fresh: a new interpreter per notebook; auto: fork where it works (root, bwrap), else fresh")
    # The tests in the student's own kernel, as stock nbgrader runs them: for the benchmark's comparison only.
    p.add_argument("--single-kernel", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_autograde)

    p = sub.add_parser("demo", parents=[common], help="collect the sample class from demo/canvas, grade it, export "
                                                       "Canvas's import file and print the grade table")
    p.add_argument("--out", default=None, metavar="OUT", help="default: demo/out in the course folder")
    p.add_argument("--timeout", type=int, default=20, metavar="SECONDS")
    p.add_argument("--workers", type=int, default=None, metavar="N")
    p.add_argument("--assignment", action="append", metavar="NAME", help="only this assignment (repeatable)")
    p.add_argument("--rebuild", action="store_true", help="write demo/submissions again from the notebooks")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("validate", help="run a notebook's tests as nbgrader's Validate button does, with a summary")
    p.add_argument("paths", nargs="+", metavar="PATH", help="notebooks, or folders to search for them")
    p.add_argument("--timeout", type=int, default=120, metavar="SECONDS", help="per-cell time limit")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("lab", parents=[common], help="JupyterLab as students see it (Validate button, no instructor "
                                                      "panels); other options go to jupyter lab")
    p.add_argument("root", nargs="?", default=None, metavar="DIR", help="default: notebooks/ in the course folder")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("formgrader", parents=[common], help="grade the written answers in nbgrader's formgrader (JupyterLab on OUT/course); "
                                          "other options go to jupyter lab")
    p.add_argument("out", metavar="OUT", help="the folder autograde wrote")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_formgrader)

    p = sub.add_parser("refresh", help="bring grades.csv, every feedback page's grade and report.html up to date with "
                                       "OUT's overrides, late policies and written answers graded since, without "
                                       "grading again")
    p.add_argument("out", metavar="OUT", help="the folder autograde wrote")
    p.set_defaults(func=cmd_refresh)

    from grader.lms.commands import add_commands  # collect, export: the LMS round trip
    add_commands(sub, refresh_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command not in ("lab", "formgrader"):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.jupyter_args = unknown
    logs.configure(logs.level_for(args.verbose))
    try:
        with layout.using_course(Path(args.course) if args.course is not None else None):
            return args.func(args)
    except GraderError as exc:  # anything else is a bug and keeps its traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
