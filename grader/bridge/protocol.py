"""The code both kernels run so that test cells can call the student's code without ever running it.

At grading time the test cells run in a *trusted* kernel that never executes student code. Each
exercise name there is a proxy (`Remote`): calling it sends the call, as data, to the *student* kernel,
where `serve()` runs the student's function and sends the result back, as data. The grader relays the
frames between the two kernels' sockets (relay.py), so neither kernel can reach the other directly.

This file is sent as source to both kernels (the sandbox lets them read nothing of the grader's), so it
imports only the standard library and torch.

What crosses, in both directions, is *data* in a format with no code in it: a JSON header (tagged
nodes: None, booleans, numbers, strings, tuples, lists, dicts, tensors, handles) plus the raw bytes of
the tensors. The trusted side parses what the student side sends as hostile: every node is checked,
tensors are rebuilt from bytes with an allowed dtype and a size that must match, and anything else is
refused. Objects that are not data never cross: a student object (a `Seq2Seq` instance) stays in the
student kernel and is reached through a handle; an object of the test's (a scripted stand-in) stays in
the trusted kernel and the student side may call only `encode`, `decode_step` and `__call__` on it.
Only the trusted side sends `torch.nn` modules by value (pickled: the student kernel may run anything
anyway).

What a call carries, and what it never brings back:

* Arguments cross by value: the student's code works on copies, and an in-place change it makes is
  never written into the test's tensors. The student's side reports which copies changed (shape, dtype,
  values); a test asks for that report through `call_reporting_changes`, and it decides nothing else.
* The trusted global RNG state goes with each call, so a model built right after `manual_seed(s)` starts
  as it would in one process; the trusted RNG then moves on by a fixed step (`advance_rng`) and never
  takes a state from the student's side. The test's objects that the student's code calls back draw
  from that next state, and the call leaves it where they found it: how often the student's code calls
  them back moves nothing of the test's.
* A result used as a value is data: what an exercise function, a call on a student's object or one of
  its methods returns. Handles come back only from constructors, from methods that return the object
  itself, as submodules, and from the methods that list submodules; anything else fails the test with
  a TypeError that says what came back. A handle's special methods decide no comparison.
* A result with a graph can be backpropagated through from the test: the gradient request crosses back
  to the student kernel. The grad mode crosses with each call.
* An error from the student's code crosses as its builtin type and message, with a bounded traceback of
  the student's own frames (`student_frames`): the trusted kernel shows those instead of the bridge's.
"""

from __future__ import annotations

import builtins
import json
import linecache
import pickle
import socket
import struct
import sys
import types

import torch

MAX_FRAME_BYTES = 256 * 2**20
MAX_HEADER_BYTES = 8 * 2**20
MAX_DEPTH = 40
MAX_NODES = 200_000
MAX_ITEMS = 100_000  # items of an iterator a student's code returns (e.g. `model.parameters()`)
MAX_MESSAGE_CHARS = 4000  # of an error message that crosses
MAX_FRAMES = 12  # of the student's traceback that cross (the first and the last half of them)
MAX_LINE_CHARS = 200  # of each line of code, name or place in that traceback
RELAY_MARK = "relay"  # the key of the relay's own `raise` frames: the student's side is gone (relay.py)
MAX_STANDIN_ERRORS = 16  # errors of the test's objects kept while a call is in progress
CALLBACK_METHODS = ("encode", "decode_step", "__call__")  # what student code may call on a test's object
# ... and, on a test's object that is an nn.Module, the module methods that return data or the object itself
# (a student's decoder may put its model in eval mode or ask where its parameters live).
MODULE_METHODS = ("eval", "train", "parameters", "named_parameters", "buffers", "to", "cpu")
# Methods of a student's object whose result may hold handles to its submodules (found by type).
SUBMODULE_METHODS = ("modules", "children", "named_modules", "named_children", "get_submodule")
BRIDGE_FILE = "grader_bridge"  # the file name this source is compiled under in both kernels
OWN_FILES = frozenset({BRIDGE_FILE, globals().get("__file__", BRIDGE_FILE)})  # (and its own, imported as a module)
DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
    torch.float32, torch.float64, torch.complex64, torch.complex128)}
_PREFIX = struct.Struct(">QI")  # frame bytes after the prefix, header bytes


class BridgeError(RuntimeError):
    """The other kernel sent something that is not allowed, or stopped answering."""


# ---------------------------------------------------------------------------------------------
# Frames: a length-prefixed JSON header and the raw buffers it lists.


def send_frame(sock: socket.socket, header: dict, buffers: list[bytes] = ()) -> None:
    """Send one frame: its header (JSON) and the buffers whose lengths the header lists."""
    header = dict(header, buffers=[len(b) for b in buffers])
    text = json.dumps(header, allow_nan=True).encode()
    total = len(text) + sum(len(b) for b in buffers)
    if total > MAX_FRAME_BYTES:
        raise BridgeError(f"a message of {total / 2**20:.0f} MB is over the {MAX_FRAME_BYTES // 2**20} MB limit")
    sock.sendall(_PREFIX.pack(total, len(text)) + text)
    for b in buffers:
        sock.sendall(b)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray(n)
    view, got = memoryview(data), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise BridgeError("the other kernel closed the connection")
        got += k
    return bytes(data)


def recv_frame(sock: socket.socket) -> tuple[dict, list[bytes]]:
    """Receive one frame, checking every length before reading or parsing anything."""
    total, header_len = _PREFIX.unpack(_recv_exact(sock, _PREFIX.size))
    if total > MAX_FRAME_BYTES or header_len > min(total, MAX_HEADER_BYTES):
        raise BridgeError("a message over the size limit")
    try:
        header = json.loads(_recv_exact(sock, header_len))
    except (ValueError, RecursionError):
        raise BridgeError("a message that is not valid JSON") from None
    lengths = header.get("buffers") if isinstance(header, dict) else None
    if not (isinstance(lengths, list) and all(type(n) is int and n >= 0 for n in lengths)
            and sum(lengths) == total - header_len):
        raise BridgeError("a message whose buffers do not add up")
    return header, [_recv_exact(sock, n) for n in lengths]


