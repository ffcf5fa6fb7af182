"""The bridge between the test's kernel and the student's: a proxied call means what a local call meant,
what the student's side sends is parsed as hostile, and nothing of the student's side (its changes to
the arguments, its RNG, its objects' behaviour) reaches what the test computes. No kernel: both sides
run here, the student's in a thread or a process of its own (bridge_pair.py).
"""

from __future__ import annotations

import socket
import struct

import pytest
import torch
import torch.nn as nn
from bridge_pair import Pair, ProcessPair
from hostile import ZERO_WEIGHTS

from grader.bridge import protocol
from grader.bridge.protocol import BridgeError, Handle, call_reporting_changes, send_frame

STUDENT_CODE = '''
import torch
import torch.nn as nn

calls = []

def double(x):
    return x * 2

def draw_and_add(x):
    return x + torch.randn(x.shape)

def grad_mode():
    return torch.is_grad_enabled()

def zero_in_place(x, lengths):
    x.zero_()
    return lengths.sum()

def scales_the_cell_state(x, state):
    h, c = state
    c.mul_(2)
    return h

def empties(x):
    x.resize_(0, 3)
    return x.sum()

def leaves_the_input_alone(x, state):
    return x.sum()

Pair_ = __import__("collections").namedtuple("Pair_", "first second")

def returns_a_namedtuple(x):
    return Pair_(x, x + 1)

class Noisy:
    """Indexes to noise: whatever a test compares it with, it differs."""
    def __getitem__(self, key):
        return torch.randn(3)
    def __len__(self):
        return 0

class NoisyModel(nn.Module):
    def forward(self, x):
        return Noisy()

def weighted_sum(x):
    return (x * torch.arange(1.0, x.numel() + 1).reshape(x.shape)).sum()

def not_done(x):
    raise NotImplementedError("write me")

def exits(x):
    import sys
    sys.exit(0)

def prints(x):
    print("hello from the student")
    return x

def describe(rnn):
    return type(rnn).__name__, rnn.hidden_size, rnn.weight_hh_l0.detach().clone()

def decode(model, src, steps):
    hidden = model.encode(src)
    out = []
    for _ in range(steps):
        token, hidden = model.decode_step(out[-1] if out else torch.zeros(src.size(0), dtype=torch.long), hidden)
        out.append(token)
    return torch.stack(out, dim=1)

def pokes(model):
    return model.secret

class Agreeable(torch.Tensor):
    pass

def fake_tensor(x):
    return x.clone().as_subclass(Agreeable)

class AlwaysEqual:
    def __eq__(self, other):
        return True

def always_equal(x):
    return AlwaysEqual()

def catches_every_stand_in_error(model, n):
    for _ in range(n):
        try:
            model.decode_step(torch.zeros(1), torch.zeros(1))
        except Exception:
            pass
    return n

def divides(x, y):
    return helper_divides(x, y)

def helper_divides(x, y):
    return x.reshape(y.numel() + 5, 7)

class Model(nn.Module):
    def __init__(self, vocab, dim, pad_idx=0):
        super().__init__()
        self.pad_idx = pad_idx
        self.embedding = nn.Embedding(vocab, dim)
        self.out = nn.Linear(dim, vocab)

    def forward(self, tokens):
        return self.out(self.embedding(tokens))

    def encode(self, tokens):
        return self.embedding(tokens).mean(dim=1)
'''

