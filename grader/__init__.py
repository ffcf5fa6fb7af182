"""The course's grader: release notebooks and autograde submissions with nbgrader."""

import sys

# jsonschema (under nbformat) imports rfc3987_syntax when it is installed, and that module builds a
# parser at import: 2.4 s in every grader process. Notebooks never need its IRI formats.
sys.modules.setdefault("rfc3987_syntax", None)


def version() -> str:
    """This package's version, as installed (pyproject.toml says it)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("seqmodels-course")
    except PackageNotFoundError:
        return "unknown (not installed)"