# ---------------------------------------------------------------------------------------------
# Tensors as bytes.


def tensor_bytes(t: torch.Tensor) -> bytes:
    """A tensor's values as raw bytes (any dtype, any strides), on the CPU."""
    flat = t.detach().resolve_conj().resolve_neg().to("cpu").reshape(-1).contiguous()
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def tensor_from(buf: bytes, dtype_name, shape) -> torch.Tensor:
    """A tensor rebuilt from raw bytes; a dtype, shape or size that does not fit is refused."""
    dtype = DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
    if dtype is None:
        raise BridgeError(f"a tensor of dtype {dtype_name!r}, which is not allowed")
    if not (isinstance(shape, list) and len(shape) <= 16 and all(type(n) is int and 0 <= n for n in shape)):
        raise BridgeError("a tensor with a malformed shape")
    numel = 1
    for n in shape:
        numel *= n
    itemsize = torch.empty((), dtype=dtype).element_size()
    if numel * itemsize != len(buf):
        raise BridgeError("a tensor whose bytes do not match its shape")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(buf), dtype=torch.uint8).view(dtype).reshape(shape).clone()


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors hold exactly the same values (NaN included), bit for bit."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return tensor_bytes(a) == tensor_bytes(b)


CHANGES = ("shape", "dtype", "values")


def changes(now: torch.Tensor, before: torch.Tensor) -> list[str]:
    """What differs in a tensor from a snapshot of it: some of `shape`, `dtype`, `values` (none: unchanged)."""
    found = [kind for kind, differs in (("shape", now.shape != before.shape), ("dtype", now.dtype != before.dtype))
             if differs]
    if not found and not same_bits(now, before):
        found.append("values")
    return found


def torch_nn_class(obj) -> type | None:
    """The class of `obj` when it is a module class of torch.nn itself (not a subclass defined elsewhere)."""
    cls = type(obj)
    if isinstance(obj, torch.nn.Module) and cls.__module__.startswith("torch.nn.modules."):
        if getattr(torch.nn, cls.__name__, None) is cls:
            return cls
    return None


def sent_by_value(obj) -> bool:
    """A module the test built from torch.nn classes only: it crosses as a copy."""
    return torch_nn_class(obj) is not None and all(torch_nn_class(m) is not None for m in obj.modules())


MATERIALISED = (types.GeneratorType, map, filter, zip, reversed, type({}.keys()), type({}.values()),
                type({}.items()))


def materialised(enc, iterator, depth: int) -> dict:
    """A generator or view crosses as its items, and is an iterator again on the other side."""
    items = []
    for item in iterator:
        items.append(item)
        if len(items) > MAX_ITEMS:
            raise BridgeError(f"an iterator of more than {MAX_ITEMS} items")
    return {"it": [enc.encode(v, depth + 1) for v in items]}


# ---------------------------------------------------------------------------------------------
# Encoding: values to tagged JSON nodes plus buffers. Both sides share it; each side says what it
# does with objects that are not data.


class Encoder:
    """Turns a value into JSON nodes and buffers; `other` decides what becomes of a non-data object."""

    def __init__(self, other):
        self.other = other
        self.buffers: list[bytes] = []
        self.tensors: list[torch.Tensor] = []  # every tensor encoded, in order
        self.paths: list[str] = []  # where each of them was, as `[1][0]` (positions and keys)
        self.at: list[str] = []
        self.nodes = 0

    def tensor(self, t: torch.Tensor, **extra) -> dict:
        if t.layout != torch.strided or t.is_quantized or t.device.type == "meta" or t.is_nested:
            raise BridgeError(f"a {t.layout} tensor cannot cross: only dense tensors")
        if str(t.dtype).removeprefix("torch.") not in DTYPES:
            raise BridgeError(f"a tensor of dtype {t.dtype} cannot cross")
        self.buffers.append(tensor_bytes(t))
        self.tensors.append(t)
        self.paths.append("".join(self.at))
        node = {"T": len(self.buffers) - 1, "dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                "rg": bool(t.requires_grad)}
        node.update(extra)
        return node

    def encode(self, value, depth: int = 0):
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise BridgeError("a value nested too deeply or too large to cross")
        if value is None or type(value) in (bool, int, float, str):
            return value
        if isinstance(value, torch.Tensor):
            return self.tensor(value)
        if isinstance(value, torch.dtype):
            return {"dtype_": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"device": str(value)}
        if isinstance(value, torch.Size):
            return {"size": [int(n) for n in value]}
        if type(value) in (tuple, list) or is_namedtuple(value):
            items = list(tuple.__iter__(value)) if isinstance(value, tuple) else list(list.__iter__(value))
            return {"t" if isinstance(value, tuple) else "l": [self.item(f"[{i}]", v, depth) for i, v in enumerate(items)]}
        if type(value) is dict or (isinstance(value, dict) and type(value).__module__ == "collections"):
            return {"d": [[self.encode(k, depth + 1), self.item(f"[{k!r}]", v, depth)] for k, v in dict.items(value)],
                    "ordered": type(value) is not dict}
        return self.other(self, value, depth)

    def item(self, where: str, value, depth: int):
        """Encode an item of a container, remembering where it is."""
        self.at.append(where[:MAX_LINE_CHARS])
        try:
            return self.encode(value, depth + 1)
        finally:
            self.at.pop()


def is_namedtuple(value) -> bool:
    """A namedtuple (it crosses as a plain tuple)."""
    return isinstance(value, tuple) and isinstance(getattr(type(value), "_fields", None), tuple)


class Items:
    """What a generator or a dict view became after crossing: an iterator over its items, which a check can read."""

    def __init__(self, items: list):
        self.items = items
        self._next = iter(items)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._next)


