"""The grader as a package: pinned and locked dependencies that `make` installs, Dask optional, package data,
licenses. (The wheel itself is built, installed and run in tests/test_bundle.py.)"""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from grader.course import layout
from grader.course.release import canonical, read_lock

REPO = layout.course().root
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCK = read_lock(REPO / layout.LOCK_FILE)
CLUSTER = {"dask", "distributed", "dask-jobqueue"}


def requirements(group: str | None = None) -> list[Requirement]:
    """pyproject's dependencies (or one extra's)."""
    project = PROJECT["project"]
    return [Requirement(r) for r in (project["dependencies"] if group is None else project["optional-dependencies"][group])]


def locked(name: str) -> Requirement:
    return Requirement(LOCK[canonical(name)])


def test_every_direct_pin_is_the_locked_version():
    """pyproject.toml pins each direct dependency exactly, and the lock has the same version: `make lock` is current."""
    for group in [None, *PROJECT["project"]["optional-dependencies"]]:
        for req in requirements(group):
            assert len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==", f"{req} is not pinned"
            assert canonical(req.name) in LOCK, f"{req.name} is not in {layout.LOCK_FILE}: run `make lock`"
            assert locked(req.name).specifier == req.specifier, f"{req} but the lock has {LOCK[canonical(req.name)]}: run `make lock`"


def test_the_lock_pins_everything_for_every_platform():
    """One exact version per package, no local build (`+cpu`), resolved for every platform, with both extras."""
    text = (REPO / layout.LOCK_FILE).read_text()
    assert "--universal" in text and "--extra dev --extra cluster" in text, "the lock's header names how it was made"
    assert len(LOCK) > 100
    for name, pin in LOCK.items():
        req = Requirement(pin)
        [spec] = req.specifier
        assert spec.operator == "==" and "+" not in spec.version, pin
    # packages only other platforms need are locked too: a lock made for this machine alone would miss them
    assert {"appnope", "colorama", "pywinpty"} <= set(LOCK)


def test_make_installed_the_locked_versions():
    """The environment `make` built holds every locked package that this platform needs at its locked version."""
    checked, wrong = 0, []
    for pin in LOCK.values():
        req = Requirement(pin)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            have = version(req.name)
        except PackageNotFoundError:
            continue  # needed only by a build this machine does not use (CUDA's libraries for torch)
        checked += 1
        if have.split("+")[0] != next(iter(req.specifier)).version:
            wrong.append(f"{req.name} {have} (locked {req.specifier})")
    assert not wrong, f"run `make`: {wrong}"
    assert checked > 100
    for req in requirements() + requirements("dev") + requirements("cluster"):
        version(req.name)  # every direct dependency, the extras included, is installed


def test_dask_is_an_optional_extra():
    """Only `--scheduler` needs Dask: it is the `cluster` extra, and only grader/run/cluster.py imports it."""
    assert not {canonical(r.name) for r in requirements()} & CLUSTER
    assert {canonical(r.name) for r in requirements("cluster")} == CLUSTER
    importers = []
    for path in sorted((REPO / "grader").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] in {"dask", "distributed", "dask_jobqueue"} for n in names):
                importers.append(path.relative_to(REPO).as_posix())
    assert sorted(set(importers)) == ["grader/run/cluster.py"]


def test_the_student_files_are_package_data():
    """An installed wheel finds the student README, the lab launcher and Jupyter's config: the package-data globs
    match every file under grader/course/student/."""
    globs = PROJECT["tool"]["setuptools"]["package-data"]["grader.course"]
    base = REPO / "grader" / "course"
    files = [p for p in (base / "student").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert files and all(any(p.relative_to(base).match(g) for g in globs) for p in files), globs
    assert {layout.STUDENT_README, layout.STUDENT_START_LAB} <= set(files)


def test_licenses_for_the_code_and_the_content():
    assert "MIT License" in (REPO / "LICENSE").read_text()
    assert "CC BY 4.0" in (REPO / "LICENSE-CONTENT.md").read_text()
    assert PROJECT["project"]["license-files"] == list(layout.LICENSE_FILES)
    assert PROJECT["project"]["license"] == "MIT AND CC-BY-4.0"


def third_party_without_attribution(solutions: Path) -> list[str]:
    """Folders under solutions/ with a license file but no README.md beside it (what it is, whence, whom to credit)."""
    return sorted(p.parent.relative_to(solutions).as_posix() for p in solutions.rglob("*")
                  if re.fullmatch(r"(LICEN[CS]E|COPYING)(\.\w+)?", p.name) and not (p.parent / "README.md").exists())


def test_third_party_material_keeps_its_attribution_beside_it(tmp_path):
    """Data under another license carries its license and its attribution in its own folder (the one place for it,
    which travels into the bundle); the check's control is a planted folder without its README."""
    assert third_party_without_attribution(REPO / "solutions") == []
    planted = tmp_path / "solutions" / "09_x" / "data"
    planted.mkdir(parents=True)
    (planted / "LICENSE.txt").write_text("CC BY-SA 4.0\n")
    assert third_party_without_attribution(tmp_path / "solutions") == ["09_x/data"]
    (planted / "README.md").write_text("Whence, and whom to credit.\n")
    assert third_party_without_attribution(tmp_path / "solutions") == []


@pytest.mark.parametrize("name", ["README.md", "CHANGELOG.md"])
def test_the_changelog_and_readme_name_this_version(name):
    """The version in pyproject.toml is the one the changelog describes last."""
    text = (REPO / name).read_text()
    if name == "CHANGELOG.md":
        versions = re.findall(r"^## (\d+\.\d+\.\d+)", text, re.M)
        assert versions and versions[0] == PROJECT["project"]["version"]
    else:
        assert "make lock" in text and "[cluster]" in text and "download.pytorch.org/whl/cpu" in text
