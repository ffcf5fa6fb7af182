"""`make demo`: the bundled class gets the grades an instructor would expect."""

from __future__ import annotations

import pytest
from helpers import read_grades_csv, tree_digest

from grader.course import layout
from grader.demo.build import demo_marks_file, rebuild

pytestmark = pytest.mark.slow


def test_bundled_submissions_are_up_to_date(tmp_path):
    """demo/submissions (and the grades its written answers got) are what `python -m grader demo --rebuild` writes
    from the current notebooks."""
    rebuild(tmp_path / "submissions", tmp_path / demo_marks_file().name)
    assert tree_digest(tmp_path / "submissions") == tree_digest(layout.course().demo_submissions), \
        "run `python -m grader demo --rebuild` and commit demo/submissions"
    assert (tmp_path / demo_marks_file().name).read_text() == demo_marks_file().read_text(), \
        "run `python -m grader demo --rebuild` and commit demo/manual_grades.csv"


def test_demo_grades(demo_run):
    grades = read_grades_csv(demo_run)
    course = layout.available()
    got = {(s, key): (r.status, r.score, r.max_score) for (s, key), r in grades.items()}
    for nb in course:
        status, score, best = got[("ada", nb.key)]
        assert status == "graded" and score == best > 0, ("ada", nb.key)  # her written answers graded in full
        assert grades[("ada", nb.key)].manual_score > 0 and grades[("ada", nb.key)].to_grade == 0
    # ben: full test marks on the first notebook, 1 of 2 points on one written answer (demo/manual_grades.csv), the
    # other left to grade, as are his written answers in the other notebooks
    ben = grades[("ben", course[0].key)]
    assert ben.status == "graded" and ben.score + ben.to_grade == ben.max_score - 1
    assert (ben.manual_score, ben.to_grade) == (1.0, 2.0) and "written answers to grade" in ben.detail
    assert all(grades[("ben", nb.key)].to_grade > 0 for nb in course[1:])
    assert got[("ben", course[1].key)][0] == "graded" and got[("ben", course[1].key)][1] < got[("ben", course[1].key)][2]
    # ben's renamed `<notebook> (1).ipynb` for the last notebook is placed and graded
    status, score, best = got[("ben", course[-1].key)]
    assert status == "graded", "a browser-renamed notebook is placed and graded"
    assert f"{course[-1].name} (1).ipynb" in grades[("ben", course[-1].key)].detail
    # cat's first three notebooks break in three ways; cat submitted nothing for the others
    cat = [got[("cat", nb.key)][0] for nb in course]
    assert cat == ["timeout", "kernel_died", "invalid_notebook"] + ["not_submitted"] * (len(course) - 3)


def test_rubrics_reach_formgrader_but_no_student_page(demo_run):
    """Every rubric line is in the formgrader's copy of the notebooks (OUT/course), and on no feedback page."""
    import nbformat

    from grader.course.cells import secrets_of
    from grader.course.hidden import html_text, leaks, notebook_text
    from grader.course.written import read_rubrics
    from grader.manual.course import autograded_path, course_root
    from grader.results import feedback_path

    for nb in layout.available():
        rubric = secrets_of(nbformat.read(nb.source, as_version=4), rubrics=read_rubrics(nb.rubrics)).rubric
        assert rubric, nb.key
        shown = notebook_text(nbformat.read(autograded_path(course_root(demo_run), "ada", nb.assignment, nb.name),
                                            as_version=4))
        assert set(leaks(shown, rubric)) == set(rubric), f"formgrader shows {nb.key}'s rubric to the grader"
        pages = [feedback_path(demo_run, s, nb.assignment, nb.name) for s in ("ada", "ben", "cat")]
        for page in [p for p in pages if p.exists()]:
            assert leaks(html_text(page.read_text()), rubric) == [], page
