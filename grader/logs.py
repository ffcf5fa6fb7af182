"""The grader's own log lines: module loggers under `grader`, shown on stderr at the level asked for."""

from __future__ import annotations

import logging


def configure(level: int) -> None:
    """Show the grader's messages at `level` (not nbgrader's or traitlets' own chatter)."""
    logger = logging.getLogger("grader")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.propagate = False


def level_for(verbosity: int) -> int:
    """Warnings by default; -v adds what the grader does, -vv everything it knows."""
    return {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