EXERCISES = {"double": "function", "draw_and_add": "function", "grad_mode": "function", "zero_in_place": "function",
             "weighted_sum": "function", "not_done": "function", "exits": "function", "prints": "function",
             "describe": "function", "decode": "function", "pokes": "function", "fake_tensor": "function",
             "always_equal": "function", "Model": "module", "scales_the_cell_state": "function",
             "empties": "function", "leaves_the_input_alone": "function", "returns_a_namedtuple": "function",
             "NoisyModel": "module", "catches_every_stand_in_error": "function", "divides": "function"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    namespace: dict = {}
    exec(STUDENT_CODE, namespace)
    made = Pair(tmp_path_factory.mktemp("bridge"), namespace, EXERCISES)
    yield made
    made.close()


def test_tensors_cross_as_plain_tensors(pair):
    with pair.cell() as ex:
        out = ex["double"](torch.arange(6.0).reshape(2, 3))
    assert type(out) is torch.Tensor and torch.equal(out, torch.arange(6.0).reshape(2, 3) * 2)


RNG_CODE = STUDENT_CODE + ZERO_WEIGHTS + '''
def leaves_zero_weights(x):
    torch.set_rng_state(_zero_weights_state())
    return x

def draws_a_lot(x):
    torch.randn(10_000)
    return x

def draws_nothing(x):
    return x
'''
RNG_EXERCISES = {**EXERCISES, "leaves_zero_weights": "function", "draws_a_lot": "function", "draws_nothing": "function"}


@pytest.fixture(scope="module")
def apart(tmp_path_factory):
    """The student's side in a process of its own, as in grading: its global RNG is not the test's."""
    made = ProcessPair(tmp_path_factory.mktemp("apart"), RNG_CODE, RNG_EXERCISES)
    yield made
    made.close()


def test_the_rng_state_goes_with_the_call(apart):
    """Seed, call student code that draws: the same numbers as in one process."""
    namespace: dict = {}
    exec(STUDENT_CODE, namespace)
    torch.manual_seed(5)
    local = namespace["draw_and_add"](torch.zeros(3))
    with apart.cell() as ex:
        torch.manual_seed(5)
        remote = ex["draw_and_add"](torch.zeros(3))
    assert torch.equal(local, remote)


def test_the_test_s_rng_moves_on_by_a_fixed_step_whatever_the_student_s_code_did(apart):
    after = []
    with apart.cell() as ex:
        for name in ("draws_a_lot", "draws_nothing", "leaves_zero_weights"):
            torch.manual_seed(7)
            ex[name](torch.zeros(1))
            after.append(torch.randn(4))
        torch.manual_seed(7)
        first, second = ex["draw_and_add"](torch.zeros(3)), ex["draw_and_add"](torch.zeros(3))
    assert torch.equal(after[0], after[1]) and torch.equal(after[0], after[2])
    assert not torch.equal(first, second), "two calls (two training steps) draw differently"


def test_a_state_the_student_leaves_cannot_zero_the_test_s_next_model(apart):
    with apart.cell() as ex:
        torch.manual_seed(13)
        ex["leaves_zero_weights"](torch.zeros(1))
        lstm = nn.LSTM(4, 5, batch_first=True)
    assert all(bool((p != 0).any()) for p in lstm.parameters())


def test_control_in_one_process_the_state_zeroes_the_next_model():
    namespace: dict = {}
    exec(RNG_CODE, namespace)
    torch.manual_seed(13)
    namespace["leaves_zero_weights"](torch.zeros(1))
    lstm = nn.LSTM(4, 5, batch_first=True)
    assert all(bool((p == 0).all()) for p in lstm.parameters())


def test_grad_mode_crosses(pair):
    with pair.cell() as ex:
        with torch.no_grad():
            assert ex["grad_mode"]() is False
        assert ex["grad_mode"]() is True


def test_arguments_cross_by_value_and_the_student_side_reports_its_changes(pair):
    x, lengths = torch.ones(2, 3), torch.tensor([3, 2])
    h, c = torch.ones(2), torch.ones(2)
    with pair.cell() as ex:
        total, changed = call_reporting_changes(ex["zero_in_place"], (x, lengths), {})
        assert int(total) == 5 and changed == ["args[0] (values)"]
        assert call_reporting_changes(ex["scales_the_cell_state"], (x,), {"state": (h, c)})[1] == ["kwargs['state'][1] (values)"]
        assert call_reporting_changes(ex["empties"], (x,), {})[1] == ["args[0] (shape)"]
        assert call_reporting_changes(ex["leaves_the_input_alone"], (x, (h, c)), {})[1] == []
        assert int(ex["empties"](x)) == 0, "a plain call reports nothing, and changes nothing here either"
    assert torch.equal(x, torch.ones(2, 3)) and torch.equal(c, torch.ones(2)), "the test's tensors never change"


def test_control_in_one_process_the_changes_reach_the_caller():
    namespace: dict = {}
    exec(STUDENT_CODE, namespace)
    x = torch.ones(2, 3)
    namespace["empties"](x)
    assert x.shape == (0, 3)


def test_gradients_reach_the_test_s_tensors(pair):
    x = torch.ones(2, 2, requires_grad=True)
    with pair.cell() as ex:
        loss = ex["weighted_sum"](x)
        assert loss.requires_grad and loss.grad_fn is not None
        loss.backward()
    assert torch.equal(x.grad, torch.arange(1.0, 5.0).reshape(2, 2))


def test_a_result_without_a_graph_does_not_pretend_to_have_one(pair):
    with pair.cell() as ex:
        out = ex["double"](torch.ones(2))
    assert not out.requires_grad and out.grad_fn is None


def test_student_errors_keep_their_type(pair):
    with pair.cell() as ex:
        with pytest.raises(NotImplementedError, match="write me"):
            ex["not_done"](torch.ones(1))
        with pytest.raises(RuntimeError, match="SystemExit"):
            ex["exits"](torch.ones(1))
        assert torch.equal(ex["double"](torch.ones(1)), torch.full((1,), 2.0)), "the serve loop survives both"


def test_an_error_carries_the_student_s_frames_only(pair):
    with pair.cell() as ex:
        with pytest.raises(RuntimeError) as caught:
            ex["divides"](torch.ones(2), torch.zeros(2, dtype=torch.bool))
    frames = caught.value._student["frames"]
    assert [f["name"] for f in frames] == ["divides", "helper_divides"], frames
    block = protocol.student_block(caught.value)
    assert block.startswith(protocol.STUDENT_BLOCK) and "the test called your `divides`" in block
    assert "protocol.py" not in block and "grader" not in block
    shown = protocol.without_bridge_frames(caught.value.__traceback__)
    files = []
    while shown is not None:
        files.append(shown.tb_frame.f_code.co_filename)
        shown = shown.tb_next
    assert files and not (set(files) & protocol.OWN_FILES), "the bridge's frames are left out of the test's traceback"


def test_a_call_cut_by_the_time_limit_says_the_student_s_code_was_still_running(tmp_path):
    """The time limit interrupts the test while the student's code runs: the traceback says which of their names
    the test called and that it was still running, not a frame of the bridge."""
    import os
    import signal
    import threading

    namespace: dict = {}
    exec("import time\ndef slow(x):\n    time.sleep(1.5)\n    return x\n", namespace)
    made = Pair(tmp_path, namespace, {"slow": "function"})
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with made.cell() as ex:
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()  # as the kernel's interrupt does
            with pytest.raises(KeyboardInterrupt) as caught:
                ex["slow"](torch.ones(1))
    finally:
        signal.signal(signal.SIGINT, previous)
        made.close()
    assert protocol.student_block(caught.value) == (
        f"{protocol.STUDENT_BLOCK}: the test called your `slow`, which was still running when the time ran out\n")


def test_control_an_interrupt_that_is_not_the_bridge_s_says_nothing_of_the_student_s_code():
    assert protocol.student_block(KeyboardInterrupt()) == ""


def test_a_traceback_is_bounded_and_plain():
    frames = protocol._clean_frames([{"cell": "\x1b[31mred\n" + "x" * 1000, "line": 3, "name": "f", "code": "<b>"}] * 50)
    assert len(frames) == protocol.MAX_FRAMES + 1
    assert "\x1b" not in frames[0]["cell"] and "\n" not in frames[0]["cell"] and len(frames[0]["cell"]) <= 200
    exc = protocol.exception_from({"type": "ValueError", "message": "m", "frames": []}, "your `f`")
    assert "the error came from your `f` itself" in protocol.student_block(exc)


def test_the_test_s_side_keeps_a_bounded_record_of_its_objects_errors(pair):
    class Failing(Scripted):
        def decode_step(self, prev, hidden):
            raise AssertionError("no")

    with pair.cell() as ex:
        sizes = []
        original = pair.trusted._answer_callback

        def watched(header, buffers):
            original(header, buffers)
            sizes.append(len(pair.trusted.errors))

        pair.trusted._answer_callback = watched
        try:
            assert ex["catches_every_stand_in_error"](Failing(), 100) == 100
        finally:
            pair.trusted._answer_callback = original
    assert max(sizes) == protocol.MAX_STANDIN_ERRORS and pair.trusted.errors == {}


def test_torch_nn_modules_cross_by_value(pair):
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, batch_first=True)
    with pair.cell() as ex:
        name, hidden, weight = ex["describe"](gru)
    assert (name, hidden) == ("GRU", 4) and torch.equal(weight, gru.weight_hh_l0.detach())


