"""The late policy: rules as an instructor writes them, lateness from a time or the LMS's flag, the penalty."""

from __future__ import annotations

import pytest

from grader.errors import LmsError
from grader.lms.late import Lateness, Policy, lateness, parse_policy, penalise
from grader.lms.times import parse_time

DUE = parse_time("2025-03-08T00:00:00+00:00")


@pytest.mark.parametrize("rule, policy, words", [
    ("zero", Policy("zero"), "late work scores 0"),
    ("20%", Policy("flat", 20.0), "20% off late work"),
    ("10%/day", Policy("per_day", 10.0), "10% off per started day late, at most 100%"),
    (" 12.5% / DAY, MAX = 50% ", Policy("per_day", 12.5, 50.0), "12.5% off per started day late, at most 50%"),
])
def test_rules_read_as_written(rule, policy, words):
    assert parse_policy(rule) == policy and policy.describe() == words


@pytest.mark.parametrize("rule", ["", "ten percent", "150%", "10%/week", "-5%", "10%/day,max=150%"])
def test_bad_rules(rule):
    with pytest.raises(LmsError, match="--late-penalty"):
        parse_policy(rule)


@pytest.mark.parametrize("when, flag, expected", [
    ("2025-03-07T23:59:59+00:00", True, (False, 0)),  # the time decides over the LMS's flag
    ("2025-03-08T00:00:00+00:00", None, (False, 0)),  # on the deadline is on time
    ("2025-03-08T00:00:01+00:00", False, (True, 1)),  # a started day counts
    ("2025-03-10T09:00:00+00:00", None, (True, 3)),
    ("2025-03-08T01:00:00+01:00", None, (False, 0)),  # the same instant in another zone
])
def test_a_submission_time_decides_in_started_days(when, flag, expected):
    late = lateness(parse_time(when), flag, DUE)
    assert (late.late, late.days) == expected
    assert late.how.startswith("submitted ")


def test_without_a_time_the_lms_flag_decides():
    assert lateness(None, True, DUE) == Lateness(True, None, "marked late by the LMS, no submission time")
    assert lateness(None, False, DUE) == Lateness(False, None, "on time per the LMS")
    assert lateness(parse_time("2025-03-10T09:00:00+00:00"), None, None) == Lateness(False, None, ""), \
        "a time without a deadline says nothing"


@pytest.mark.parametrize("rule, late, expected", [
    ("zero", Lateness(True, 2, "x"), (0.0, 10.0)),
    ("20%", Lateness(True, 5, "x"), (8.0, 2.0)),
    ("10%/day", Lateness(True, 3, "x"), (7.0, 3.0)),
    ("10%/day,max=25%", Lateness(True, 3, "x"), (7.5, 2.5)),
    ("10%/day", Lateness(True, None, "flag"), (9.0, 1.0)),
    ("zero", Lateness(False, 0, "on time"), (10.0, 0.0)),
])
def test_penalties(rule, late, expected):
    score, taken, note = penalise(parse_policy(rule), 10.0, late)
    assert (score, taken) == expected
    assert bool(note) == late.late


def test_the_note_says_how_lateness_was_decided_and_what_was_charged():
    _, _, note = penalise(parse_policy("10%/day"), 10.0, lateness(None, True, DUE))
    assert note == ("marked late by the LMS, no submission time; charged as 1 day; 10% off per started day late, "
                    "at most 100%, so 10% off")
    assert penalise(None, 10.0, Lateness(True, 3, "x")) == (10.0, 0.0, ""), "no policy: the raw score"
    assert penalise(parse_policy("none"), 10.0, Lateness(True, 3, "x")) == (10.0, 0.0, ""), "`none`: no penalty"


@pytest.mark.parametrize("rule", ["zero", "20%", "10%/day", "12.5%/day,max=50%", "none"])
def test_a_rule_reads_back_as_written(rule):
    """OUT/policy.json keeps the rule as text: it must parse to the same policy."""
    assert parse_policy(parse_policy(rule).text()) == parse_policy(rule)
