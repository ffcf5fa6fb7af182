"""The command line: problems a user can fix are one line; a bug keeps its traceback."""

from __future__ import annotations

import logging

import pytest

from grader import cli
from grader.course import release
from grader.errors import GraderError


def test_a_grader_error_is_one_line_and_exit_status_2(monkeypatch, capsys):
    monkeypatch.setattr(release, "release", lambda: (_ for _ in ()).throw(GraderError("no source notebooks: add some")))
    assert cli.main(["release"]) == 2
    err = capsys.readouterr().err
    assert err == "error: no source notebooks: add some\n"


def test_a_bug_is_not_disguised_as_a_user_error(monkeypatch):
    def broken():
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
    monkeypatch.setattr(release, "release", lambda: [])
    monkeypatch.setattr(cli.layout, "STUDENT_BUNDLE", cli.layout.ROOT / "dist" / "student.zip")
    cli.main([*flags, "release"])
    assert logging.getLogger("grader").level == level
