"""JupyterLab as a student meets it: nbgrader's Validate button, none of the instructor's panels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from grader.course.layout import STUDENT_JUPYTER_CONFIG as STUDENT_CONFIG


def student_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a student's Jupyter: our config dir first on JUPYTER_CONFIG_PATH."""
    env = dict(os.environ if base is None else base)
    paths = [str(STUDENT_CONFIG)] + [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(paths)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def lab_command(root: Path, port: int | None = None, open_browser: bool = True, extra: list[str] = ()) -> list[str]:
    """`jupyter lab` on `root`, as the course runs it."""
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", f"--ServerApp.root_dir={root}", *extra]
    if port:
        cmd.append(f"--port={port}")
    if not open_browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def lab(root: Path, port: int | None = None, open_browser: bool = True, extra: list[str] = ()) -> int:
    """Run JupyterLab until interrupted; on POSIX this process becomes JupyterLab, so stopping it stops the server."""
    command = lab_command(root, port, open_browser, extra)
    if os.name == "posix":
        os.execve(command[0], command, student_env())
    return subprocess.call(command, env=student_env())
