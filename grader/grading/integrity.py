"""Cheat detection: what a submission's code does to the kernel that grades it.

Two complementary checks, both recorded as findings that make a row `tampered`:

* `scan_answers` (`scan_source` on each answer cell): before anything runs, the student's own cells are read (as syntax, not text) for
  the moves that only a cheat needs here: hooks into IPython, patches of torch or builtins,
  `__eq__`/`__torch_function__` overrides, leaving the process, forking, reading the caller's frame.
* `Audit`: after each student cell, test cell and the last cell, the grader asks the kernel, through `user_expressions` (evaluated
  without IPython's input transformers or cell hooks), which hooks are installed and what the
  functions the tests rely on are. A difference from a clean interpreter is a finding, naming the
  cell that caused it. Once the bridge serves the tests from the student's kernel, its code (every
  function of `grader_bridge`, by a hash of its bytecode) and the object that serves (`__grader_side__`)
  are compared with the bridge as the grader compiled it: the one thing the student's side reports that
  can decide points (which arguments a call changed) comes from there.

Neither is a proof against a determined attacker who runs arbitrary code in the same process (see
the README): they catch the known cheats, and the sandbox limits what any code can reach.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from grader.course import cells

# Functions the tests compare with; a submission has no reason to replace any of them.
WATCHED = {
    "builtins": ["isinstance", "type", "len", "all", "any", "abs", "bool", "int", "float", "str", "repr",
                 "range", "zip", "enumerate", "min", "max", "sum", "round", "print", "hasattr",
                 "getattr", "callable", "tuple", "list", "dict", "set", "AssertionError", "Exception"],
    "torch": ["allclose", "equal", "isclose", "eq", "all", "any", "count_nonzero", "tensor", "testing.assert_close",
              "Tensor.__eq__", "Tensor.__ne__", "Tensor.eq", "Tensor.equal", "Tensor.allclose", "Tensor.all",
              "Tensor.__bool__", "Tensor.item", "Tensor.tolist", "Tensor.shape", "Size.__eq__", "Tensor.__torch_function__",
              # what the bridge's report of changed arguments relies on
              "Tensor.clone", "Tensor.detach", "Tensor.reshape", "Tensor.contiguous", "Tensor.view", "Tensor.numpy",
              "Tensor.resolve_conj", "Tensor.resolve_neg", "Tensor.to"],
}
BRIDGE_MODULE = "grader_bridge"  # protocol.py as both kernels load it (grader/bridge/trusted.py)
BRIDGE_SIDE = "__grader_side__"  # the object that serves the tests in the student's kernel (grader/bridge/split.py)
BRIDGE_KEY = "__bridge__"  # where reference_objects keeps the bridge's own fingerprint

# Names the tests call through the notebook's own namespace: rebinding one there (`type = ...`,
# `torch = fake`) changes what every later test cell sees, without touching the real objects.
SHADOWED = {"builtins": ["type", "isinstance", "len", "tuple", "range", "int", "float", "bool", "all", "any",
                         "abs", "zip", "enumerate", "print", "AssertionError", "getattr", "hasattr"],
            "modules": {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional"}}

# Evaluated inside the kernel; returns JSON. Written as one expression for `user_expressions`.
PROBE = r"""(lambda json, sys, ip: json.dumps({
 "hooks": {
  "input_transformers_cleanup": [getattr(f, "__module__", "?") for f in ip.input_transformers_cleanup],
  "input_transformers_post": [getattr(f, "__module__", "?") for f in ip.input_transformers_post],
  "ast_transformers": [type(f).__module__ for f in ip.ast_transformers],
  **{"event " + k: [getattr(f, "__module__", "?") for f in v] for k, v in ip.events.callbacks.items()},
  "trace": [getattr(f, "__module__", "?") for f in (sys.gettrace(), sys.getprofile()) if f is not None],
 },
 "objects": %(describe)s,
 "shadowed": [n for n, real in %(shadowed)s if n in ip.user_ns and ip.user_ns[n] is not real],
 "bridge": %(bridge)s,
}))(__import__("json"), __import__("sys"), get_ipython())"""

# The bridge's fingerprint: each function of the module and of its classes, by a hash of its bytecode, its
# names and its constants (nested code included, sets in a fixed order); then whether the serving object is the module's own
# StudentSide with nothing of its own shadowing a method. None until the bridge is installed.
BRIDGE_PRINT = r"""(lambda m, side, hashlib: None if m is None else (lambda fp: {
 "code": sorted([q, fp(fp, f.__code__) if hasattr(f, "__code__") else type(f).__name__]
                for q, f in [(n, v) for n, v in vars(m).items() if callable(v) and not n.startswith("__")]
                + [(n + "." + k, w) for n, v in vars(m).items() if isinstance(v, type) and v.__module__ == m.__name__
                   for k, w in vars(v).items() if callable(w) or isinstance(w, (staticmethod, classmethod))]
                if not isinstance(f, type) or getattr(f, "__module__", None) != m.__name__),
 "side": None if side is None else [type(side) is getattr(m, "StudentSide", None), sorted(object.__getattribute__(side, "__dict__"))],
})(lambda fp, c: hashlib.sha256(c.co_code + repr(c.co_names).encode() + "|".join(
    fp(fp, k) if type(k) is type(c) else repr(sorted(map(repr, k))) if type(k) is frozenset else repr(k)
    for k in c.co_consts).encode()).hexdigest()[:20])
)(sys.modules.get("%(module)s"), ip.user_ns.get("%(side)s"), __import__("hashlib"))"""

DESCRIBE = r"""{
 name: (lambda o: [type(o).__name__, getattr(o, "__module__", None), getattr(o, "__qualname__", None),
                   getattr(getattr(o, "__code__", None), "co_filename", "").rsplit("site-packages", 1)[-1]])(obj)
 for name, obj in %(objects)s
}"""


def _objects_expr(kernel: bool) -> str:
    """An expression listing (name, object) for every watched name that exists."""
    getter = ('__import__("functools").reduce(lambda o, a: getattr(o, a, None), "%s".split("."), %s)')
    parts = []
    for module, names in WATCHED.items():
        root = f'sys.modules.get("{module}")' if kernel else f'__import__("{module}")'
        for name in names:
            parts.append(f'("{module}.{name}", {getter % (name, root)})')
    guard = ' if sys.modules.get("torch") is not None or not n.startswith("torch.")' if kernel else ""
    return "[(n, o) for n, o in [" + ", ".join(parts) + "]" + (guard or "") + "]"


def _shadowed_expr() -> str:
    """(name, the object it must be) for every name that SHADOWED watches."""
    pairs = [f'("{n}", getattr(__import__("builtins"), "{n}"))' for n in SHADOWED["builtins"]]
    pairs += [f'("{n}", sys.modules.get("{m}", ip.user_ns.get("{n}")))' for n, m in SHADOWED["modules"].items()]
    return "[" + ", ".join(pairs) + "]"


def probe_expression() -> str:
    """The expression the kernel evaluates after each cell."""
    bridge = BRIDGE_PRINT % {"module": BRIDGE_MODULE, "side": BRIDGE_SIDE}
    return PROBE % {"describe": DESCRIBE % {"objects": _objects_expr(kernel=True)}, "shadowed": _shadowed_expr(),
                    "bridge": bridge}


def bridge_fingerprint(source: str) -> dict:
    """The bridge's code (`source`, as the grader sends it to the kernels) fingerprinted as the probe does."""
    import types

    module = types.ModuleType(BRIDGE_MODULE)
    exec(compile(source, BRIDGE_MODULE, "exec"), module.__dict__)
    side = module.StudentSide({})
    expression = BRIDGE_PRINT % {"module": BRIDGE_MODULE, "side": BRIDGE_SIDE}
    ip = types.SimpleNamespace(user_ns={BRIDGE_SIDE: side})
    found = eval(expression, {"sys": types.SimpleNamespace(modules={BRIDGE_MODULE: module}), "ip": ip,
                              "__builtins__": __builtins__}, {})
    return json.loads(json.dumps(found))


