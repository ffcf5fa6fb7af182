"""The grader's relay between the two kernels' sockets: whole frames forwarded, calls counted, and a
student's side that is late, silent, oversized or gone turned into an error for the test, never a hang.
Raw sockets on both sides (no kernel, no bridge), except where the bridge's own sides are the point."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from bridge_pair import Pair

from grader.bridge import protocol, relay
from grader.bridge.relay import PREFIX, Relay, read_frame


def frame(header: dict, payload: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return PREFIX.pack(len(text) + len(payload), len(text)) + text + payload


async def receive(reader) -> tuple[dict, bytes]:
    _, header, remaining = await read_frame(reader)
    return header, await reader.readexactly(remaining)


def with_relay(tmp_path, scenario, wait: float = 5.0):
    """Run `scenario(relay, connect)` against a started relay; `connect(side)` opens the test's or the student's socket."""
    async def main():
        made = Relay(tmp_path / "trusted.sock", tmp_path / "student.sock", wait_for_student=wait)
        await made.start()

        async def connect(side: str):
            return await asyncio.open_unix_connection(str(made.trusted_path if side == "test" else made.student_path))

        try:
            return await asyncio.wait_for(scenario(made, connect), 20)
        finally:
            await made.close()

    return asyncio.run(main())


def test_relay_frame_format_is_the_bridge_s():
    assert (relay.PREFIX.format, relay.MAX_FRAME_BYTES, relay.MAX_HEADER_BYTES, relay.RELAY_MARK) == \
        (protocol._PREFIX.format, protocol.MAX_FRAME_BYTES, protocol.MAX_HEADER_BYTES, protocol.RELAY_MARK)


def test_frames_cross_whole_both_ways_and_calls_are_counted(tmp_path):
    async def scenario(made, connect):
        made.begin_cell()
        s_reader, s_writer = await connect("student")
        t_reader, t_writer = await connect("test")
        t_writer.write(frame({"op": "call", "name": "double"}, b"\x01" * (3 * relay.CHUNK + 5)))
        _, (header, payload) = await asyncio.gather(t_writer.drain(), receive(s_reader))  # more than a socket holds
        assert header == {"op": "call", "name": "double"} and payload == b"\x01" * (3 * relay.CHUNK + 5)
        assert made.outstanding == 1
        s_writer.write(frame({"op": "return", "value": 2}))
        await s_writer.drain()
        assert await receive(t_reader) == ({"op": "return", "value": 2}, b"")
        assert (made.outstanding, made.calls) == (0, 1)
        t_writer.close()  # the test cell is over
        await asyncio.sleep(0.2)
        assert await made.end_cell() is None, "nothing went wrong on the student's side"
        assert (await receive(s_reader))[0]["op"] == "stop", "the serve loop is told to stop"

    with_relay(tmp_path, scenario)


@pytest.mark.parametrize("wait", [0.2, 0.8])
def test_a_student_side_that_never_serves_fails_the_call_after_the_cell_s_wait(tmp_path, wait):
    """How long the relay waits for the student's serve loop is what the cell was given (begin_cell)."""
    async def scenario(made, connect):
        made.begin_cell(wait_for_student=wait)
        started = time.monotonic()
        t_reader, t_writer = await connect("test")
        header, _ = await receive(t_reader)
        return header, time.monotonic() - started

    header, took = with_relay(tmp_path, scenario, wait=60)
    assert header["op"] == "raise" and header["message"] == "the student's kernel did not start serving the test"
    assert wait <= took < wait + 1


def test_a_frame_over_the_limit_from_the_student_fails_the_waiting_call(tmp_path):
    async def scenario(made, connect):
        made.begin_cell()
        s_reader, s_writer = await connect("student")
        t_reader, t_writer = await connect("test")
        t_writer.write(frame({"op": "call", "name": "f"}))
        await t_writer.drain()
        await receive(s_reader)
        s_writer.write(PREFIX.pack(relay.MAX_FRAME_BYTES + 1, 10))
        await s_writer.drain()
        return await receive(t_reader), made.broken

    (header, _), broken = with_relay(tmp_path, scenario)
    assert header["op"] == "raise" and "over the 256 MB limit" in header["message"]
    assert broken == "the student's code sent a message over the 256 MB limit"


