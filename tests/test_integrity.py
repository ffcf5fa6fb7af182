"""The source scan (one cell's code, and a repaired submission's answer cells) and the kernel audit's
comparison, on code and on described kernel states."""

from __future__ import annotations

import copy

import nbformat
import pytest

from grader.course import answers, cells, layout
from grader.grading.integrity import compare, reference_objects, scan_answers, scan_source
from grader.grading.submissions import repair

NB = layout.SERIES[0]
RELEASED = nbformat.read(NB.released, as_version=4)

HONEST = [
    "def run_packed(rnn, x, lengths):\n    return rnn(x)",
    "import torch.nn as nn\nimport torch.nn.functional as F\nclass M(nn.Module):\n    pass",
    "torch.backends.cudnn.deterministic = True",
    "out = getattr(model, 'weight')",
    "import math\nx = math.sqrt(2)",
]


@pytest.mark.parametrize("source", HONEST)
def test_honest_code_is_not_a_cheat(source):
    assert scan_source(source)[0] == []


@pytest.mark.parametrize("source,found", [
    ("torch.allclose = lambda *a, **k: True", "assigns to torch.allclose"),
    ("get_ipython().events.register('pre_run_cell', f)", "calls get_ipython()"),
    ("x = In[-1]", "reads In"),
    ("class A:\n    def __eq__(self, o):\n        return True", "defines __eq__"),
    ("import inspect", "imports inspect"),
    ("f = sys._getframe(1)", "uses ._getframe"),
    ("getattr(torch, name)", "calls getattr() with a computed name"),
    ("torch = None", "rebinds `torch`, which the tests use"),
    ("def type(x):\n    return int", "rebinds `type`, which the tests use"),
    ("exec('x = 1')", "calls exec()"),
])
def test_cheats_are_named(source, found):
    assert found in scan_source(source)[0]


@pytest.mark.parametrize("source,note", [("import os\nos._exit(0)", "calls os._exit"),
                                         ("import subprocess", "imports subprocess"),
                                         ("raise SystemExit(0)", "raises SystemExit")])
def test_moves_that_end_the_kernel_are_noted_not_cheats(source, note):
    cheats, notes = scan_source(source)
    assert cheats == [] and note in notes


def test_syntax_errors_are_not_cheats():
    assert scan_source("def broken(:") == ([], [])


def test_compare_names_replaced_objects_shadowed_names_and_hooks():
    reference = reference_objects()
    state = {"objects": {**reference, "torch.allclose": ["function", "__main__", "<lambda>", ""]},
             "shadowed": ["type"],
             "hooks": {"ast_transformers": ["IPython.core", "evil"], "trace": []}}
    problems = compare(state, {"ast_transformers": ["IPython.core"]}, reference)
    assert any(p.startswith("torch.allclose was replaced") for p in problems)
    assert "the notebook rebinds `type`, which the tests use" in problems
    assert any("ast_transformers: code from evil" in p for p in problems)
    assert compare({"objects": reference, "shadowed": [], "hooks": {}}, {}, reference) == []


def test_the_answer_cells_of_a_submission_are_read_for_cheats_each_named_once():
    cheat = "import builtins\nbuiltins.len = lambda x: 0\nimport subprocess"
    sub = answers.submission(NB, {"run_packed": cheat})
    sub.cells.append(nbformat.v4.new_code_cell(cheat))  # a cell of the student's own, not a solution cell
    scan = scan_answers(repair(sub, RELEASED).nb)
    assert scan.cheats == ["imports builtins", "assigns to builtins.len"]
    assert scan.notes == ["imports subprocess"]
    assert scan_answers(repair(answers.submission(NB), RELEASED).nb).cheats == []


def test_a_test_cell_the_student_unlocked_is_read_as_released_not_as_theirs():
    """The scan reads the repaired notebook: a test cell's metadata is put back (nbgrader then puts its source
    back), so what the student wrote into it is not code of theirs that runs."""
    sub = copy.deepcopy(RELEASED)
    test = next(c for c in sub.cells if cells.is_test(c))
    test.source = "import inspect"
    test.metadata.nbgrader["locked"] = False
    assert scan_answers(repair(sub, RELEASED).nb).cheats == []
    assert scan_answers(sub).cheats == ["imports inspect"], "control: read before the repair, it would count"


# A tamper with the bridge's report of changed arguments, written so that the source scan sees nothing.
SERVE_LOOP_TAMPER = """
from sys import modules as _loaded

def _quiet(now, before):
    return []

def forge():
    _loaded["grader_bridge"].changes = _quiet
"""


def bridge_state(tamper=None) -> dict:
    """The probe's bridge part, evaluated on a fresh copy of the bridge as the kernels load it."""
    import json
    import types

    from grader.bridge.trusted import BRIDGE_SOURCE
    from grader.grading.integrity import BRIDGE_PRINT

    module = types.ModuleType("grader_bridge")
    exec(compile(BRIDGE_SOURCE, "grader_bridge", "exec"), module.__dict__)
    side = module.StudentSide({})
    if tamper:
        tamper(module, side)
    expression = BRIDGE_PRINT % {"module": "grader_bridge", "side": "__grader_side__"}
    return json.loads(json.dumps(eval(expression, {"sys": types.SimpleNamespace(modules={"grader_bridge": module}),
                                                   "ip": types.SimpleNamespace(user_ns={"__grader_side__": side})})))


def test_the_audit_names_a_changed_bridge_and_a_replaced_serving_object():
    from grader.bridge.trusted import BRIDGE_SOURCE

    reference = reference_objects(bridge_source=BRIDGE_SOURCE)
    clean = {"objects": {}, "shadowed": [], "hooks": {}}
    assert compare({**clean, "bridge": bridge_state()}, {}, reference) == []

    def forged(module, side):
        namespace = {}
        exec(SERVE_LOOP_TAMPER, namespace)
        namespace["_loaded"] = {"grader_bridge": module}
        namespace["forge"]()

    problems = compare({**clean, "bridge": bridge_state(forged)}, {}, reference)
    assert problems == ["the bridge that serves the tests was changed in the kernel: changes"]

    def shadowed(module, side):
        side.call = lambda header, buffers: ({}, [])

    assert any("`__grader_side__`" in p for p in compare({**clean, "bridge": bridge_state(shadowed)}, {}, reference))


def test_control_the_source_scan_does_not_see_the_tamper():
    assert scan_source(SERVE_LOOP_TAMPER)[0] == []