@cache
def reference_objects(folder: Path | None = None, bridge_source: str = "") -> dict:
    """What the watched objects look like in a clean interpreter (this one), and the bridge's fingerprint when
    its source is given, remembered in `folder` per Python and torch version, since importing torch here costs
    seconds of every run."""
    import hashlib
    import os
    import platform
    import sys
    import tempfile
    from importlib.metadata import version

    key = hashlib.sha256(f"{platform.python_version()} {version('torch')} {DESCRIBE} {_objects_expr(kernel=False)} "
                         f"{BRIDGE_PRINT} {bridge_source}".encode()).hexdigest()[:16]
    remembered = folder / f"reference-objects-{key}.json" if folder else None
    if remembered and remembered.exists():
        return json.loads(remembered.read_text())
    import torch  # noqa: F401  (the watched names live there)

    described = json.loads(json.dumps(eval(DESCRIBE % {"objects": _objects_expr(kernel=False)}, {"sys": sys})))
    if bridge_source:
        described[BRIDGE_KEY] = bridge_fingerprint(bridge_source)
    if remembered:  # written whole, then renamed: a run starting meanwhile never reads half a file
        folder.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=folder, suffix=".partial")
        with os.fdopen(fd, "w") as f:
            json.dump(described, f)
        os.replace(partial, remembered)
    return described


