"""Start JupyterLab on the course notebooks with the course's settings: `python start_lab.py`."""

import os
import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
env = dict(os.environ)
env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(filter(None, [str(here / "jupyter_config"), env.get("JUPYTER_CONFIG_PATH")]))
# The environment's own tools (jupyter, nbgrader) first on PATH, also in JupyterLab's terminals.
env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")]))
args = [f"--ServerApp.root_dir={here / 'notebooks'}", *sys.argv[1:]]
# Jupyter refuses to start as root (as in many containers) unless told it may.
if getattr(os, "geteuid", lambda: -1)() == 0 and "--allow-root" not in args:
    args.append("--allow-root")
command = [sys.executable, "-m", "jupyter", "lab", *args]
if os.name == "posix":
    # Become JupyterLab, so that stopping this process (Ctrl-C, kill, a process manager) stops the server.
    os.execve(sys.executable, command, env)
sys.exit(subprocess.call(command, env=env))