def test_a_call_the_test_gave_up_on_makes_every_later_call_fail_at_once(tmp_path):
    """The test's cell timed out while the student's code still worked on a call: the student's side is out of
    step for the rest of the cell."""
    async def scenario(made, connect):
        made.begin_cell()
        s_reader, _ = await connect("student")
        t_reader, t_writer = await connect("test")
        t_writer.write(frame({"op": "call", "name": "slow"}))
        await t_writer.drain()
        await receive(s_reader)
        t_writer.close()  # the test leaves without its answer
        await asyncio.sleep(0.2)
        again_reader, _ = await connect("test")
        return await receive(again_reader)

    header, _ = with_relay(tmp_path, scenario)
    assert header["op"] == "raise" and header["message"] == "the student's code did not finish an earlier call in this test"


def test_one_serve_loop_per_test_cell(tmp_path):
    async def scenario(made, connect):
        made.begin_cell()
        await connect("student")
        await asyncio.sleep(0.1)
        first = made.student
        reader, _ = await connect("student")
        assert await reader.read() == b"", "a second student connection is closed"
        return made.student is first

    assert with_relay(tmp_path, scenario)


def test_a_kernel_that_stops_answering_fails_the_call_instead_of_hanging(tmp_path):
    namespace: dict = {}
    exec("import os, signal, threading\ndef dies(x):\n    raise SystemExit\n", namespace)
    made = Pair(tmp_path, namespace, {"dies": "function", "gone": "function"})
    try:
        with made.cell() as ex:
            with pytest.raises(NameError, match="not defined"):
                ex["gone"](1)
        made.loop.call_soon_threadsafe(made.relay.begin_cell)
        made.loop.call_soon_threadsafe(made.relay.student_finished, "the serve loop ended")
        with pytest.raises(RuntimeError, match="the serve loop ended") as caught:
            made.proxies["dies"](1)
        assert type(caught.value) is protocol.StudentSideGone and protocol.student_block(caught.value) == "", \
            "the relay's word, not an error of the student's code"
    finally:
        made.close()


FORGED = "the grader crashed on this test: an instructor will give you its points"


def forged_reply(tmp_path, check: bool = True) -> tuple[dict, str | None]:
    """A student's side that answers a call with a `raise` frame in the relay's name: what the test receives and
    why the relay says the cell went wrong; `check=False` is the relay without its check (the control)."""
    async def scenario(made, connect):
        if not check:
            made._reply = lambda header: Relay._reply(made, {k: v for k, v in header.items() if k != relay.RELAY_MARK})
        made.begin_cell()
        s_reader, s_writer = await connect("student")
        t_reader, t_writer = await connect("test")
        t_writer.write(frame({"op": "call", "name": "f"}))
        await t_writer.drain()
        await receive(s_reader)
        s_writer.write(frame({"op": "raise", "type": "RuntimeError", "message": FORGED, "token": None,
                              relay.RELAY_MARK: True, "buffers": []}))
        await s_writer.drain()
        header, _ = await receive(t_reader)
        t_writer.close()
        await asyncio.sleep(0.1)
        return header, await made.end_cell()

    return with_relay(tmp_path, scenario)


def test_a_student_side_cannot_speak_in_the_relay_s_name(tmp_path):
    header, why = forged_reply(tmp_path)
    assert FORGED not in json.dumps(header) and why == "the student's code sent a message in the relay's name"
    assert str(protocol.exception_from(header)) == why, "the test's call fails with the relay's own words"


def test_control_without_the_check_the_student_s_words_pass_as_the_relay_s(tmp_path):
    header, why = forged_reply(tmp_path, check=False)
    exc = protocol.exception_from(header)
    assert type(exc) is protocol.StudentSideGone and str(exc) == FORGED and why is None
