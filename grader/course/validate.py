"""Validate a notebook as a student would before submitting: nbgrader's validate, summarised."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.course import cells


@dataclass(frozen=True)
class TestResult:
    """One test cell of a validated notebook."""

    grade_id: str
    points: float
    outcome: str  # "pass", "fail" or "hidden"; a written answer: "written", or "unanswered" (left as released)
    error: str = ""


def validate(path: Path, timeout: int = 120) -> tuple[list[TestResult], list[str]]:
    """Run the notebook with nbgrader's Validator; each test cell's outcome, and cells whose locked code changed."""
    from nbgrader.validator import Validator
    from traitlets.config import Config

    from grader.course.prepared import ensure_tools_on_path

    ensure_tools_on_path()
    c = Config()
    c.Validator.validate_all = True
    c.Execute.timeout = timeout
    found = Validator(config=c).validate(str(path))
    nb = nbformat.read(path, as_version=4)
    failed = {r["source"]: r.get("error", "") for r in found.get("failed", [])}
    changed = [r["source"].splitlines()[0] if r["source"] else "" for r in found.get("changed", [])]
    changed += [f"{r['old_type']} cell became {r['new_type']}" for r in found.get("type_changed", [])]
    results = []
    for cell in nb.cells:
        if cells.is_written(cell):
            answered = "unanswered" if cell.source.strip() in failed else "written"
            results.append(TestResult(cells.grade_id(cell), cells.points(cell), answered))
            continue
        if not cells.is_test(cell):
            continue
        source = cell.source.strip()
        if source in failed:
            results.append(TestResult(cells.grade_id(cell), cells.points(cell), "fail", failed[source]))
        elif cells.is_hidden_in_release(cell.source):
            results.append(TestResult(cells.grade_id(cell), cells.points(cell), "hidden"))
        else:
            results.append(TestResult(cells.grade_id(cell), cells.points(cell), "pass"))
    return results, changed


def last_error_line(error: str) -> str:
    """The `Type: message` line of a traceback (nbgrader gives it as HTML), as plain text."""
    from grader.course.hidden import html_text, readable

    lines = [line for line in html_text(readable(error)).strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "error"
    if last.startswith("NotImplementedError"):
        return "NotImplementedError: the exercise is not done yet (replace `raise NotImplementedError()`)"
    return last


def summary(path: Path, results: list[TestResult], changed: list[str]) -> str:
    """What a student reads: which tests pass, which fail and why, what is left for grading."""
    lines = [str(path)]
    for r in results:
        mark = {"pass": "PASS", "fail": "FAIL", "hidden": "    ", "written": "    ", "unanswered": "TODO"}[r.outcome]
        detail = {"pass": "", "fail": f": {last_error_line(r.error)}", "hidden": ": hidden tests, run when you are graded",
                  "written": ": your written answer, graded by your instructor",
                  "unanswered": ": a written question you have not answered yet"}
        points = f"{r.points:g} point" + ("" if r.points == 1 else "s")
        lines.append(f"  {mark} {r.grade_id} ({points}){detail[r.outcome]}")
    for c in changed:
        lines.append(f"  CHANGED a read-only cell was edited ({c}): it is restored when you are graded")
    visible = [r for r in results if r.outcome in ("pass", "fail")]
    passed = sum(r.outcome == "pass" for r in visible)
    unanswered = sum(r.outcome == "unanswered" for r in results)
    ready = passed == len(visible) and not unanswered
    left = f" ({unanswered} written question{'s' if unanswered != 1 else ''} to answer)" if unanswered else ""
    lines.append(f"  {passed} of {len(visible)} visible tests pass{left}" + (": ready to submit." if ready else "."))
    return "\n".join(lines)
