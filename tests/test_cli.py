"""The command line: problems a user can fix are one line; a bug keeps its traceback."""

from __future__ import annotations

import logging

import pytest

from grader import cli
from grader.course import release
from grader.errors import GraderError


def test_a_grader_error_is_one_line_and_exit_status_2(monkeypatch, capsys):
    monkeypatch.setattr(release, "release", lambda *a, **k: (_ for _ in ()).throw(GraderError("no source notebooks: add some")))
    assert cli.main(["release"]) == 2
    err = capsys.readouterr().err
    assert err == "error: no source notebooks: add some\n"


def test_a_bug_is_not_disguised_as_a_user_error(monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("grade_id")

    monkeypatch.setattr(release, "release", broken)
    with pytest.raises(KeyError):
        cli.main(["release"])


def test_an_unknown_assignment_names_the_known_ones():
    from grader.course.layout import notebooks_of

    with pytest.raises(GraderError, match="the course has: 01_packed_sequences"):
        notebooks_of("99_nope")


@pytest.mark.parametrize("flags,level", [([], logging.WARNING), (["-v"], logging.INFO), (["-vv"], logging.DEBUG)])
def test_verbosity(monkeypatch, flags, level):
    monkeypatch.setattr(release, "release", lambda *a, **k: release.Released([], []))
    cli.main([*flags, "--course", str(cli.layout.course().root), "release"])
    assert logging.getLogger("grader").level == level


def test_version_is_the_installed_one(capsys):
    """`--version` prints the version pyproject.toml gives the package, as installed."""
    import tomllib

    from grader.course import layout

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    project = tomllib.loads((layout.course().root / "pyproject.toml").read_text())["project"]
    assert capsys.readouterr().out == f"python -m grader {project['version']}\n"


def test_scheduler_without_dask_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    """Dask is an optional extra: without it, --scheduler is one line naming the extra, and nothing is written."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("dask", "distributed") else real(name, *a))
    (tmp_path / "subs").mkdir()
    assert cli.main(["autograde", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--scheduler", "local"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --scheduler grades on a Dask cluster") and "pip install -c constraints.txt 'seqmodels-course[cluster]'" in err
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(importlib.util, "find_spec", real)
    cli.require_dask()  # the control: with Dask installed (make installs the extra), nothing to say