class Decoder:
    """Turns JSON nodes and buffers back into values, checking every node; `other` reads the side's own tags."""

    def __init__(self, buffers: list[bytes], other):
        self.buffers = buffers
        self.other = other
        self.tensors: list[torch.Tensor] = []
        self.nodes = 0

    def tensor(self, node: dict) -> torch.Tensor:
        index = node.get("T")
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise BridgeError("a tensor that refers to no buffer")
        t = tensor_from(self.buffers[index], node.get("dtype"), node.get("shape"))
        self.tensors.append(t)
        return t

    def decode(self, node, depth: int = 0):
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise BridgeError("a value nested too deeply or too large")
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is not dict or len(node) == 0:
            raise BridgeError(f"a value of unknown form ({type(node).__name__})")
        if "T" in node:
            return self.tensor(node)
        if "t" in node or "l" in node or "it" in node:
            items = node.get("t", node.get("l", node.get("it")))
            if type(items) is not list:
                raise BridgeError("a malformed sequence")
            values = [self.decode(v, depth + 1) for v in items]
            return tuple(values) if "t" in node else Items(values) if "it" in node else values
        if "d" in node:
            pairs = node["d"]
            if type(pairs) is not list or not all(type(p) is list and len(p) == 2 for p in pairs):
                raise BridgeError("a malformed dict")
            out = {}
            for k, v in pairs:
                key = self.decode(k, depth + 1)
                if not (key is None or type(key) in (bool, int, float, str, tuple)):
                    raise BridgeError("a dict key that is not a plain value")
                out[key] = self.decode(v, depth + 1)
            if node.get("ordered"):
                from collections import OrderedDict

                out = OrderedDict(out)
            return out
        if "dtype_" in node and node["dtype_"] in DTYPES:
            return DTYPES[node["dtype_"]]
        if "device" in node:
            device = node["device"]
            if isinstance(device, str) and (device in ("cpu", "cuda", "mps") or device.startswith("cuda:")):
                try:
                    return torch.device(device)
                except RuntimeError:
                    pass
            raise BridgeError("a malformed device")
        if "size" in node and type(node["size"]) is list and all(type(n) is int for n in node["size"]):
            return torch.Size(node["size"])
        return self.other(self, node, depth)


def rng_state() -> bytes:
    return tensor_bytes(torch.get_rng_state())


def set_rng_state(buf: bytes) -> None:
    """The student's side takes the test's global RNG state (only a state of the right size is accepted)."""
    current = torch.get_rng_state()
    if len(buf) == current.numel():
        torch.set_rng_state(torch.frombuffer(bytearray(buf), dtype=torch.uint8).clone())


def advance_rng() -> None:
    """Move the trusted global RNG on by a fixed step, after its state went out with a call: one draw,
    which seeds the next state. Nothing the student's code does changes where it goes, and two calls
    (two training steps with dropout) still draw differently."""
    torch.default_generator.manual_seed(int(torch.randint(0, 2**62, ()).item()))


def error_header(exc: BaseException, token: int | None = None, namespace: dict | None = None,
                 called: str = "") -> dict:
    try:
        message = str(exc)
    except Exception:
        message = "(its message could not be read)"
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + " [...]"
    return {"op": "raise", "type": type(exc).__name__[:100], "message": message, "token": token,
            "frames": student_frames(exc, namespace or {}, called)}


def plain_line(text, limit: int = MAX_LINE_CHARS) -> str:
    """One line of text that is safe to show anywhere: no control characters, at most `limit` characters."""
    text = "".join(c if c.isprintable() else " " for c in str(text).replace("\t", " ")).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _library_paths() -> tuple[str, ...]:
    """Where code that is not the student's lives: the interpreter's and the installed packages' folders."""
    import os
    import sysconfig

    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.__file__), os.path.dirname(torch.__file__)}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        found.add(sysconfig.get_paths().get(key, ""))
    return tuple(p.rstrip("/") + "/" for p in found if p)


def _cell_of(filename: str, namespace: dict, prefer: tuple[str, ...] = ()) -> str:
    """A student's cell, named by a function or class it defines (a cell has no name of its own): the one the
    test called or the frame's own, when that cell defines them, else the first."""
    def defined_here(value) -> bool:
        code = getattr(value, "__code__", None) or getattr(getattr(value, "__init__", None), "__code__", None)
        return getattr(code, "co_filename", None) == filename

    names = [n for n in prefer if n in namespace] + [n for n in list(namespace) if not n.startswith("_")]
    for name in names:
        if defined_here(namespace[name]):
            return f"the cell defining `{plain_line(name, 100)}`"
    return "your cell"


