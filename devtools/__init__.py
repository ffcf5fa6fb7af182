"""Tools only developers run: the benchmark, stock nbgrader as a control, the README's screenshots."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # the repository these tools belong to (never installed)
