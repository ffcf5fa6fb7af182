"""The one error a user can act on: grading or releasing cannot proceed, and the message says why."""

from __future__ import annotations


class GraderError(RuntimeError):
    """Grading cannot proceed; the message says why and what to do next.

    The command line prints these as one line; any other exception is a bug and keeps its traceback.
    """


class LmsError(GraderError):
    """An export, roster or grade file that cannot be used; the message says what to do."""
