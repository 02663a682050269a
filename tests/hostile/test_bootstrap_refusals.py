"""A flood of Bootstrap-Requests that must be refused (NoSec for an endpoint that has to
authenticate, invented endpoint names): every one is answered and counted, but the session
records, the log and the store stay bounded, and a legitimate device still bootstraps."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.bootstrap import (
    BootstrapCredentials,
    BootstrapServer,
    BootstrapServerConfig,
    EndpointConfig,
)
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.store.bootstrap_store import REFUSED

from ..transport.raw_peer import RawPeer

BATCH = 50
BURST = 20


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def bs(tmp_path: Path) -> AsyncIterator[tuple[BootstrapServer, Clock]]:
    clock = Clock()
    server = BootstrapServer(BootstrapServerConfig(
        host="127.0.0.1", port=0, coaps_port=0, store="sqlite", data_dir=tmp_path,
        clock=clock, refusal_record_interval=10.0, refusal_record_burst=BURST,
        max_refused_sessions=30, request_timeout=0.3, attempts=1))
    await server.start()
    nosec = EndpointConfig.for_server("coap://127.0.0.1:9")
    await server.set_config("locked", EndpointConfig(
        nosec.security, nosec.servers,
        bootstrap_credentials=BootstrapCredentials.psk("locked-bs", b"k" * 16)))
    await server.set_config("fine", nosec)
    yield server, clock
    await server.stop()


async def flood(peer: RawPeer, port: int, names: list[str], first_mid: int) -> list[int]:
    """Send a Bootstrap-Request for each name, in batches, and return the reply codes."""
    codes: list[int] = []
    for start in range(0, len(names), BATCH):
        batch = names[start:start + BATCH]
        for i, name in enumerate(batch):
            msg = Message.request(Code.POST, "/bs", query=[f"ep={name}"], token=b"t")
            msg.mid = (first_mid + start + i) & 0xFFFF
            peer.send(msg, ("127.0.0.1", port))
        for _ in batch:
            codes.append((await peer.recv(timeout=5.0)).code)
    return codes


async def test_refusal_flood_is_answered_counted_and_bounded(
        bs: tuple[BootstrapServer, Clock], caplog: pytest.LogCaptureFixture) -> None:
    server, clock = bs
    peer = await RawPeer.open()
    try:
        with caplog.at_level(logging.WARNING, logger="aiolwm2m.bootstrap.refusals"):
            for round_ in range(5):
                names = [n for i in range(100) for n in ("locked", f"rnd-{round_}-{i}")]
                codes = await flood(peer, server.port, names, round_ * 1000)
                assert codes.count(Code.FORBIDDEN) == 100
                assert codes.count(Code.BAD_REQUEST) == 100
                clock.now += 11.0  # a new record window
            # A legitimate device is still served.
            msg = Message.request(Code.POST, "/bs", query=["ep=fine"], token=b"ok")
            msg.mid = 9999
            peer.send(msg, ("127.0.0.1", server.port))
            assert (await peer.recv(timeout=5.0)).code == Code.CHANGED
    finally:
        peer.close()
    await server.wait_idle()  # the records written; the session with us timed out
    assert server.refusals.by_reason == {"bootstrap-nosec": 500,
                                         "bootstrap-unknown-endpoint": 500}
    # Records: at most BURST per window, and at most 10 % over the kept limit (30).
    refused = [s for s in await server.sessions() if s.state == REFUSED]
    assert 0 < len(refused) <= 33
    assert sum(1 for s in refused if s.endpoint == "locked") <= 5
    # Log lines: a burst per reason per interval plus "suppressed" summaries, not 1000.
    assert len(caplog.records) <= 2 * 20 + 10


async def test_an_endpoint_name_cannot_forge_log_lines(
        bs: tuple[BootstrapServer, Clock], caplog: pytest.LogCaptureFixture) -> None:
    server, _ = bs
    name = "evil\nWARNING forged line" + "x" * 200
    peer = await RawPeer.open()
    try:
        with caplog.at_level(logging.WARNING, logger="aiolwm2m.bootstrap.refusals"):
            codes = await flood(peer, server.port, [name], 1)
    finally:
        peer.close()
    assert codes == [Code.BAD_REQUEST]
    [record] = caplog.records
    text = record.getMessage()
    assert "\n" not in text and "evil\\nWARNING" in text and "x" * 100 not in text
    await server.wait_idle()
    # The record keeps the name as sent, for the API to find it by.
    [session] = await server.sessions(name)
    assert session.reason == "bootstrap-unknown-endpoint"