def test_a_student_object_is_a_handle_that_behaves_like_the_module(pair):
    with pair.cell() as ex:
        Model = ex["Model"]
        torch.manual_seed(1)
        model = Model(7, 4, pad_idx=2).eval()
        assert isinstance(model, nn.Module) and isinstance(model, Model) and isinstance(model, Handle)
        assert model.eval() is model and model.pad_idx == 2 and model.training is False
        assert isinstance(model.embedding, nn.Embedding) and not isinstance(model.embedding, Model)
        params = list(model.parameters())
        assert len(params) == 3 and all(type(p) is torch.Tensor for p in params)
        logits = model(torch.tensor([[1, 2, 3]]))
        assert tuple(logits.shape) == (1, 3, 7)
        other = Model(7, 4).eval()
        other.load_state_dict(model.state_dict())
        assert torch.equal(other(torch.tensor([[1, 2, 3]])), logits)
        logits.sum().backward()
        assert model.embedding.weight.grad is not None, "the student's parameters got their gradient"


class Scripted:
    """A stand-in of the test's: decodes the step number; remembers what it was fed."""

    secret = "the test's own data"

    def __init__(self):
        self.fed = []

    def encode(self, src):
        return torch.zeros(src.size(0), dtype=torch.long)

    def decode_step(self, prev, hidden):
        assert type(prev) is torch.Tensor, "the stand-in checks what it is fed"
        self.fed.append(prev.clone())
        return hidden + 1, hidden + 1


