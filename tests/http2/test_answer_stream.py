"""The answer stream over real sockets, with a bare HTTP/2 peer and with our client: answers
written as items of one open ``POST /rd/{id}/responses`` (application/cbor-seq) complete the
server's requests; answers that answer nothing get a rejection item back, and past a bound
the stream is closed; malformed and oversized items and another device's stream are refused
precisely, a second stream delivers as well; the server keeps serving throughout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aiolwm2m.client import ClientConfig, LwM2MClient
from aiolwm2m.coap.codes import Code
from aiolwm2m.http2.answers import Answer, decode_rejection, encode_answers
from aiolwm2m.http2.client_endpoint import Http2ClientEndpoint
from aiolwm2m.http2.envelope import SequenceSplitter, frame_item
from aiolwm2m.http2.limits import Http2Limits
from aiolwm2m.lwm2m import ContentFormat
from aiolwm2m.lwm2m.formats.cbor_support import dump
from aiolwm2m.server import LwM2MServer, ServerConfig

from .raw_device import RawH2, StreamState, register_headers

TEXT = ContentFormat.TEXT
SEQ = [("content-type", "application/cbor-seq")]


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(
        host="127.0.0.1", port=0, http2_port=0, store="memory",
        http2_limits=Http2Limits(max_body=4096, unmatched_answers=3)))
    await srv.start()
    yield srv
    await srv.stop()


async def device(server: LwM2MServer, ep: str = "as-dev") -> tuple[RawH2, str, int]:
    """A registered raw device with its downlink stream open."""
    raw = await RawH2.open("127.0.0.1", server.port_of("http2"))
    state = await raw.exchange("POST", f"/rd?ep={ep}&lt=300&lwm2m=1.1&b=H",
                               register_headers(), b"</3/0>")
    assert state.status == 201
    location = state.headers["location"]
    return raw, location, await raw.downlink(location)


async def open_answers(raw: RawH2, location: str) -> int:
    sid = raw.request("POST", f"{location}/responses", SEQ, end=False)
    await asyncio.wait_for(raw.streams[sid].head.wait(), 5)
    return sid


def write(raw: RawH2, sid: int, data: bytes) -> None:
    raw.conn.send_data(sid, data)
    raw.flush()


async def rejections(state: StreamState, count: int) -> list[tuple[str, int, str]]:
    async with asyncio.timeout(5):
        while True:
            items = SequenceSplitter().feed(bytes(state.body))
            if len(items) >= count:
                return [(r.identity, r.status, r.text)
                        for r in (decode_rejection(i) for i in items)]
            state.data.clear()
            await state.data.wait()


def answer(identity: str, value: bytes = b"ACME") -> Answer:
    return Answer(identity, 200, int(TEXT), None, value)


async def test_answers_on_the_stream_complete_requests(server: LwM2MServer) -> None:
    raw, location, down = await device(server)
    try:
        sid = await open_answers(raw, location)
        state = raw.streams[sid]
        assert (state.status, state.headers["content-type"]) == (200, "application/cbor-seq")
        reads = [asyncio.create_task(server.read("as-dev", f"/3/0/{r}", format=TEXT,
                                                 timeout=10)) for r in (0, 1)]
        batch = await raw.next_requests(down)
        # Two answers in one DATA frame: no request, no response headers, no 204.
        write(raw, sid, encode_answers([answer(batch[0].identity, b"ACME"),
                                        answer(batch[1].identity, b"Model")]))
        assert [(await r).content.value for r in reads] == [  # type: ignore[union-attr]
            "ACME", "Model"]
        # An Execute answered with a status and no payload, written in two pieces.
        execute = asyncio.create_task(server.execute("as-dev", "/3/0/4", timeout=10))
        (request,) = await raw.next_requests(down)
        data = encode_answers([Answer(request.identity, 204)])
        write(raw, sid, data[:2])
        write(raw, sid, data[2:])
        assert (await execute).code == Code.CHANGED
        assert bytes(state.body) == b""  # every answer taken: nothing written back
        assert len(server.transports["http2"].replies) == 0  # type: ignore[attr-defined]
    finally:
        await raw.close()


async def test_answers_to_nothing_are_rejected_then_bounded(server: LwM2MServer) -> None:
    raw, location, down = await device(server)
    try:
        sid = await open_answers(raw, location)
        state = raw.streams[sid]
        read = asyncio.create_task(server.read("as-dev", "/3/0/0", format=TEXT, timeout=10))
        (request,) = await raw.next_requests(down)
        write(raw, sid, encode_answers([answer("nope"),
                                        Answer(request.identity, 299)]))
        assert await rejections(state, 2) == [("nope", 404, "unknown identity"),
                                              (request.identity, 400,
                                               "HTTP status 299 has no CoAP code")]
        # Nothing was lost: the real answer still completes the read.
        write(raw, sid, encode_answers([answer(request.identity)]))
        assert (await read).content.value == "ACME"  # type: ignore[union-attr]
        # A third answer to nothing reaches the bound (3): the stream is closed.
        write(raw, sid, encode_answers([answer("again1"), answer("again2")]))
        await asyncio.wait_for(state.ended.wait(), 5)
        assert state.trailers == {"lwm2m-closed": "too many answers to no request"}
        assert server.refusals.by_reason["http2-unmatched-answers"] == 1
        # The connection and the downlink still serve; answers go as POSTs now.
        read = asyncio.create_task(server.read("as-dev", "/3/0/0", format=TEXT, timeout=10))
        (request,) = await raw.next_requests(down)
        done = await raw.exchange("POST", f"{location}/responses/{request.identity}",
                                  [("lwm2m-status", "200"), ("content-type", "text/plain")],
                                  b"ACME")
        assert done.status == 204
        assert (await read).content.value == "ACME"  # type: ignore[union-attr]
    finally:
        await raw.close()


@pytest.mark.parametrize(("data", "words"), [
    (b"\x01\x02\x03", "not tag 24"),
    (frame_item(b"\xff"), "not CBOR"),
    (frame_item(dump({0: "id", 1: "200"})), "field 1 (status)"),
    (frame_item(dump({0: "bad id!", 1: 200})), "field 0 (identity)"),
    (frame_item(dump([1, 2])), "maps only"),
    (b"\xd8\x18\x59\x20\x00" + b"x" * 10, "over 4096 bytes"),
])
async def test_malformed_answer_ends_the_stream(server: LwM2MServer, data: bytes,
                                                words: str) -> None:
    raw, location, down = await device(server)
    try:
        sid = await open_answers(raw, location)
        state = raw.streams[sid]
        read = asyncio.create_task(server.read("as-dev", "/3/0/0", format=TEXT, timeout=10))
        (request,) = await raw.next_requests(down)
        write(raw, sid, data)
        await asyncio.wait_for(state.ended.wait(), 5)
        assert words in state.trailers["lwm2m-closed"]
        assert server.refusals.by_reason["http2-bad-answer"] == 1
        # The server keeps serving: a new answer stream takes the answer.
        sid2 = await open_answers(raw, location)
        write(raw, sid2, encode_answers([answer(request.identity)]))
        assert (await read).content.value == "ACME"  # type: ignore[union-attr]
    finally:
        await raw.close()


async def test_a_second_answer_stream_does_not_end_the_first(server: LwM2MServer) -> None:
    """Both deliver (answers written on the first are never lost to the second), and both
    end with the registration, with the reason in their trailers."""
    raw, location, down = await device(server)
    try:
        first = await open_answers(raw, location)
        second = await open_answers(raw, location)
        reads = [asyncio.create_task(server.read("as-dev", f"/3/0/{r}", format=TEXT,
                                                 timeout=10)) for r in (0, 1)]
        batch = await raw.next_requests(down)
        write(raw, first, encode_answers([answer(batch[0].identity, b"one")]))
        write(raw, second, encode_answers([answer(batch[1].identity, b"two")]))
        assert [(await r).content.value for r in reads] == [  # type: ignore[union-attr]
            "one", "two"]
        assert not raw.streams[first].ended.is_set()
        assert (await raw.exchange("DELETE", location)).status == 205
        for sid in (first, second):
            await asyncio.wait_for(raw.streams[sid].ended.wait(), 5)
            assert raw.streams[sid].trailers == {"lwm2m-closed": "de-registered"}
    finally:
        await raw.close()


async def test_another_device_may_not_open_the_answer_stream(server: LwM2MServer) -> None:
    raw, location, down = await device(server)
    other, _, _ = await device(server, "other-dev")
    try:
        read = asyncio.create_task(server.read("as-dev", "/3/0/0", format=TEXT, timeout=10))
        (request,) = await raw.next_requests(down)
        sid = other.request("POST", f"{location}/responses", SEQ, end=False)
        other.conn.send_data(sid, encode_answers([answer(request.identity, b"EVIL")]))
        other.flush()
        state = other.streams[sid]
        await asyncio.wait_for(state.ended.wait(), 5)
        assert state.status == 404 and bytes(state.body) == b"no such registration"
        assert sum(server.refusals.by_reason.values()) >= 1
        # The forged answer reached nothing: the device's own answer completes the read.
        assert not read.done()
        sid = await open_answers(raw, location)
        write(raw, sid, encode_answers([answer(request.identity)]))
        assert (await read).content.value == "ACME"  # type: ignore[union-attr]
    finally:
        await raw.close()
        await other.close()


async def test_whole_answer_sequence_in_one_request(server: LwM2MServer) -> None:
    """What curl sends (--data-binary with the sequence): 200, the rejections as its body."""
    raw, location, down = await device(server)
    try:
        read = asyncio.create_task(server.read("as-dev", "/3/0/0", format=TEXT, timeout=10))
        (request,) = await raw.next_requests(down)
        state = await raw.exchange("POST", f"{location}/responses", SEQ,
                                   encode_answers([answer(request.identity), answer("zz")]))
        assert state.status == 200
        assert [decode_rejection(i).identity for i in SequenceSplitter().feed(
            bytes(state.body))] == ["zz"]
        assert (await read).content.value == "ACME"  # type: ignore[union-attr]
    finally:
        await raw.close()


async def test_our_client_answers_on_the_stream(server: LwM2MServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Our client opens the answer stream with its downlink: Reads leave no per-answer POST
    (each would be an entry of the server's duplicate cache); without it, they do."""
    endpoint = server.transports["http2"]
    for streamed in (True, False):
        monkeypatch.setattr(Http2ClientEndpoint, "use_answer_stream", streamed)
        ep = f"client-{streamed}"
        client = LwM2MClient(ClientConfig.development(
            ep, f"http2://127.0.0.1:{server.port_of('http2')}", host="127.0.0.1"))
        await client.start()
        try:
            await client.wait_registered(10)
            reg = server.registrations[ep]
            async with asyncio.timeout(10):
                while not endpoint.has_downlink(reg.id):  # type: ignore[attr-defined]
                    await asyncio.sleep(0.01)
            cached = len(endpoint.replies)  # type: ignore[attr-defined]
            for _ in range(3):
                assert (await server.read(ep, "/3/0/0", timeout=10)).code == Code.CONTENT
            posts = len(endpoint.replies) - cached  # type: ignore[attr-defined]
            assert posts == (0 if streamed else 3)
        finally:
            await client.stop()
