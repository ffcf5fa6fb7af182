"""`make demo`: the bundled class gets the grades an instructor would expect."""

from __future__ import annotations

import pytest
from helpers import read_grades_csv, tree_digest

from grader.course import layout
from grader.demo.build import rebuild

pytestmark = pytest.mark.slow


def test_bundled_submissions_are_up_to_date(tmp_path):
    """demo/submissions is what `python -m grader demo --rebuild` writes from the current notebooks."""
    rebuild(tmp_path / "submissions")
    assert tree_digest(tmp_path / "submissions") == tree_digest(layout.course().demo_submissions), \
        "run `python -m grader demo --rebuild` and commit demo/submissions"


def test_demo_grades(demo_run):
    grades = read_grades_csv(demo_run)
    course = layout.available()
    got = {(s, key): (r.status, r.score, r.max_score) for (s, key), r in grades.items()}
    for nb in course:
        status, score, best = got[("ada", nb.key)]
        assert status == "graded" and score == best > 0, ("ada", nb.key)
    assert got[("ben", course[0].key)][0] == "graded" and got[("ben", course[0].key)][1] == got[("ben", course[0].key)][2]
    assert got[("ben", course[1].key)][0] == "graded" and got[("ben", course[1].key)][1] < got[("ben", course[1].key)][2]
    # ben's renamed `<notebook> (1).ipynb` for the last notebook is placed and graded
    status, score, best = got[("ben", course[-1].key)]
    assert status == "graded", "a browser-renamed notebook is placed and graded"
    assert f"{course[-1].name} (1).ipynb" in grades[("ben", course[-1].key)].detail
    # cat's first three notebooks break in three ways; cat submitted nothing for the others
    cat = [got[("cat", nb.key)][0] for nb in course]
    assert cat == ["timeout", "kernel_died", "invalid_notebook"] + ["not_submitted"] * (len(course) - 3)