def test_stand_ins_stay_with_the_test_and_are_called_back(pair):
    model = Scripted()
    with pair.cell() as ex:
        out = ex["decode"](model, torch.zeros(2, 3), 4)
        assert torch.equal(out, torch.tensor([[1, 2, 3, 4]] * 2))
        assert len(model.fed) == 4
        with pytest.raises(AttributeError, match="not available to your code"):
            ex["pokes"](model)


class Dropping(Scripted):
    """A test's model in training mode: each decode_step draws (dropout)."""

    def decode_step(self, prev, hidden):
        return hidden + torch.rand(hidden.shape), hidden + 1


def test_how_often_the_student_s_code_calls_the_test_back_moves_nothing_of_the_test_s_rng(pair):
    after = []
    with pair.cell() as ex:
        for steps in (1, 7):
            torch.manual_seed(3)
            ex["decode"](Dropping(), torch.zeros(2, 3), steps)
            after.append(torch.randn(4))
    assert torch.equal(after[0], after[1])


def test_control_in_one_process_the_callbacks_move_the_test_s_rng():
    namespace: dict = {}
    exec(STUDENT_CODE, namespace)
    after = []
    for steps in (1, 7):
        torch.manual_seed(3)
        namespace["decode"](Dropping(), torch.zeros(2, 3), steps)
        after.append(torch.randn(4))
    assert not torch.equal(after[0], after[1])


def test_a_stand_in_s_own_error_comes_back_to_the_test_unchanged(pair):
    class Strict(Scripted):
        def decode_step(self, prev, hidden):
            raise AssertionError("decode_step takes prev_tokens of shape [B]")

    with pair.cell() as ex:
        with pytest.raises(AssertionError, match="prev_tokens of shape"):
            ex["decode"](Strict(), torch.zeros(2, 3), 2)


def test_fake_values_arrive_as_data_or_fail(pair):
    with pair.cell() as ex:
        forged = ex["fake_tensor"](torch.ones(2))
        assert type(forged) is torch.Tensor, "a tensor subclass arrives as a plain tensor"
        with pytest.raises(TypeError, match="your `always_equal` returned a `AlwaysEqual`, expected a tensor"):
            ex["always_equal"](torch.ones(2))
        model = ex["NoisyModel"]()
        with pytest.raises(TypeError, match="`forward` of your `NoisyModel` returned a `Noisy`"):
            model(torch.ones(3))
        pair_ = ex["returns_a_namedtuple"](torch.ones(1))
        assert type(pair_) is tuple and torch.equal(pair_[1], torch.full((1,), 2.0)), "a namedtuple crosses as a tuple"


