"""The package's layers, as `.importlinter` writes them down, hold; and the check can fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from grader.course import layout

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` over the packages in `root`, with the project's contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / ".importlinter"), "--no-cache"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)


def copy_of_the_packages(tmp_path: Path) -> Path:
    for name in ("grader", "devtools"):
        shutil.copytree(layout.course().root / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(layout.course().root / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_contracts_are_kept():
    done = lint(layout.course().root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_page_that_imports_the_sandbox_is_refused(tmp_path):
    """The control: the same check on a copy where the pages reach into the kernel package."""
    root = copy_of_the_packages(tmp_path)
    with open(root / "grader" / "pages" / "feedback.py", "a") as f:
        f.write("\nfrom grader.kernel import sandbox  # noqa: E402\n")
    done = lint(root)
    assert done.returncode != 0
    assert "The LMS code, pages, report and manual grading never import the kernels BROKEN" in done.stdout


def test_a_lower_layer_that_imports_a_higher_one_is_refused(tmp_path):
    root = copy_of_the_packages(tmp_path)
    with open(root / "grader" / "course" / "layout.py", "a") as f:
        f.write("\nfrom grader.grading import task  # noqa: E402\n")
    done = lint(root)
    assert done.returncode != 0 and "each layer imports only the layers below it BROKEN" in done.stdout


def test_an_import_cycle_is_found(tmp_path):
    root = copy_of_the_packages(tmp_path)
    with open(root / "grader" / "course" / "cells.py", "a") as f:
        f.write("\nfrom grader.course import hidden  # noqa: E402\n")
    done = lint(root)
    assert done.returncode != 0 and "No import cycles between the modules of any package BROKEN" in done.stdout


def test_the_top_level_holds_the_shared_vocabulary_only():
    """At most a dozen modules at the top of grader/; everything else lives in a package named for its role."""
    top = sorted(p.name for p in (layout.course().root / "grader").glob("*.py"))
    assert len(top) <= 12, top
