"""`python -m grader ...`: thin argparse commands over the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader import logs
from grader.course import layout
from grader.errors import GraderError


def cmd_release(args: argparse.Namespace) -> int:
    from grader.course.release import release

    for path in release():
        print(f"released {path.relative_to(layout.ROOT)}")
    print(f"student bundle {layout.STUDENT_BUNDLE.relative_to(layout.ROOT)}")
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


def cmd_autograde(args: argparse.Namespace) -> int:
    from grader.run.autograde import autograde

    rows = autograde(Path(args.submissions), Path(args.out), workers=args.workers, timeout=args.timeout,
                     notebook_timeout=args.notebook_timeout, scheduler=args.scheduler, split=not args.single_kernel,
                     assignment=args.assignment, student=args.student, sandbox=args.sandbox,
                     keep_scratch=args.keep_scratch)
    print_table(rows)
    print(f"\nwrote {Path(args.out) / 'grades.csv'}, {Path(args.out) / 'report.html'} and feedback/")
    return 0


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

    return lab(Path(args.root).resolve(), args.port, not args.no_browser, args.jupyter_args)


def cmd_formgrader(args: argparse.Namespace) -> int:
    from grader.manual.course import build, require_results
    from grader.manual.lab import run_formgrader
    from grader.run.autograde import prepared_course, refresh_class_outputs

    out = Path(args.out).resolve()
    require_results(out)
    root = build(out, prepared_course(layout.available()))
    print(f"formgrader on {root}: grade the written answers, then stop JupyterLab (Ctrl-C) to bring grades.csv, "
          f"the feedback pages and the report up to date")
    status = run_formgrader(root, args.port, not args.no_browser, args.jupyter_args)
    rows = refresh_class_outputs(out)
    left = [w for r in rows for w in r.written if w.score is None]
    print(f"updated {out / 'grades.csv'}, feedback/ and report.html: "
          f"{len(left)} written answer{'s' if len(left) != 1 else ''} left to grade")
    return status


def cmd_demo(args: argparse.Namespace) -> int:
    from grader.demo.build import rebuild
    from grader.demo.round_trip import round_trip, write_canvas_exports

    if args.rebuild or not layout.DEMO_SUBMISSIONS.exists():
        rebuild()
        write_canvas_exports()  # demo/canvas: the same class as Canvas exports it
        print(f"wrote sample submissions to {layout.DEMO_SUBMISSIONS.relative_to(layout.ROOT)} and demo/canvas")
    rows = round_trip(Path(args.out), timeout=args.timeout, workers=args.workers)  # collect, autograde, export
    print_table(rows)
    print(f"\nfeedback in {Path(args.out) / 'feedback'}, class report {Path(args.out) / 'report.html'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from grader.kernel.sandbox import MODES
    from grader.run.autograde import DEFAULT_TIMEOUT, NOTEBOOK_TIMEOUT_CELLS

    parser = argparse.ArgumentParser(prog="python -m grader", description="Release and autograde the course's notebooks.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv: everything)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate notebooks/ from solutions/ and build dist/student.zip")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("autograde", help="grade SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb into OUT")
    p.add_argument("submissions", metavar="SUBMISSIONS")
    p.add_argument("--out", required=True, metavar="OUT", help="where grades.csv, feedback/ and report.html go")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="notebooks graded at once: local processes (default: CPU count); with --scheduler, the most "
                        "tasks in flight on the cluster (default: twice its worker threads)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="grade on a Dask cluster: tcp://HOST:PORT of a running `dask scheduler`, or `local` for a "
                        "LocalCluster of one single-threaded worker process per core (default: local processes)")
    p.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, metavar="SECONDS", help=f"per-cell time limit (default {DEFAULT_TIMEOUT})")
    p.add_argument("--notebook-timeout", type=int, default=None, metavar="SECONDS",
                   help=f"time limit for a whole notebook (default {NOTEBOOK_TIMEOUT_CELLS} x --timeout)")
    p.add_argument("--assignment", action="append", metavar="NAME", help="grade only this assignment (repeatable)")
    p.add_argument("--student", action="append", metavar="ID", help="(re)grade only this student; other rows in OUT are kept")
    p.add_argument("--sandbox", choices=MODES, default="auto", help="auto: bubblewrap where it works (required when CI is set)")
    p.add_argument("--keep-scratch", action="store_true", help="keep each notebook's grading folder (to debug an `error` row)")
    # The tests in the student's own kernel, as stock nbgrader runs them: for the benchmark's comparison only.
    p.add_argument("--single-kernel", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_autograde)

    p = sub.add_parser("demo", help="collect the sample class from demo/canvas, grade it, export Canvas's import file "
                                    "and print the grade table")
    p.add_argument("--out", default="demo/out", metavar="OUT")
    p.add_argument("--timeout", type=int, default=20, metavar="SECONDS")
    p.add_argument("--workers", type=int, default=None, metavar="N")
    p.add_argument("--rebuild", action="store_true", help="write demo/submissions again from the notebooks")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("validate", help="run a notebook's tests as nbgrader's Validate button does, with a summary")
    p.add_argument("paths", nargs="+", metavar="PATH", help="notebooks, or folders to search for them")
    p.add_argument("--timeout", type=int, default=120, metavar="SECONDS", help="per-cell time limit")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("lab", help="JupyterLab as students see it (Validate button, no instructor panels); "
                                   "other options go to jupyter lab")
    p.add_argument("root", nargs="?", default=str(layout.NOTEBOOKS), metavar="DIR")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("formgrader", help="grade the written answers in nbgrader's formgrader (JupyterLab on OUT/course); "
                                          "other options go to jupyter lab")
    p.add_argument("out", metavar="OUT", help="the folder autograde wrote")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_formgrader)

    from grader.lms.commands import add_commands  # collect, export: the LMS round trip
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command not in ("lab", "formgrader"):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.jupyter_args = unknown
    logs.configure(logs.level_for(args.verbose))
    try:
        return args.func(args)
    except GraderError as exc:  # anything else is a bug and keeps its traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