def test_a_handle_s_special_methods_decide_no_comparison(pair):
    with pair.cell() as ex:
        model = ex["Model"](5, 3)
        other = ex["Model"](5, 3)
        assert bool(model) is True, "truth is not the student's len()"
        assert model == model and model != other and not (model == torch.ones(1))
        with pytest.raises(TypeError, match="contains"):
            _ = 1 in model


def test_control_the_fakes_fool_a_local_check():
    namespace: dict = {}
    exec(STUDENT_CODE, namespace)
    assert type(namespace["fake_tensor"](torch.ones(2))) is not torch.Tensor
    assert namespace["always_equal"](torch.ones(2)) == torch.ones(2)
    noise = namespace["NoisyModel"]()(torch.ones(3))
    assert not torch.equal(noise[0], noise[0]) and not bool(noise), "indexing gives noise, truth asks its len()"


# --- hostile frames from the student's side -----------------------------------------------------


def hostile_reply(header: dict, buffers=()):
    """What the test's side makes of one crafted reply to its call."""
    a, b = socket.socketpair()
    try:
        side = protocol.TrustedSide("unused")
        side.sock = a
        send_frame(b, dict(header, op="return"), list(buffers))
        header_in, buffers_in = side.wait()
        from grader.bridge.protocol import Decoder

        return Decoder(buffers_in, side._decode_other).decode(header_in.get("value"))
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("header,buffers,words", [
    ({"value": {"T": 0, "dtype": "float32", "shape": [4]}}, [b"\0" * 12], "do not match"),
    ({"value": {"T": 0, "dtype": "object", "shape": [1]}}, [b"\0" * 8], "not allowed"),
    ({"value": {"T": 3, "dtype": "float32", "shape": [1]}}, [], "no buffer"),
    ({"value": {"M": 0}}, [b"cos\nsystem\n(S'echo pwned'\ntR."], "may not send"),
    ({"value": {"C": 12345}}, [], "never sent"),
    ({"value": {"H": "x"}}, [], "malformed handle"),
    ({"value": ["raw", "list"]}, [], "unknown form"),
    ({"value": {"d": [[{"l": []}, 1]]}}, [], "plain value"),
], ids=["size", "dtype", "buffer", "pickle", "callback", "handle", "raw_list", "dict_key"])
def test_hostile_replies_are_refused(header, buffers, words):
    with pytest.raises(BridgeError, match=words):
        hostile_reply(header, buffers)


def test_deep_nesting_is_refused():
    node = {"l": []}
    for _ in range(200):
        node = {"l": [node]}
    with pytest.raises(BridgeError, match="too deeply"):
        hostile_reply({"value": node})


def test_a_frame_over_the_limit_is_refused_before_it_is_read():
    a, b = socket.socketpair()
    try:
        b.sendall(struct.pack(">QI", protocol.MAX_FRAME_BYTES + 1, 10))
        with pytest.raises(BridgeError, match="size limit"):
            protocol.recv_frame(a)
    finally:
        a.close()
        b.close()


def test_a_result_the_test_s_kernel_cannot_take_fails_that_test_with_a_named_error(pair, monkeypatch):
    """Running out of memory or stack on what the student's code sent back is the student's data, not a
    failed grader: the call raises StudentDataError, which the grader notes in the row (execution.py)."""
    from grader.grading.execution import STUDENT_DATA_ERRORS

    def exhausted(self, node, depth=0):
        raise MemoryError

    with pair.cell() as ex:
        monkeypatch.setattr(protocol.Decoder, "decode", exhausted)
        with pytest.raises(protocol.StudentDataError, match="ran out of memory taking what your `double` sent back"):
            ex["double"](torch.ones(1))
        monkeypatch.undo()
        assert torch.equal(ex["double"](torch.ones(1)), torch.full((1,), 2.0)), "the next call works"
    assert "StudentDataError" in STUDENT_DATA_ERRORS


def test_the_pages_read_the_student_s_frames_as_the_bridge_writes_them():
    from grader.pages import summary

    assert summary.STUDENT_BLOCK == protocol.STUDENT_BLOCK
    exc = protocol.exception_from({"type": "AssertionError", "message": "mine", "frames": []}, "your `f`")
    assert summary.failure_kind([{"output_type": "error", "ename": "AssertionError",
                                  "traceback": ["Cell In[1]", protocol.student_block(exc), "AssertionError: mine"]}]) \
        == "AssertionError", "an assert in the student's own code is their error, not a wrong value"
