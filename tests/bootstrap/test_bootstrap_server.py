"""The Bootstrap-Server against a raw CoAP peer playing the client: exact requests,
retries, refusals, events, persistence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.bootstrap import (
    BootstrapServer,
    BootstrapServerConfig,
    EndpointConfig,
    RequestAnswered,
    RequestSent,
    SessionFailed,
    SessionFinished,
    SessionStarted,
)
from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.lwm2m import ContentFormat, LwM2MPath, decode_node
from tests.transport.raw_peer import RawPeer

CF = ContentFormat
QUICK = TransmissionParameters(ack_timeout=0.1, ack_random_factor=1.0, max_retransmit=1)


def bs_config(tmp_path: Path, **kw: object) -> BootstrapServerConfig:
    return BootstrapServerConfig(host="127.0.0.1", port=0, store="sqlite", data_dir=tmp_path,
                                 request_timeout=0.6, attempts=2, transmission=QUICK,
                                 **kw)  # type: ignore[arg-type]


@pytest.fixture
async def bs(tmp_path: Path) -> AsyncIterator[BootstrapServer]:
    server = BootstrapServer(bs_config(tmp_path))
    await server.start()
    await server.set_config("raw", EndpointConfig.for_server("coap://127.0.0.1:5683", 3,
                                                             lifetime=45))
    yield server
    await server.stop()


@pytest.fixture
async def peer() -> AsyncIterator[RawPeer]:
    p = await RawPeer.open()
    yield p
    p.close()


def bootstrap_request(query: list[str], mid: int = 100) -> Message:
    msg = Message.request(Code.POST, "/bs", query=query, token=b"bq")
    msg.mid = mid
    return msg


def answer(request: Message, code: int) -> Message:
    reply = Message(MessageType.ACK, code, request.mid, request.token)
    return reply


async def test_request_validation(bs: BootstrapServer, peer: RawPeer) -> None:
    addr = ("127.0.0.1", bs.port)
    for i, query in enumerate((["pct=112"], ["ep=nobody"], ["ep=raw", "pct=50"])):
        peer.send(bootstrap_request(query, mid=200 + i), addr)
        reply = await peer.recv()
        assert reply.code == Code.BAD_REQUEST and reply.payload, query


async def test_client_initiated_session_with_a_retry(bs: BootstrapServer, peer: RawPeer,
                                                     tmp_path: Path) -> None:
    events = bs.events.stream()
    addr = ("127.0.0.1", bs.port)
    peer.send(bootstrap_request(["ep=raw", "pct=112"]), addr)
    assert (await peer.recv()).code == Code.CHANGED
    seen: list[tuple[int, str]] = []
    dropped = False
    while True:
        req = await peer.recv(3)
        if req.code == Code.EMPTY or not req.is_request:
            continue
        seen.append((req.code, req.path))
        if req.code == Code.PUT and req.path == "/0/1" and not dropped:
            dropped = True  # the first Security write goes unanswered: it is sent again
            continue
        if req.code == Code.PUT:
            assert req.content_format == CF.SENML_CBOR  # the client's pct
            node = decode_node(CF.SENML_CBOR, req.payload, LwM2MPath.parse(req.path))
            if req.path == "/1/0":
                assert node.resources[1].value == 45  # type: ignore[union-attr]
        code = {Code.DELETE: Code.DELETED, Code.PUT: Code.CHANGED,
                Code.POST: Code.CHANGED}[Code(req.code)]
        peer.send(answer(req, code), addr)
        if req.path == "/bs":
            break
    paths = [p for _, p in seen]
    assert paths[:2] == ["/0", "/1"] and paths[-1] == "/bs"
    assert paths.count("/0/1") >= 2  # retried (CoAP retransmission and/or a new request)
    kinds = []
    while True:
        ev = await events.next(2)
        kinds.append(type(ev))
        if isinstance(ev, SessionFinished):
            break
    assert kinds[0] is SessionStarted and RequestSent in kinds and RequestAnswered in kinds
    records = await bs.sessions("raw")
    assert records[-1].state == "finished" and records[-1].requests == 5
    # Configurations and sessions survive a restart (SQLite).
    await bs.stop()
    again = BootstrapServer(bs_config(tmp_path))
    await again.start()
    try:
        assert "raw" in again.configs and again.configs["raw"].servers[0].lifetime == 45
        assert [r.state for r in await again.sessions("raw")] == ["finished"]
    finally:
        await again.stop()
    await bs.start()  # the fixture stops it again


async def test_server_initiated_to_a_silent_client_fails(bs: BootstrapServer,
                                                         peer: RawPeer) -> None:
    events = bs.events.stream()
    record = await bs.bootstrap("raw", peer.address)
    assert record.state == "failed" and record.server_initiated
    assert record.error is not None and "after 2 attempts" in record.error
    ev = await events.until(SessionFailed)
    assert isinstance(ev, SessionFailed) and ev.endpoint == "raw"


async def test_refused_finish_fails_the_session(bs: BootstrapServer, peer: RawPeer) -> None:
    events = bs.events.stream()
    addr = ("127.0.0.1", bs.port)
    peer.send(bootstrap_request(["ep=raw"], mid=300), addr)
    assert (await peer.recv()).code == Code.CHANGED
    while True:
        req = await peer.recv(3)
        if not req.is_request:
            continue
        if req.path == "/bs":
            refusal = answer(req, Code.NOT_ACCEPTABLE)
            refusal.payload = b"no server account"
            refusal.content_format = 0
            peer.send(refusal, addr)
            break
        assert req.content_format in (None, CF.TLV)  # no pct: TLV
        peer.send(answer(req, Code.DELETED if req.code == Code.DELETE else Code.CHANGED),
                  addr)
    ev = await events.until(SessionFailed)
    assert isinstance(ev, SessionFailed) and "4.06" in ev.reason
    assert "no server account" in ev.reason
