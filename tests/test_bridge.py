"""The bridge between the test's kernel and the student's: a proxied call means what a local call meant,
and what the student's side sends is parsed as hostile. No kernel: both sides run here (bridge_pair.py).
"""

from __future__ import annotations

import socket
import struct

import pytest
import torch
import torch.nn as nn
from bridge_pair import Pair

from grader.bridge import protocol
from grader.bridge.protocol import BridgeError, Handle, send_frame

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
             "always_equal": "function", "Model": "module"}


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


def test_the_rng_state_crosses_with_the_call():
    """Seed, call student code that draws, draw again: the same numbers as in one process."""
    namespace: dict = {}
    exec(STUDENT_CODE, namespace)
    torch.manual_seed(5)
    local = [namespace["draw_and_add"](torch.zeros(3)), torch.randn(3)]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        pair = Pair(Path(folder), namespace, EXERCISES)
        try:
            with pair.cell() as ex:
                torch.manual_seed(5)
                remote = [ex["draw_and_add"](torch.zeros(3)), torch.randn(3)]
        finally:
            pair.close()
    assert all(torch.equal(a, b) for a, b in zip(local, remote))


def test_grad_mode_crosses(pair):
    with pair.cell() as ex:
        with torch.no_grad():
            assert ex["grad_mode"]() is False
        assert ex["grad_mode"]() is True


def test_in_place_changes_come_back(pair):
    x, lengths = torch.ones(2, 3), torch.tensor([3, 2])
    with pair.cell() as ex:
        total = ex["zero_in_place"](x, lengths)
    assert torch.equal(x, torch.zeros(2, 3)) and int(total) == 5
    assert torch.equal(lengths, torch.tensor([3, 2]))


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


def test_a_stand_in_s_own_error_comes_back_to_the_test_unchanged(pair):
    class Strict(Scripted):
        def decode_step(self, prev, hidden):
            raise AssertionError("decode_step takes prev_tokens of shape [B]")

    with pair.cell() as ex:
        with pytest.raises(AssertionError, match="prev_tokens of shape"):
            ex["decode"](Strict(), torch.zeros(2, 3), 2)


def test_fake_values_arrive_as_what_they_are(pair):
    with pair.cell() as ex:
        forged = ex["fake_tensor"](torch.ones(2))
        agreeable = ex["always_equal"](torch.ones(2))
    assert type(forged) is torch.Tensor, "a tensor subclass arrives as a plain tensor"
    assert type(agreeable) is not torch.Tensor and not (agreeable == torch.ones(2))


def test_control_the_fakes_fool_a_local_check():
    namespace: dict = {}
    exec(STUDENT_CODE, namespace)
    assert type(namespace["fake_tensor"](torch.ones(2))) is not torch.Tensor
    assert namespace["always_equal"](torch.ones(2)) == torch.ones(2)


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