# Modules whose hooks a clean kernel installs by itself.
TRUSTED_HOOK_MODULES = ("IPython.", "ipykernel.", "matplotlib_inline.", "matplotlib.", "torch.")


def compare(state: dict, baseline_hooks: dict, reference: dict) -> list[str]:
    """What differs in `state` from a clean kernel (`reference`): one readable line per difference."""
    problems = []
    for name, desc in state.get("objects", {}).items():
        if name in reference and desc != reference[name]:
            problems.append(f"{name} was replaced (now {desc[0]} {desc[2] or ''} from {desc[1]})")
    for name in state.get("shadowed", []):
        problems.append(f"the notebook rebinds `{name}`, which the tests use")
    problems += bridge_problems(state.get("bridge"), reference.get(BRIDGE_KEY))
    for hook, modules in state.get("hooks", {}).items():
        added = list(modules)
        for m in baseline_hooks.get(hook, []):
            if m in added:
                added.remove(m)
        suspicious = [m for m in added if not (m or "").startswith(TRUSTED_HOOK_MODULES)]
        if suspicious:
            problems.append(f"{hook}: code from {', '.join(sorted(set(map(str, suspicious))))} was installed")
    return problems


def bridge_problems(seen: dict | None, expected: dict | None) -> list[str]:
    """How the bridge in the student's kernel differs from the grader's: each changed function, a serving
    object that is not the bridge's own or that shadows its methods."""
    if not seen or not expected:
        return []
    problems = []
    mine, theirs = dict(map(tuple, expected.get("code", []))), dict(map(tuple, seen.get("code", [])))
    changed = sorted(n for n in mine.keys() | theirs.keys() if mine.get(n) != theirs.get(n))
    if changed:
        problems.append(f"the bridge that serves the tests was changed in the kernel: {', '.join(changed[:8])}")
    side, clean = seen.get("side"), expected.get("side")
    if side is not None and side != clean:
        problems.append(f"the object serving the tests (`{BRIDGE_SIDE}`) was replaced or given its own methods")
    return problems


class Audit:
    """Queries the kernel before the first cell and after the cells worth auditing and collects findings."""

    def __init__(self, executor):
        self.executor = executor
        self.baseline: dict | None = None
        self.seen: set[str] = set()
        self.found: list[dict] = []

    def _query(self) -> dict | None:
        from jupyter_core.utils import run_sync

        kc = self.executor.kc
        msg_id = kc.execute("", silent=True, store_history=False, user_expressions={"state": probe_expression()})
        reply = run_sync(self.executor.async_wait_for_reply)(msg_id)
        if reply is None:
            return None
        value = reply["content"].get("user_expressions", {}).get("state", {})
        if value.get("status") != "ok":
            return {"error": f"{value.get('ename', 'error')}: {value.get('evalue', '')}"}
        return json.loads(ast.literal_eval(value["data"]["text/plain"]))

    def before_cell(self, cell, index: int) -> None:
        """Take the clean kernel's hooks as the baseline, before the first cell runs."""
        if self.baseline is None:
            self.baseline = self._query() or {}

    def after_cell(self, cell, index: int) -> None:
        """Compare the kernel with a clean one; record each new difference once."""
        state = self._query()
        if state is None:
            return
        if "error" in state:
            problems = [f"the kernel could not be inspected ({state['error']})"]
        else:
            problems = compare(state, (self.baseline or {}).get("hooks", {}), self.executor.settings.reference_objects)
        from grader.course.cells import grade_id

        gid = grade_id(cell)
        for problem in problems:
            if problem not in self.seen:
                self.seen.add(problem)
                self.found.append({"cell": index, "grade_id": gid, "detail": problem})

    def findings(self) -> list[dict]:
        return list(self.found)


class NoAudit:
    """An audit that looks at nothing (for executing without the checks)."""

    def before_cell(self, cell, index: int) -> None:
        pass

    def after_cell(self, cell, index: int) -> None:
        pass

    def findings(self) -> list[dict]:
        return []


# ----------------------------------------------------------------------------------------------
# Reading the student's cells before they run.

