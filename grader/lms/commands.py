"""`python -m grader collect` and `python -m grader export`: thin commands over collect.py and export.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.course import layout
from grader.errors import LmsError
from grader.lms.formats import LMS_NAMES
from grader.lms.roster import DEFAULT_ID_COLUMNS


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def print_plan(result, into: Path, export: Path, stream=None) -> None:
    """What collect did, as the instructor reads it: placed, renamed, late, missing, and every unplaced entry."""
    def say(line: str = "") -> None:
        print(line, file=stream or sys.stdout)

    students = sorted({p.student for p in result.placed})
    say(f"{export.name}: {result.lms} export, {result.assignment}: {_plural(len(result.placed), 'notebook')} "
        f"from {_plural(len(students), 'student')} placed in {into}")
    for p in sorted(result.placed, key=lambda p: (p.student, p.notebook)):
        info = result.students.get(p.student)
        flags = ["late" if info and info.late else "", f"submitted {info.submitted_at}" if info and info.submitted_at else ""]
        extra = "; ".join(filter(None, [p.why] + flags))
        say(f"  {p.student}/{result.assignment}/{p.notebook}.ipynb  <- {p.entry}" + (f"  ({extra})" if extra else ""))
    if result.not_on_roster:
        say("not on the roster (placed under their LMS id): " +
            ", ".join(f"{s} ({result.students[s].name})" if result.students[s].name else s
                      for s in result.not_on_roster))
    if result.not_submitted:
        say(f"on the roster without a submission (autograde gives them not_submitted rows): {', '.join(result.not_submitted)}")
    if result.other_assignments:
        say(f"left alone: {_plural(result.other_assignments, 'file')} of other assignments")
    if result.skipped:
        say(f"ignored: {_plural(len(result.skipped), 'entry')} of OS or LMS debris (__MACOSX, .DS_Store, checkpoints)")
    if result.unplaced:
        say(f"not placed ({len(result.unplaced)}):")
        for u in result.unplaced:
            say(f"  {u.student or '-'}: {u.entry}: {u.why}")


def cmd_collect(args: argparse.Namespace) -> int:
    from grader.lms.collect import collect
    from grader.lms.roster import read_extensions, read_roster

    roster = read_roster(Path(args.roster), args.id_column) if args.roster else None
    if args.id_column and not args.roster:
        raise LmsError("--id-column names a column of the roster: give --roster too")
    due = _due(args.due)
    extensions = read_extensions(Path(args.extensions)) if args.extensions else None
    export, into = Path(args.export), Path(args.into)
    result = collect(export, args.assignment, into, roster, args.lms, due, extensions)
    if roster is not None:
        for note in roster.notes:
            print(f"roster: {note}")
    print_plan(result, into, export)
    if not result.placed:
        print(f"error: nothing from {export} could be placed for {args.assignment} (see above); nothing was written",
              file=sys.stderr)
        return 1
    from grader.lms.manifest import manifest_path
    print(f"wrote {manifest_path(into)}")
    return 0


def _due(text: str | None):
    from grader.lms.times import parse_time

    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise LmsError(f"--due: {exc}") from None


def cmd_export(args: argparse.Namespace) -> int:
    from grader.lms.export import export, parse_mapping
    from grader.lms.late import parse_policy
    from grader.lms.roster import read_extensions

    policy = parse_policy(args.late_penalty) if args.late_penalty else None
    extensions = read_extensions(Path(args.extensions)) if args.extensions else None
    points = "scale" if args.scale_to_lms else "as_graded" if args.points_as_graded else None
    out = Path(args.out)
    result = export(out, args.format, Path(args.to), Path(args.roster) if args.roster else None,
                    parse_mapping(args.map), args.assignment, policy, _due(args.due), extensions,
                    Path(args.feedback_zip) if args.feedback_zip else None, args.id_column, points=points,
                    ungraded=args.ungraded)
    for assignment, column in result.columns.items():
        print(f"{assignment} -> {column}")
    if policy is not None:
        print(f"late policy: {policy.describe()} (kept in {out / 'policy.json'} for the next export)")
    if result.left_out:
        print(f"left out of {result.path.name} (no grades in {out} yet; the LMS keeps what it has): "
              f"{', '.join(result.left_out)}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"wrote {result.path} ({_plural(result.written, 'grade')}) and {result.details} (raw scores, late penalties)")
    report = args.refresh_report(out) if args.refresh_report else None
    print(f"brought up to date: {out / 'grades.csv'}, {_plural(result.pages, 'feedback page')}"
          + (f", {report}" if report else ""))
    for path in result.feedback:
        print(f"wrote {path}")
    return 0


def add_commands(sub, refresh_report=None) -> None:
    """Add `collect` and `export` to the grader's argparse subcommands; `refresh_report(out)` rebuilds the
    class report after an export (the report is built above this package)."""
    ids = "; ".join(f"{k}: {' then '.join(v)}" for k, v in DEFAULT_ID_COLUMNS.items())
    p = sub.add_parser("collect", help="lay out an LMS export (zip or folder) as SUBMISSIONS/<student>/<assignment>/")
    p.add_argument("export", metavar="EXPORT", help="the zip the LMS gave you, or the folder it unzipped to")
    p.add_argument("--assignment", required=True, metavar="NAME", choices=layout.assignments(),
                   help=f"the course assignment the export holds ({', '.join(layout.assignments())})")
    p.add_argument("--into", required=True, metavar="SUBMISSIONS", help="where to lay the notebooks out")
    p.add_argument("--roster", metavar="FILE", help="Canvas gradebook export, Moodle grading worksheet, or "
                                                    "a CSV student_id,lms_id[,name]; without it the LMS id is the student id")
    p.add_argument("--lms", choices=LMS_NAMES, help="the export's layout (default: detected)")
    p.add_argument("--id-column", metavar="NAME", help=f"the roster column holding student ids (default, the first filled: {ids})")
    p.add_argument("--due", metavar="TIME", help="deadline (e.g. 2025-03-07 23:59, local time): with submission "
                                                 "times, it decides the late flag")
    p.add_argument("--extensions", metavar="FILE", help="CSV student_id,due: a student's own deadline")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("export", help="write OUT/grades.csv in Canvas's, Moodle's or nbgrader's import format")
    p.add_argument("out", metavar="OUT", help="the folder autograde wrote")
    p.add_argument("--format", required=True, choices=("canvas", "moodle", "nbgrader"))
    p.add_argument("--roster", metavar="FILE", help="canvas: the gradebook export; moodle: the assignment's grading "
                                                    "worksheet; nbgrader: optional, for names and emails")
    p.add_argument("--to", required=True, metavar="FILE", help="the CSV to write (and FILE.details.csv beside it)")
    p.add_argument("--map", action="append", metavar="ASSIGNMENT=COLUMN",
                   help='canvas: the gradebook column of an assignment, e.g. 01_packed_sequences="Packed sequences (4242)" '
                        "(repeatable; default: the column whose title reads as the assignment's name)")
    p.add_argument("--assignment", action="append", metavar="NAME", help="export only this assignment (moodle: the worksheet's)")
    p.add_argument("--late-penalty", metavar="RULE", help="zero, 20%% (anything late), 10%%/day[,max=50%%] (needs --due), "
                                                          "or none; kept in OUT for the next export")
    p.add_argument("--due", metavar="TIME", help="deadline (e.g. 2025-03-07 23:59, local time)")
    p.add_argument("--extensions", metavar="FILE", help="CSV student_id,due: a student's own deadline")
    p.add_argument("--feedback-zip", metavar="FILE",
                   help="also write the feedback pages laid out for the LMS's upload (Canvas: Re-Upload Submissions; "
                        "Moodle: multiple feedback files in a zip; nbgrader: its course folder's feedback/), one zip "
                        "per assignment")
    p.add_argument("--id-column", metavar="NAME", help="the roster column holding student ids (default: collect's)")
    p.add_argument("--ungraded", choices=("refuse", "blank"), default="refuse",
                   help="while written answers are left to grade: refuse (default: nothing is written, they are "
                        "listed), or blank (those students' assignments are left blank, which the LMS leaves as it was)")
    points = p.add_mutually_exclusive_group()
    points.add_argument("--scale-to-lms", action="store_true",
                        help="where the LMS's points possible differ from the grader's maximum: scale scores to the LMS's")
    points.add_argument("--points-as-graded", action="store_true",
                        help="where they differ: write scores as graded (set the assignment's points in the LMS to "
                             "the grader's maximum)")
    p.set_defaults(func=cmd_export, refresh_report=refresh_report)
