"""Written questions: the rubric file beside a source notebook, and the hash that ties a grade to an answer.

A written question is an nbgrader "manually graded answer" cell (cells.is_written): the student writes
prose, a person grades it in formgrader. Its rubric, what the grader reads beside each answer, lives in
`solutions/<assignment>/rubrics.toml`, one table per question named by the answer cell's grade id:

    [written_why_pack]
    rubric = \"\"\"
    1 point: ...
    \"\"\"

The file is never released, and its lines are secret lines (cells.secrets_of): no student page shows them.
A grade given to an answer is kept with the hash of the answer's text (`answer_hash`), so it follows that
text through regrading and is not carried over to a changed answer.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

from grader.course.layout import RUBRICS_FILE
from grader.errors import GraderError

__all__ = ["RUBRICS_FILE", "answer_hash", "answer_text", "read_rubrics"]


def read_rubrics(path: Path) -> dict[str, str]:
    """{grade id: rubric} from a rubrics file; {} when there is none."""
    if not path.exists():
        return {}
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GraderError(f"{path}: not a valid TOML file ({exc})") from None
    found = {}
    for gid, table in tables.items():
        if not isinstance(table, dict) or not isinstance(table.get("rubric"), str):
            raise GraderError(f'{path}: [{gid}] needs a `rubric = """..."""` string')
        found[gid] = table["rubric"].strip()
    return found


def answer_text(source: str) -> str:
    """An answer as it is compared: line endings and the space around it do not count."""
    return source.replace("\r\n", "\n").replace("\r", "\n").strip()


def answer_hash(source: str) -> str:
    """The SHA-256 of an answer's text (`answer_text`), as hex: the key its grade is kept under."""
    return hashlib.sha256(answer_text(source).encode("utf-8")).hexdigest()
