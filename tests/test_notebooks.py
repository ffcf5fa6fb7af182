"""Each source notebook runs top to bottom as a student would run it, and its model really learns."""

from __future__ import annotations

import os
import re
import time

import nbformat
import pytest
from nbclient import NotebookClient

from grader import layout

pytestmark = pytest.mark.slow

# What each notebook must print when run in full (not in grading mode): `name: value` lines.
BOUNDS: dict[str, dict[str, tuple[str, float]]] = {
    "packed_sequences": {},
    "seq2seq": {"exact-match accuracy": (">=", 0.95)},
    "bilstm_tagger": {"bidirectional token accuracy": (">=", 0.98)},
    "attention": {"attention exact-match accuracy": (">=", 0.95)},
}

# Gaps a notebook's point rests on: (lower metric, higher metric, by at least), both printed in full runs.
GAPS: dict[str, list[tuple[str, str, float]]] = {
    # A left-to-right tagger misses what only the right context decides: 15 points or more.
    "bilstm_tagger": [("unidirectional right-context accuracy", "bidirectional right-context accuracy", 0.15)],
    # Without attention the fixed-size state loses long strings: 30 points or more below attention.
    "attention": [("no-attention exact-match accuracy", "attention exact-match accuracy", 0.30)],
}


def printed_metrics(nb: nbformat.NotebookNode) -> dict[str, float]:
    """Every `name: 0.xx` line the notebook printed."""
    found = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                for name, value in re.findall(r"^([a-z][a-z \-]+): (\d+\.\d+)\s*$", out["text"], re.M):
                    found[name] = float(value)
    return found


@pytest.fixture(scope="module", params=layout.available(), ids=lambda nb: nb.name)
def executed(request, tmp_path_factory):
    nb = request.param
    source = nbformat.read(nb.source, as_version=4)
    env_before = os.environ.pop("NBGRADER_EXECUTION", None)
    start = time.monotonic()
    try:
        NotebookClient(source, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path_factory.mktemp(nb.name))}}).execute()
    finally:
        if env_before is not None:
            os.environ["NBGRADER_EXECUTION"] = env_before
    return nb, source, time.monotonic() - start


def test_runs_top_to_bottom_without_errors(executed):
    nb, source, seconds = executed
    errors = [(c.metadata.get("nbgrader", {}).get("grade_id"), o.get("ename"))
              for c in source.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    stderr = [c.metadata.get("nbgrader", {}).get("grade_id") for c in source.cells
              for o in c.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert stderr == [], "cells wrote to stderr (a warning in a test cell scores 0)"
    print(f"{nb.key}: ran in {seconds:.1f} s")


def test_draws_its_figures(executed):
    _, source, _ = executed
    images = [o for c in source.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 2


def test_prints_what_the_course_promises(executed):
    nb, source, _ = executed
    metrics = printed_metrics(source)
    for name, (op, bound) in BOUNDS[nb.name].items():
        assert name in metrics, f"{nb.key} did not print `{name}: 0.xx`"
        value = metrics[name]
        assert value >= bound if op == ">=" else value <= bound, f"{name}: {value} (needs {op} {bound})"


def test_shows_the_gaps_it_explains(executed):
    nb, source, _ = executed
    metrics = printed_metrics(source)
    for lower, higher, gap in GAPS.get(nb.name, []):
        assert lower in metrics and higher in metrics, f"{nb.key} did not print `{lower}` and `{higher}`"
        assert metrics[lower] <= metrics[higher] - gap, (
            f"{lower} {metrics[lower]} is not {gap:g} below {higher} {metrics[higher]}")
