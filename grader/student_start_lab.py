"""Start JupyterLab on the course notebooks with the course's settings: `python start_lab.py`."""

import os
import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
env = dict(os.environ)
env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(filter(None, [str(here / "jupyter_config"), env.get("JUPYTER_CONFIG_PATH")]))
sys.exit(subprocess.call([sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={here / 'notebooks'}", *sys.argv[1:]], env=env))
