"""`python -m devtools bench|notebook-time|screenshots`: what only developers run, kept out of the installed package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devtools import REPO
from grader import logs
from grader.errors import GraderError


def cmd_screenshots(args: argparse.Namespace) -> int:
    from devtools.screenshots import take

    for path in take(Path(args.out), Path(args.dest)):
        print(f"wrote {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from devtools.bench import bench

    from devtools.bench import ours_name

    figures = bench(args.students, Path(args.output), args.sandbox, args.keep, args.rounds, not args.no_extras)
    forked = figures.seconds(ours_name("fork", 0))
    print(f"ours forked with {figures.cores} workers: {forked / figures.limit:.2f}x the limit, "
          f"{figures.seconds('stock') / forked:.2f}x faster than stock nbgrader; wrote {args.output}")
    return 0


def cmd_notebook_time(args: argparse.Namespace) -> int:
    from devtools.notebook_time import median, notebook_time
    from grader.course import layout

    layout.use_course(REPO)  # this repository's notebooks, wherever the command runs
    known = {nb.name: nb for nb in layout.available()} | {nb.assignment: nb for nb in layout.available()}
    unknown = [n for n in (args.notebook, args.beside) if n not in known]
    if unknown:
        raise GraderError(f"unknown notebook {unknown[0]!r}; the course has: {', '.join(nb.name for nb in layout.available())}")
    compare = Path(args.compare) if args.compare else None
    if compare and not compare.is_file():
        raise GraderError(f"--compare {args.compare}: no such notebook")
    runs = notebook_time(known[args.notebook], known[args.beside], args.repeats, Path(args.output), compare,
                         args.compare_label)
    for version in dict.fromkeys(r.version for r in runs):
        seconds = [f"{r.seconds:.1f}" for r in runs if r.version == version]
        print(f"{args.notebook} ({version}) beside {args.beside}: {', '.join(seconds)} s (median {median(runs, version):.1f} s, "
              f"kernel CPU {median(runs, version, cpu=True):.1f} s)")
    print(f"wrote {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devtools", description="Developer tools of the course.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv: everything)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("screenshots", help="the README's screenshots of the demo's report and one feedback page "
                                            "(run `make demo` first)")
    p.add_argument("--out", default="demo/out", metavar="OUT", help="the demo's output folder")
    p.add_argument("--dest", default=str(REPO / "docs" / "screenshots"), metavar="DIR")
    p.set_defaults(func=cmd_screenshots)

    p = sub.add_parser("bench", help="grading throughput vs plain execution and stock nbgrader (writes BENCHMARKS.md)")
    p.add_argument("--students", type=int, default=12, metavar="N")
    p.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    p.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto")
    p.add_argument("--keep", action="store_true", help="keep the synthetic class and outputs")
    p.add_argument("--rounds", type=int, default=3, metavar="R", help="rounds of every configuration (medians)")
    p.add_argument("--no-extras", action="store_true", help="skip the one-kernel and Dask runs")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("notebook-time", help="a notebook run in full while another runs beside it, median of "
                                              "several runs (writes its section of BENCHMARKS.md)")
    p.add_argument("--notebook", default="attention", metavar="NAME", help="the notebook timed (name or assignment)")
    p.add_argument("--beside", default="seq2seq", metavar="NAME", help="the notebook kept running beside it")
    p.add_argument("--repeats", type=int, default=3, metavar="N")
    p.add_argument("--compare", metavar="FILE", help="another version of the notebook, timed in turns with it "
                                                      "(e.g. `git show main:solutions/...` saved to a file)")
    p.add_argument("--compare-label", metavar="TEXT", help="how BENCHMARKS.md names that version")
    p.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    p.set_defaults(func=cmd_notebook_time)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(logs.level_for(args.verbose))
    try:
        return args.func(args)
    except GraderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