def student_frames(exc: BaseException, namespace: dict, called: str = "") -> list[dict]:
    """The frames of the student's own code in an error's traceback, innermost last, bounded: the bridge's
    frames and library code (torch, the standard library) left out, each line cut to MAX_LINE_CHARS."""
    libraries, found = _library_paths(), []
    tb = exc.__traceback__
    while tb is not None and len(found) < 10_000:
        code = tb.tb_frame.f_code
        filename = code.co_filename
        if filename not in OWN_FILES and not filename.startswith(libraries) and not filename.startswith("<frozen"):
            found.append((filename, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    if len(found) > MAX_FRAMES:
        half = MAX_FRAMES // 2
        found = found[:half] + [("", len(found) - MAX_FRAMES, "")] + found[-half:]
    frames = []
    for filename, line, name in found:
        if not filename:
            frames.append({"skipped": line})
            continue
        frames.append({"cell": _cell_of(filename, namespace, (called, name)), "line": line, "name": plain_line(name, 100),
                       "code": plain_line(linecache.getline(filename, line))})
    return frames


def _clean_frames(frames) -> list[dict]:
    """The student's frames as the trusted side keeps them: checked, bounded, plain text."""
    clean = []
    for frame in frames[: MAX_FRAMES + 1] if isinstance(frames, list) else []:
        if not isinstance(frame, dict):
            continue
        if type(frame.get("skipped")) is int:
            clean.append({"skipped": max(0, frame["skipped"])})
        elif type(frame.get("line")) is int:
            clean.append({"cell": plain_line(frame.get("cell", "")), "line": frame["line"],
                          "name": plain_line(frame.get("name", ""), 100), "code": plain_line(frame.get("code", ""))})
    return clean


def exception_from(header: dict, called: str = "") -> BaseException:
    """An exception of the same builtin type (a RuntimeError naming the type otherwise), carrying the
    student's frames and which of the student's names the test called."""
    name, message = str(header.get("type", "Error"))[:100], str(header.get("message", ""))[:MAX_MESSAGE_CHARS]
    if header.get(RELAY_MARK) is True:  # not the student's error: their side stopped answering (died, or was stopped)
        return StudentSideGone(message)
    cls = getattr(builtins, name, None)
    exc = None
    if isinstance(cls, type) and issubclass(cls, Exception) and cls not in (StopIteration, StopAsyncIteration):
        try:
            exc = cls(message)
        except Exception:
            exc = None
    if exc is None:
        exc = RuntimeError(f"{name}: {message}")
    exc._student = {"frames": _clean_frames(header.get("frames")), "called": called}
    return exc


STUDENT_BLOCK = "Where your code failed"  # the first words of the student's frames in a traceback


def student_block(exc: BaseException) -> str:
    """The student's frames of an error from their code, as the text a traceback shows; "" if it is not theirs."""
    info = getattr(exc, "_student", None)
    if not isinstance(info, dict):
        return ""
    called = info.get("called") or "your code"
    if info.get("running"):
        return f"{STUDENT_BLOCK}: the test called {called}, which was still running when the time ran out\n"
    lines = [f"{STUDENT_BLOCK} (the test called {called}):"]
    for frame in info.get("frames", []):
        if "skipped" in frame:
            lines.append(f"  [... {frame['skipped']} more frames ...]")
        else:
            lines.append(f"  {frame['cell']}, line {frame['line']}, in {frame['name']}")
            if frame["code"]:
                lines.append(f"    {frame['code']}")
    if not info.get("frames"):
        lines.append(f"  the error came from {called} itself (no line of your code is left to show)")
    return "\n".join(lines) + "\n"


def without_bridge_frames(tb):
    """A traceback with the bridge's own frames taken out (what the test's reader needs is the test and
    the student's code, not the machinery between them)."""
    kept = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename not in OWN_FILES:
            kept.append(tb)
        tb = tb.tb_next
    out = None
    for entry in reversed(kept):
        out = types.TracebackType(out, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return out


def show_traceback(shell, etype, value, tb, tb_offset=None):
    """The trusted kernel's tracebacks: the test's frames without the bridge's, then the student's frames."""
    stb = shell.InteractiveTB.structured_traceback(etype, value, without_bridge_frames(tb), tb_offset=tb_offset)
    block = student_block(value)
    if block:
        stb = list(stb[:-1]) + [block] + list(stb[-1:])
    shell._showtraceback(etype, value, stb)
    return stb


def install_traceback_display(shell) -> None:
    """Make the trusted kernel show tracebacks through `show_traceback`."""
    shell.set_custom_exc((BaseException,), show_traceback)


# ---------------------------------------------------------------------------------------------
# The student side: serve calls from the test, on the student's own objects.


class StandIn:
    """An object of the test's, as student code sees it: only encode, decode_step and __call__ reach it."""

    __slots__ = ("_side", "_cid", "_methods")

    def __init__(self, side, cid: int, methods: list[str]):
        object.__setattr__(self, "_side", side)
        object.__setattr__(self, "_cid", cid)
        object.__setattr__(self, "_methods", [m for m in methods if m in CALLBACK_METHODS + MODULE_METHODS])

    def __getattr__(self, name):
        if name in self._methods and name != "__call__":
            return lambda *args, **kwargs: self._side.callback(self._cid, name, args, kwargs)
        raise AttributeError(f"the test's {name!r} is not available to your code: only "
                             f"{', '.join(m for m in self._methods if m != '__call__')} may be called on it")

    def __call__(self, *args, **kwargs):
        if "__call__" not in self._methods:
            raise TypeError("the test's object is not callable")
        return self._side.callback(self._cid, "__call__", args, kwargs)

    def __repr__(self):
        return "<an object of the test>"


class StandInError(Exception):
    """An error the test's object raised; its message stays with the test."""

    def __init__(self, kind: str, token):
        super().__init__(f"the test's object raised {kind}")
        self.token = token


class StudentSide:
    """Serves the test's calls in the student kernel, one connection per test cell."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.objects: dict[int, object] = {}  # handle id -> the student's object
        self.ids: dict[int, int] = {}  # id(object) -> handle id
        self.graphs: dict[int, tuple[list, list]] = {}  # call id -> (outputs with a graph, input leaves)
        self.sock: socket.socket | None = None

    # -- encoding what goes to the test
    def _other(self, enc: Encoder, value, depth: int):
        if isinstance(value, StandIn):
            return {"C": value._cid}
        if isinstance(value, MATERIALISED):
            return materialised(enc, value, depth)
        return self.handle(value)

    def handle(self, obj) -> dict:
        hid = self.ids.get(id(obj))
        if hid is None:
            hid = len(self.objects) + 1
            self.objects[hid], self.ids[id(obj)] = obj, hid
        cls = type(obj)
        methods = sorted(n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n, None)))
        nn_cls = torch_nn_class(obj)
        return {"H": hid, "cls": cls.__name__, "mro": [c.__name__ for c in cls.__mro__],
                "module": isinstance(obj, torch.nn.Module), "nn": nn_cls.__name__ if nn_cls else None,
                "methods": methods + (["__call__"] if callable(obj) else [])}

    def encode_result(self, value) -> tuple[dict, list[bytes], list[torch.Tensor]]:
        """A result as a reply, its buffers, and the tensors in it that carry a graph."""
        outputs: list[torch.Tensor] = []
        enc = Encoder(self._other)
        original = enc.tensor

        def tensor(t, **extra):
            if t.requires_grad and t.grad_fn is not None:  # a result with a graph: backward comes back here
                outputs.append(t)
                return original(t, g=True)
            if t.requires_grad and t.grad is not None:  # a parameter: its gradient comes along, as a copy
                node = original(t)
                node["grad"] = enc.tensor(t.grad)["T"]
                return node
            return original(t)

        enc.tensor = tensor
        node = enc.encode(value)
        return {"value": node, "graph": bool(outputs)}, enc.buffers, outputs

    # -- decoding what the test sends
    def _decode_other(self, dec: Decoder, node: dict, depth: int):
        if "H" in node:
            if node["H"] not in self.objects:
                raise BridgeError("a handle to an object that does not exist")
            return self.objects[node["H"]]
        if "C" in node:
            return StandIn(self, node["C"], node.get("methods", []))
        if "M" in node:
            return pickle.loads(dec.buffers[node["M"]])
        raise BridgeError("a value of unknown form")

    def decode_args(self, header: dict, buffers: list[bytes]):
        dec = Decoder(buffers, self._decode_other)
        args = dec.decode(header.get("args", {"t": []}))
        kwargs = dec.decode(header.get("kwargs", {"d": []}))
        leaves = []
        for t, node_rg in zip(dec.tensors, header.get("grads", [])):
            if node_rg:
                t.requires_grad_(True)
                leaves.append(t)
        return args, kwargs, dec.tensors, leaves

    def target(self, target):
        kind = target[0]
        if kind == "name":
            if target[1] not in self.namespace:
                raise NameError(f"name {target[1]!r} is not defined: run the cell that defines it")
            return self.namespace[target[1]]
        obj = self.objects.get(target[1])
        if obj is None:
            raise BridgeError("a handle to an object that does not exist")
        return obj

    def call(self, header: dict, buffers: list[bytes]) -> tuple[dict, list[bytes]]:
        target = header["target"]
        args, kwargs, tensors, leaves = self.decode_args(header, buffers)
        snapshots = [t.detach().clone() for t in tensors]
        set_rng_state(buffers[header["rng"]])
        with torch.set_grad_enabled(bool(header.get("grad", True))):
            obj = self.target(target)
            op = target[0]
            if op in ("name", "call"):
                value = obj(*args, **kwargs)
            elif op == "method":
                value = getattr(obj, target[2])(*args, **kwargs)
            elif op == "getattr":
                value = getattr(obj, target[2])
            elif op == "setattr":
                setattr(obj, target[2], args[0])
                value = None
            elif op == "len":
                value = len(obj)
            elif op == "iter":
                value = list(iter(obj))[: MAX_ITEMS + 1]
            elif op == "getitem":
                value = obj[args[0]]
            else:
                raise BridgeError(f"unknown operation {op!r}")
        call_id = header.get("id", 0)
        reply, out_buffers, outputs = self.encode_result(value)
        if outputs:
            self.graphs[call_id] = (outputs, leaves)
        reply["changed"] = [[i, what] for i, (t, s) in enumerate(zip(tensors, snapshots)) if (what := changes(t, s))]
        return reply, out_buffers

    def backward(self, header: dict, buffers: list[bytes]) -> tuple[dict, list[bytes]]:
        outputs, leaves = self.graphs.get(header.get("call"), (None, None))
        if outputs is None:
            raise BridgeError("no graph to backpropagate through (it was made in an earlier test cell)")
        grads = [tensor_from(buffers[i], d, s) if i is not None else None for i, d, s in header["grads"]]
        pairs = [(o, g) for o, g in zip(outputs, grads) if g is not None]
        for leaf in leaves:
            leaf.grad = None
        with torch.enable_grad():
            torch.autograd.backward([o for o, _ in pairs], [g.to(o.dtype) for o, g in pairs], retain_graph=True)
        out, nodes = [], []
        for leaf in leaves:
            if leaf.grad is None:
                nodes.append(None)
            else:
                out.append(tensor_bytes(leaf.grad))
                nodes.append([len(out) - 1, str(leaf.grad.dtype).removeprefix("torch."), list(leaf.grad.shape)])
            leaf.grad = None
        return {"op": "return", "grads": nodes}, out

    def callback(self, cid: int, method: str, args, kwargs):
        """Call an object of the test's (data only, both ways), as the student's code asked."""
        enc = Encoder(lambda e, v, d: self._refuse(v))
        node_args, node_kwargs = enc.encode(tuple(args)), enc.encode(dict(kwargs))
        send_frame(self.sock, {"op": "callback", "cid": cid, "method": method, "args": node_args,
                               "kwargs": node_kwargs, "grad": torch.is_grad_enabled()}, enc.buffers)
        header, buffers = self.wait()
        if header["op"] == "raise":
            raise StandInError(str(header.get("type")), header.get("token"))
        return Decoder(buffers, self._decode_other).decode(header["value"])

    @staticmethod
    def _refuse(value):
        raise TypeError(f"the test's object takes data only (tensors, numbers, strings and containers of them), "
                        f"not {type(value).__name__}")

    def wait(self) -> tuple[dict, list[bytes]]:
        """Serve the test's requests until the reply to our own request arrives."""
        while True:
            header, buffers = recv_frame(self.sock)
            op = header.get("op")
            if op in ("return", "raise"):
                return header, buffers
            if op == "stop":
                raise BridgeError("the test cell ended while your code was waiting for the test")
            self.answer(header, buffers)

    def answer(self, header: dict, buffers: list[bytes]) -> None:
        try:
            if header.get("op") == "call":
                reply, out = self.call(header, buffers)
                reply["op"] = "return"
            elif header.get("op") == "backward":
                reply, out = self.backward(header, buffers)
            else:
                raise BridgeError(f"unknown request {header.get('op')!r}")
        except BaseException as exc:  # the student's error, or a KeyboardInterrupt at the time limit
            target = header.get("target") if isinstance(header.get("target"), list) else []
            called = target[1] if len(target) > 1 and target[0] == "name" and isinstance(target[1], str) else ""
            reply, out = error_header(exc, getattr(exc, "token", None), self.namespace, called), []
        send_frame(self.sock, reply, out)

    def serve(self, path: str) -> None:
        """The serve loop: the cell that runs in the student kernel while a test cell runs."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        try:
            while True:
                try:
                    header, buffers = recv_frame(self.sock)
                except BridgeError:
                    return
                if header.get("op") == "stop":
                    return
                try:
                    self.answer(header, buffers)
                except OSError:  # the test gave up on the call (its time ran out) and the relay has gone
                    return
        finally:
            self.sock.close()
            self.sock = None


# ---------------------------------------------------------------------------------------------
# The trusted side: proxies for the exercise names, handles for the student's objects.


class _RemoteGraph(torch.autograd.Function):
    """Results of a student call that carry a graph: backward asks the student kernel for the gradients."""

    @staticmethod
    def forward(ctx, link, anchor, *inputs):
        ctx.link = link
        ctx.n_inputs = len(inputs)
        return tuple(t.detach().clone() for t in link["outputs"])

    @staticmethod
    def backward(ctx, *grads):
        link = ctx.link
        grads_in = link["side"].backward(link["call"], grads, ctx.n_inputs)
        return (None, None, *grads_in)


class Handle:
    """A student's object, as the test sees it: methods, attributes and calls go to the student kernel.

    Its special methods decide no comparison: it is equal only to itself, always true, and never asked
    whether it contains something.
    """

    __slots__ = ("_side", "_hid", "_info", "__weakref__")

    def __init__(self, side, hid: int, info: dict):
        object.__setattr__(self, "_side", side)
        object.__setattr__(self, "_hid", hid)
        object.__setattr__(self, "_info", info)

    @property
    def __class__(self):
        return self._side.class_of(self._info)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        if name in self._info["methods"]:
            return RemoteMethod(self, name)
        return self._side.call(["getattr", self._hid, name], (), {})

    def __setattr__(self, name, value):
        self._side.call(["setattr", self._hid, name], (value,), {})

    def __call__(self, *args, **kwargs):
        return self._side.call(["call", self._hid], args, kwargs)

    def __len__(self):
        return self._side.call(["len", self._hid], (), {})

    def __iter__(self):
        return iter(self._side.call(["iter", self._hid], (), {}))

    def __getitem__(self, key):
        return self._side.call(["getitem", self._hid], (key,), {})

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __hash__(self):
        return object.__hash__(self)

    def __bool__(self):
        return True

    def __contains__(self, item):
        raise TypeError(f"the test cannot ask whether the student's {self._info['cls']} contains something")

    def __repr__(self):
        return f"<the student's {self._info['cls']}>"


class RemoteMethod:
    """A method of a student's object, as the test sees it."""

    __slots__ = ("handle", "name")

    def __init__(self, handle: Handle, name: str):
        self.handle, self.name = handle, name

    def __call__(self, *args, **kwargs):
        h = self.handle
        return object.__getattribute__(h, "_side").call(["method", object.__getattribute__(h, "_hid"), self.name],
                                                         args, kwargs)

    def __repr__(self):
        return f"<the student's {object.__getattribute__(self.handle, '_info')['cls']}.{self.name}>"


class _RemoteClassMeta(type):
    """The type of an exercise class's proxy: calling it builds the student's object; isinstance asks it."""

    def __call__(cls, *args, **kwargs):
        return cls._side.call(["name", cls.__name__], args, kwargs)

    def __instancecheck__(cls, obj):
        return isinstance(obj, Handle) and cls.__name__ in object.__getattribute__(obj, "_info")["mro"]


class _StudentModule(torch.nn.Module):
    """The class a handle to a student's nn.Module reports, so that isinstance(h, nn.Module) holds."""


class Remote:
    """An exercise function's proxy: calling it calls the student's function of that name."""

    def __init__(self, side, name: str):
        self._side, self.__name__ = side, name

    def __call__(self, *args, **kwargs):
        return self._side.call(["name", self.__name__], args, kwargs)

    def __repr__(self):
        return f"<the student's {self.__name__}>"


def target_of(fn) -> tuple["TrustedSide", list] | None:
    """(the side, the call's target) when `fn` reaches the student's code across the bridge; None otherwise."""
    if isinstance(fn, Remote):
        return fn._side, ["name", fn.__name__]
    if isinstance(fn, RemoteMethod):
        h = fn.handle
        return object.__getattribute__(h, "_side"), ["method", object.__getattribute__(h, "_hid"), fn.name]
    if isinstance(fn, Handle):
        return object.__getattribute__(fn, "_side"), ["call", object.__getattribute__(fn, "_hid")]
    if isinstance(type(fn), _RemoteClassMeta):
        return fn._side, ["name", fn.__name__]
    return None


def is_remote(fn) -> bool:
    """Whether calling `fn` runs the student's code in the other kernel."""
    return target_of(fn) is not None


def call_reporting_changes(fn, args: tuple, kwargs: dict) -> tuple[object, list[str]]:
    """Call the student's `fn` across the bridge: its result, and the student side's report of what the call
    changed in place in its copies of the tensor arguments, as `args[1][0] (values)` (shape, dtype, values)."""
    side, target = target_of(fn)
    return side.call(target, args, kwargs, report=True)


class TrustedSide:
    """Calls the student's code from the test cells, through the grader's relay at `path`."""

    def __init__(self, path: str):
        self.path = path
        self.sock: socket.socket | None = None
        self.callbacks: dict[int, object] = {}
        self.handles: dict[int, Handle] = {}
        self.classes: dict[str, type] = {}
        self.errors: dict[int, BaseException] = {}  # a test object's errors, until the call that caused them ends
        self.calls = 0

    def proxies(self, exercises: dict[str, str]) -> dict[str, object]:
        """A proxy for each exercise name: `function`, `class`, or `module` (an nn.Module class)."""
        found = {}
        for name, kind in exercises.items():
            if kind == "function":
                found[name] = Remote(self, name)
            else:
                bases = (torch.nn.Module,) if kind == "module" else ()
                cls = _RemoteClassMeta(name, bases, {"_side": self, "__module__": "__student__"})
                self.classes[name] = cls
                found[name] = cls
        return found

    def class_of(self, info: dict) -> type:
        for name in info.get("mro", []):
            if name in self.classes:
                return self.classes[name]
        nn_cls = getattr(torch.nn, info["nn"], None) if isinstance(info.get("nn"), str) else None
        if isinstance(nn_cls, type) and issubclass(nn_cls, torch.nn.Module):
            return nn_cls
        return _StudentModule if info.get("module") else Handle

    # -- encoding what goes to the student
    def _other(self, enc: Encoder, value, depth: int):
        if isinstance(value, Handle):
            return {"H": object.__getattribute__(value, "_hid")}
        if sent_by_value(value):
            enc.buffers.append(pickle.dumps(value))
            return {"M": len(enc.buffers) - 1}
        if isinstance(value, MATERIALISED):
            return materialised(enc, value, depth)
        cid = id(value)
        self.callbacks[cid] = value
        return {"C": cid, "methods": self.methods_of(value)}

    @staticmethod
    def methods_of(obj) -> list[str]:
        """What the student's code may call on an object of the test's."""
        methods = [m for m in CALLBACK_METHODS if (m == "__call__" and callable(obj)) or hasattr(obj, m)]
        return methods + (list(MODULE_METHODS) if isinstance(obj, torch.nn.Module) else [])

    # -- decoding what the student sends: hostile
    def _decode_other(self, dec: Decoder, node: dict, depth: int):
        if "H" in node:
            hid, info = node["H"], node
            if type(hid) is not int:
                raise BridgeError("a malformed handle")
            methods = info.get("methods")
            if not (isinstance(methods, list) and all(isinstance(m, str) and len(m) < 200 for m in methods)
                    and isinstance(info.get("mro"), list) and all(isinstance(m, str) for m in info["mro"])
                    and isinstance(info.get("cls"), str) and isinstance(info.get("module"), bool)
                    and (info.get("nn") is None or isinstance(info.get("nn"), str))):
                raise BridgeError("a malformed handle")
            clean = {"cls": plain_line(info["cls"], 100), "mro": info["mro"][:100], "module": info["module"],
                     "nn": info.get("nn"), "methods": frozenset(methods[:2000])}
            handle = self.handles.get(hid)
            if handle is None:
                handle = self.handles[hid] = Handle(self, hid, clean)
            else:
                object.__setattr__(handle, "_info", clean)
            return handle
        if "C" in node:
            if node["C"] not in self.callbacks:
                raise BridgeError("a reference to an object the test never sent")
            return self.callbacks[node["C"]]
        raise BridgeError("a value of a kind the student's side may not send")

    def _connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

    def call(self, target: list, args, kwargs, report: bool = False):
        """Run `target` in the student kernel with these arguments; its result, as data or handles (with
        `report`: the result and what the call changed in its copies of the arguments)."""
        top = self.sock is None
        if top:
            self._connect()
        try:
            value, changed = self._call(target, args, kwargs)
            return (value, changed) if report else value
        except KeyboardInterrupt as exc:  # the test's time ran out while the student's code was still running
            if not hasattr(exc, "_student"):
                exc._student = {"frames": [], "called": self.called(target), "running": True}
            raise
        except (MemoryError, RecursionError) as exc:
            raise StudentDataError(f"the test's kernel ran out of {'memory' if isinstance(exc, MemoryError) else 'stack'} "
                                   f"taking what {self.called(target)} sent back") from None
        finally:
            if top:
                self.sock.close()
                self.sock = None
                self.errors.clear()

    def called(self, target: list) -> str:
        """The student's code a call reaches, in words: "your `run_packed`", "`forward` of your `Tagger`"."""
        kind = target[0]
        if kind == "name":
            return f"your `{target[1]}`"
        handle = self.handles.get(target[1])
        cls = object.__getattribute__(handle, "_info")["cls"] if handle is not None else "object"
        if kind == "method":
            return f"`{target[2]}` of your `{cls}`"
        if kind == "call":
            return f"`forward` of your `{cls}`" if handle is not None and object.__getattribute__(handle, "_info")["module"] \
                else f"your `{cls}`"
        if kind == "getattr":
            return f"`{target[2]}` of your `{cls}`"
        return f"your `{cls}`"

    def _call(self, target, args, kwargs):
        self.calls += 1
        call_id = self.calls
        enc = Encoder(self._other)
        enc.at.append("args")
        node_args = enc.encode(tuple(args))
        enc.at[-1] = "kwargs"
        node_kwargs = enc.encode(dict(kwargs))
        sent, paths = list(enc.tensors), list(enc.paths)
        grads = [bool(t.requires_grad) for t in sent]
        enc.buffers.append(rng_state())
        advance_rng()
        after = torch.get_rng_state()
        try:
            self._send({"op": "call", "target": target, "args": node_args, "kwargs": node_kwargs,
                        "rng": len(enc.buffers) - 1, "grad": torch.is_grad_enabled(), "id": call_id, "grads": grads},
                       enc.buffers)
            header, buffers = self.wait()
        finally:  # the callbacks' draws (as many as the student's code chose) leave no trace on the test's RNG
            torch.set_rng_state(after)
        if header.get("op") == "raise":
            raise self._error(header, target)
        dec = Decoder(buffers, self._decode_other)
        marked = []
        original = dec.tensor

        def tensor(node):
            t = original(node)
            if node.get("g") is True:
                marked.append(t)
            elif node.get("rg") is True and (t.is_floating_point() or t.is_complex()):
                t.requires_grad_(True)
                if "grad" in node:
                    grad = dec.tensor({"T": node["grad"], "dtype": node["dtype"], "shape": node["shape"]})
                    t.grad = grad
            return t

        dec.tensor = tensor
        value = dec.decode(header.get("value"))
        self._check_result(target, value)
        changed = self._changes(header, paths)
        if marked and header.get("graph") is True:
            inputs = [t for t in sent if t.requires_grad]
            link = {"side": self, "call": call_id, "outputs": marked}
            anchor = torch.zeros((), requires_grad=True)
            with torch.enable_grad():
                linked = _RemoteGraph.apply(link, anchor, *inputs)
            swap = {id(a): b for a, b in zip(marked, linked)}
            value = _replace(value, swap)
        return value, changed

    def _check_result(self, target: list, value) -> None:
        """A result used as a value must be data: handles only from a constructor, from a method that returns
        its object, and for submodules (an attribute, an item, the modules a method lists)."""
        kind = target[0]
        if kind == "name" and target[1] in self.classes:
            return
        found = _handles_in(value)
        if not found:
            return
        itself = kind == "method" and all(object.__getattribute__(h, "_hid") == target[1] for h in found)
        modules = kind in ("getattr", "getitem", "iter") or (kind == "method" and target[2] in SUBMODULE_METHODS)
        if itself or (modules and all(object.__getattribute__(h, "_info")["module"] for h in found)):
            return
        cls = object.__getattribute__(found[0], "_info")["cls"]
        raise TypeError(f"{self.called(target)} returned a `{cls}`, expected a tensor "
                        f"(or a number, or a tuple, list or dict of them)")

    @staticmethod
    def _changes(header: dict, paths: list[str]) -> list[str]:
        """The student side's report of its copies that the call changed in place, as `path (what)`."""
        report = header.get("changed", [])
        if not isinstance(report, list):
            raise BridgeError("a malformed list of changed inputs")
        found = []
        for item in report:
            if not (isinstance(item, list) and len(item) == 2 and type(item[0]) is int and 0 <= item[0] < len(paths)
                    and isinstance(item[1], list) and item[1] and all(k in CHANGES for k in item[1])):
                raise BridgeError("a malformed changed input")
            found.append(f"{paths[item[0]]} ({', '.join(k for k in CHANGES if k in item[1])})")
        return found

    def _error(self, header: dict, target: list | None = None) -> BaseException:
        token = header.get("token")
        if type(token) is int and token in self.errors:
            return self.errors.pop(token)
        return exception_from(header, self.called(target) if target else "")

    def backward(self, call_id: int, grads, n_inputs: int):
        """Send the gradient of a call's outputs to the student kernel; the gradients of the test's inputs."""
        enc_buffers, nodes = [], []
        for g in grads:
            if g is None:
                nodes.append([None, None, None])
            else:
                enc_buffers.append(tensor_bytes(g))
                nodes.append([len(enc_buffers) - 1, str(g.dtype).removeprefix("torch."), list(g.shape)])
        top = self.sock is None
        if top:
            self._connect()
        try:
            self._send({"op": "backward", "call": call_id, "grads": nodes}, enc_buffers)
            header, buffers = self.wait()
        finally:
            if top:
                self.sock.close()
                self.sock = None
        if header.get("op") == "raise":
            raise self._error(header)
        out = []
        for node in header.get("grads", [])[:n_inputs]:
            out.append(None if node is None else tensor_from(buffers[node[0]], node[1], node[2]))
        return out + [None] * (n_inputs - len(out))

    def _send(self, header: dict, buffers: list[bytes]) -> None:
        """Send a request; if the relay already closed (it answers at once when the student's side is gone),
        its answer is still there to be read."""
        try:
            send_frame(self.sock, header, buffers)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def wait(self) -> tuple[dict, list[bytes]]:
        """Answer the student code's calls back to the test's objects until our reply arrives."""
        while True:
            header, buffers = recv_frame(self.sock)
            op = header.get("op")
            if op in ("return", "raise"):
                return header, buffers
            if op != "callback":
                raise BridgeError(f"the student's side sent {op!r}, which is not allowed")
            self._answer_callback(header, buffers)

    def _answer_callback(self, header: dict, buffers: list[bytes]) -> None:
        try:
            obj = self.callbacks.get(header.get("cid"))
            method = header.get("method")
            if obj is None or method not in self.methods_of(obj):
                raise AttributeError(f"the test's object offers only {', '.join(CALLBACK_METHODS)}")
            dec = Decoder(buffers, lambda d, node, depth: self._refuse_object())
            args, kwargs = dec.decode(header.get("args")), dec.decode(header.get("kwargs"))
            if type(args) is not tuple or type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
                raise BridgeError("malformed arguments")
            fn = obj if method == "__call__" else getattr(obj, method)
            with torch.set_grad_enabled(header.get("grad") is True):
                value = fn(*args, **kwargs)
            enc = Encoder(self._other)
            reply = {"op": "return", "value": enc.encode(value)}
            out = enc.buffers
        except BaseException as exc:
            token = id(exc)
            while len(self.errors) >= MAX_STANDIN_ERRORS:  # the student's code caught them: the oldest go
                self.errors.pop(next(iter(self.errors)))
            self.errors[token] = exc
            reply, out = {"op": "raise", "type": type(exc).__name__, "message": "", "token": token}, []
        send_frame(self.sock, reply, out)

    @staticmethod
    def _refuse_object():
        raise BridgeError("the student's code passed the test's object something that is not data")


class StudentSideGone(BridgeError):
    """The student's side stopped answering the test: its kernel died or was stopped (the relay says which)."""


class StudentDataError(BridgeError):
    """What the student's code sent back was more than the test's kernel could take (memory, nesting)."""


def _handles_in(value, depth: int = 0) -> list[Handle]:
    """The handles inside a decoded value (tuples, lists, dicts and iterators of them)."""
    if isinstance(value, Handle):
        return [value]
    if depth > MAX_DEPTH + 1:
        return []
    if type(value) in (tuple, list):
        return [h for v in value for h in _handles_in(v, depth + 1)]
    if isinstance(value, dict):
        return [h for v in value.values() for h in _handles_in(v, depth + 1)]
    if isinstance(value, Items):
        return [h for v in value.items for h in _handles_in(v, depth + 1)]
    return []


def _replace(value, swap: dict):
    """`value` with each tensor whose id is in `swap` replaced, inside tuples, lists and dicts."""
    if isinstance(value, torch.Tensor):
        return swap.get(id(value), value)
    if type(value) is tuple:
        return tuple(_replace(v, swap) for v in value)
    if type(value) is list:
        return [_replace(v, swap) for v in value]
    if isinstance(value, dict):
        return type(value)((k, _replace(v, swap)) for k, v in value.items())
    return value