# Moves only a cheat needs in these assignments: each one voids the score.
CHEAT_ATTRIBUTES = {
    "input_transformers_cleanup", "input_transformers_post", "ast_transformers", "events",
    "register_magic_function", "set_custom_exc", "showtraceback", "_showtraceback", "user_expressions",
    "__torch_function__", "__torch_dispatch__", "settrace", "setprofile", "_getframe", "currentframe",
    "f_back", "f_globals", "f_locals", "f_code", "co_filename", "tb_frame", "__traceback__",
    "__builtins__", "__dict__", "__getattribute__", "attrgetter", "modules", "history_manager",
}
# IPython's input history holds the source of every cell run so far, hidden tests included.
CHEAT_NAMES = {"In", "Out", "_ih", "_oh", "_i", "_ii", "_iii", "_dh", "__main__", "__builtins__"}
CHEAT_CALLS = {"exec", "eval", "compile", "__import__", "setattr", "delattr", "get_ipython", "globals", "vars"}
CHEAT_IMPORTS = {"builtins", "inspect", "ctypes", "gc", "linecache", "traceback", "importlib", "IPython",
                 "ipykernel", "atexit", "sqlite3", "marshal", "pickle", "dis", "operator", "__main__"}
CHEAT_METHODS = {"__eq__", "__ne__", "__bool__", "__torch_function__", "__torch_dispatch__",
                 "__instancecheck__", "__subclasscheck__", "__getattribute__"}
SHADOWED_NAMES = set(SHADOWED["builtins"]) | set(SHADOWED["modules"])
PATCHED_ROOTS = {"torch", "nn", "F", "builtins", "__builtins__", "np", "sys", "os", "math"}
# Moves that end or escape the kernel: reported in the detail, the status says what happened.
NOTED_ATTRIBUTES = {"_exit", "exit", "fork", "forkpty", "kill", "killpg", "system", "popen", "execv", "execve",
                    "spawnv", "abort"}
NOTED_CALLS = {"exit", "quit"}
NOTED_IMPORTS = {"subprocess", "multiprocessing", "signal", "socket", "threading", "shutil", "glob"}


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def scan_source(source: str) -> tuple[list[str], list[str]]:
    """(cheats, notes) in one cell of student code, one readable line each."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [], []  # it will fail when it runs; that is not cheating
    cheats, notes = [], []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in CHEAT_METHODS:
            cheats.append(f"defines {node.name}")
        elif isinstance(node, ast.Attribute):
            if node.attr in CHEAT_ATTRIBUTES:
                cheats.append(f"uses .{node.attr}")
            elif node.attr in NOTED_ATTRIBUTES:
                notes.append(f"calls {ast.unparse(node)}")
        elif isinstance(node, ast.Name) and node.id in CHEAT_NAMES:
            cheats.append(f"reads {node.id}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in CHEAT_CALLS:
                cheats.append(f"calls {node.func.id}()")
            elif node.func.id in NOTED_CALLS:
                notes.append(f"calls {node.func.id}()")
            elif node.func.id == "getattr" and len(node.args) > 1 and not isinstance(node.args[1], ast.Constant):
                cheats.append("calls getattr() with a computed name")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top in CHEAT_IMPORTS:
                    cheats.append(f"imports {name}")
                elif top in NOTED_IMPORTS:
                    notes.append(f"imports {name}")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                text = ast.unparse(target)
                if isinstance(target, ast.Attribute) and _root_name(target) in PATCHED_ROOTS and ".backends." not in text:
                    cheats.append(f"assigns to {text}")
        elif isinstance(node, ast.Global):
            cheats += [f"declares `global {n}`" for n in node.names if n in SHADOWED_NAMES]
        elif isinstance(node, ast.Raise) and node.exc is not None and "SystemExit" in ast.unparse(node.exc):
            notes.append("raises SystemExit")
    cheats += [f"rebinds `{n}`, which the tests use" for n in module_level_bindings(tree) & SHADOWED_NAMES]
    return list(dict.fromkeys(cheats)), list(dict.fromkeys(notes))


@dataclass(frozen=True)
class Scan:
    """What reading a submission's answer cells found: moves only a cheat needs, and moves worth a note."""

    cheats: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def scan_answers(nb) -> Scan:
    """The source scan over every answer cell of `nb` (as repaired: its grade cells are the release's), each
    finding once."""
    cheats, notes = [], []
    for cell in nb.cells:
        if cell.cell_type == "code" and cells.is_answer(cell):
            found, noted = scan_source(cell.source)
            cheats += found
            notes += noted
    return Scan(list(dict.fromkeys(cheats)), list(dict.fromkeys(notes)))


def module_level_bindings(tree: ast.Module) -> set[str]:
    """Names a cell binds in the notebook's namespace to something other than what the tests expect."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if isinstance(node, ast.Import):
                    module = alias.name if alias.asname else bound
                else:
                    module = f"{node.module}.{alias.name}"
                if SHADOWED["modules"].get(bound) != module:  # `import torch.nn as nn` binds the real thing
                    names.add(bound)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.With)):
            names.update(sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store))
    return names
