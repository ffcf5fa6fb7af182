"""`python -m grader formgrader OUT`: JupyterLab on OUT/course with nbgrader's formgrader open.

Formgrader works on two conditions: the course lies under the server's root (here it is the root), and
`nbgrader_config.py` is in the folder JupyterLab starts in (OUT/course). The server runs with this package's
instructor config (formgrader on, the student panels off) ahead of the user's own. When it stops (Ctrl-C),
the caller brings grades.csv, the pages and the report up to date with what was graded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from grader.course.lab import lab_command

INSTRUCTOR_CONFIG = Path(__file__).resolve().parent / "jupyter"
OPEN_AT = "/lab?formgrader=true"  # JupyterLab's route to nbgrader's formgrader panel


def instructor_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the instructor's Jupyter: formgrader's config first on JUPYTER_CONFIG_PATH, this
    interpreter's tools first on PATH."""
    env = dict(os.environ if base is None else base)
    paths = [str(INSTRUCTOR_CONFIG)] + [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(paths)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("NBGRADER_EXECUTION", None)
    return env


def formgrader_command(root: Path, port: int | None = None, open_browser: bool = True,
                       extra: list[str] = ()) -> list[str]:
    """`jupyter lab` on the course at `root`, opening formgrader."""
    return lab_command(root, port, open_browser, [f"--ServerApp.default_url={OPEN_AT}", *extra])


def run_formgrader(root: Path, port: int | None = None, open_browser: bool = True, extra: list[str] = ()) -> int:
    """JupyterLab with formgrader on the course at `root`, until it stops; its exit status.

    Ctrl-C reaches JupyterLab from the terminal (it asks, then stops) and is ignored here meanwhile; a SIGTERM
    sent here is passed on. Either way this returns once JupyterLab has stopped, so the caller can go on.
    """
    proc = subprocess.Popen(formgrader_command(root, port, open_browser, extra), cwd=root, env=instructor_env())
    handlers = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
                signal.SIGTERM: signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signum))}
    try:
        return proc.wait()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
