"""The demo's LMS round trip: demo/submissions as Canvas would export it, then collect, autograde, export.

demo/canvas/<assignment>.zip are what Canvas's "Download Submissions" gives for each assignment (one
late upload, a browser-renamed notebook, a stray script), and demo/canvas/gradebook.csv is its
gradebook export (with a student who submitted nothing). They are written from demo/submissions by
`write_canvas_exports` and committed; `python -m grader demo --rebuild` writes them again.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from grader.course import layout

GRADEBOOK = "gradebook.csv"
# student folder -> (Canvas's "Student", its user id, its lastfirst file-name part); SIS User ID = the folder
CLASS = {"ada": ("Lovelace, Ada", 1001, "lovelaceada"), "ben": ("Bitdiddle, Ben", 1002, "bitdiddleben"),
         "cat": ("Hopper, Cat", 1003, "hoppercat"), "dan": ("Dijkstra, Dan", 1004, "dijkstradan")}
COLUMNS = {"01_packed_sequences": "Packed sequences (4242)", "02_seq2seq": "Seq2seq (4243)",
           "03_bilstm_tagger": "BiLSTM tagger (4244)", "04_attention": "Attention (4245)",
           "05_real_text": "Real text (4246)"}
LATE = {("ben", "02_seq2seq")}  # uploaded after the deadline
STRAYS = {("cat", "01_packed_sequences"): ("scratch.py", b"# trying things out\nprint('hello')\n")}
FIXED_TIME = (2025, 3, 7, 12, 0, 0)  # the zips are reproducible


def canvas_entries(submissions: Path | None = None) -> dict[str, dict[str, bytes]]:
    """{assignment: {Canvas file name: bytes}} for every file in `submissions` (default: the course's demo class)."""
    submissions = submissions or layout.course().demo_submissions
    exports: dict[str, dict[str, bytes]] = {a: {} for a in COLUMNS}
    attachment = 50000
    for student in sorted(CLASS):
        name, uid, lastfirst = CLASS[student]
        for assignment in COLUMNS:
            folder = submissions / student / assignment
            files = sorted(folder.iterdir()) if folder.is_dir() else []
            uploads = [(p.name, p.read_bytes()) for p in files]
            if (student, assignment) in STRAYS:
                uploads.append(STRAYS[(student, assignment)])
            for filename, data in uploads:
                attachment += 1
                late = "LATE_" if (student, assignment) in LATE else ""
                exports[assignment][f"{lastfirst}_{late}{uid}_{attachment}_{filename}"] = data
    return exports


def gradebook_text() -> str:
    """Canvas's gradebook export for the demo class, Points Possible set to each notebook's points."""
    import nbformat

    from grader.course.cells import facts_of

    points = {a: sum(facts_of(nbformat.read(nb.source, as_version=4)).max_score for nb in layout.notebooks_of(a))
              for a in COLUMNS}
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *COLUMNS.values(),
                     "Current Points", "Final Points"])
    writer.writerow(["    Points Possible", "", "", "", "", *(f"{points[a]:.2f}" for a in COLUMNS),
                     "(read only)", "(read only)"])
    for student, (name, uid, _) in sorted(CLASS.items()):
        writer.writerow([name, uid, student, f"{student}@example.edu", "Sequence models", *([""] * len(COLUMNS)),
                         "0.00", "0.00"])
    return buf.getvalue()


def write_canvas_exports(dest: Path | None = None, submissions: Path | None = None) -> list[Path]:
    """Write demo/canvas/<assignment>.zip and gradebook.csv from `submissions` (defaults: the course's demo)."""
    dest = dest or layout.course().demo_canvas
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for assignment, files in canvas_entries(submissions).items():
        path = dest / f"{assignment}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name in sorted(files):
                info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o100644 << 16
                z.writestr(info, files[name])
        written.append(path)
    (dest / GRADEBOOK).write_text(gradebook_text(), encoding="utf-8")
    return written + [dest / GRADEBOOK]


def round_trip(out: Path, *, timeout: int | None = 20, workers: int | None = None, assignments: list[str] | None = None,
               exports: Path | None = None, late_penalty: str = "20%"):
    """collect each Canvas zip (default: the course's demo/canvas) into OUT/collected, autograde it into OUT (with
    the written answers an instructor graded in formgrader: demo/manual_grades.csv), export OUT/canvas_import.csv
    leaving blank what is still to grade; prints each step's command as it runs it, what the step did, and
    returns the rows."""
    from grader.demo.build import seed_marks
    from grader.lms.collect import collect
    from grader.lms.commands import print_plan
    from grader.lms.export import export
    from grader.lms.late import parse_policy
    from grader.lms.roster import read_roster
    from grader.run.autograde import autograde

    shown = layout.course().shown
    exports = exports or layout.course().demo_canvas
    out = Path(out)
    into = out / "collected"
    roster = read_roster(exports / GRADEBOOK)
    gradebook = shown(exports / GRADEBOOK)
    chosen = [a for a in COLUMNS if a in {nb.assignment for nb in layout.available()}
              and (assignments is None or a in assignments)]
    for assignment in chosen:
        zip_path = exports / f"{assignment}.zip"
        print(f"$ python -m grader collect {shown(zip_path)} --assignment {assignment} --into {into} --roster {gradebook}")
        print_plan(collect(zip_path, assignment, into, roster), into, zip_path)
    seed_marks(out)  # as if the written answers had been graded in formgrader (python -m grader formgrader OUT)
    options = "".join(f" --assignment {a}" for a in chosen) if assignments is not None else ""
    options += (f" --timeout {timeout}" if timeout is not None else "") + (f" --workers {workers}" if workers else "")
    print(f"$ python -m grader autograde {into} --out {out}{options}")  # the call below, option for option
    rows = autograde(into, out, timeout=timeout, workers=workers, assignment=chosen if assignments is not None else None)
    target = out / "canvas_import.csv"
    picked = "".join(f" --assignment {a}" for a in chosen) if assignments is not None else ""
    print(f"$ python -m grader export {out} --format canvas --roster {gradebook} --to {target}{picked} "
          f"--late-penalty {late_penalty} --ungraded blank")
    result = export(out, "canvas", target, exports / GRADEBOOK, assignments=chosen if assignments is not None else None,
                    policy=parse_policy(late_penalty), ungraded="blank")
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"wrote {target} (upload it in Canvas: Grades > Import) and {result.details}")
    return rows
