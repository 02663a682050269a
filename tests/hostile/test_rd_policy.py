"""The RD's authorisation policy under abuse: an authenticated peer hammering another
identity's registration, and a NoSec flood while anonymous registration is off. Nothing
changes, every refusal is counted, the log stays short and the replies stay small."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.rd.policy import parse_policy
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.server import LwM2MServer
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.transport.dtls import ClientSecurity, DtlsEndpoint
from aiolwm2m.transport.site import Site
from tests.fake_clock import FakeClock
from tests.rd.conftest import HOST, location, new_node, rd_config

KEYS = {"owner": b"owner-key-0123456", "intruder": b"intruder-key-0123"}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(rd_config(tmp_path, FakeClock(), coaps_port=0, store="memory"))
    await srv.start()
    for name, key in KEYS.items():
        await srv.stores.security.put(SecurityInfo(name, psk_identity=name.encode(),
                                                   psk_key=key))
    yield srv
    await srv.stop()


async def dtls_peer(server: LwM2MServer, name: str) -> tuple[DtlsEndpoint, object]:
    ep = await DtlsEndpoint.create(HOST, 0, site=Site(), server_credentials=None)
    assert isinstance(ep, DtlsEndpoint)
    remote = await ep.secure((HOST, server.port_of("dtls")),
                             ClientSecurity(PskCredentials(name.encode(), KEYS[name])))
    return ep, remote


async def test_hijack_attempts_change_nothing(server: LwM2MServer,
                                              caplog: pytest.LogCaptureFixture) -> None:
    owner, owner_remote = await dtls_peer(server, "owner")
    intruder, remote = await dtls_peer(server, "intruder")
    try:
        msg = Message.request(Code.POST, "rd", query=["ep=meter-1", "d=plant-1"],
                              payload=b'</v>;rt="power"', content_format=40)
        loc = location(await owner.request(msg, owner_remote, timeout=10))
        rd = server.rd
        assert rd is not None
        before = rd.get(loc[3:])
        caplog.set_level(logging.WARNING, logger="aiolwm2m.server.refusals")
        attempts = 0
        for _ in range(60):
            for code, query, payload, cf in (
                    (Code.POST, ["lt=1"], b"", None),
                    (Code.POST, [], b"</evil>" * 20, 40),
                    (Code.IPATCH, [], b'{"remove": ["/v"]}', 50),
                    (Code.DELETE, [], b"", None)):
                req = Message.request(code, loc, query=query, payload=payload,
                                      content_format=cf)
                answer = await intruder.request(req, remote, timeout=10)
                attempts += 1
                assert (answer.code, answer.payload) == (Code.FORBIDDEN, b"forbidden")
        assert rd.get(loc[3:]) is before
        assert server.refusals.by_reason["rd-wrong-identity"] == attempts == 240
        # 20 lines for a burst, then summaries: the attack cannot fill the log.
        lines = [r for r in caplog.records if "rd-wrong-identity" in r.getMessage()]
        assert len(lines) <= 22
    finally:
        await intruder.close()
        await owner.close()


async def test_nosec_flood_without_anonymous_registration(server: LwM2MServer) -> None:
    assert server.rd is not None
    await server.rd.set_policy(parse_policy({"anonymous_register": False,
                                             "anonymous_lookup": False}))
    node = await new_node(server)
    try:
        for i in range(300):
            # Malformed links: refused for who sends them (4.03) before they are parsed.
            payload = b"</a>" * 100
            answer = await node.ask(Code.POST, "rd", f"ep=flood-{i}", "d=x", payload=payload,
                                    cf=40)
            assert answer.code == Code.FORBIDDEN
            assert len(answer.payload) <= 32  # never echoes what it was sent
        lookup = await node.ask(Code.GET, "rd-lookup/ep")
        assert (lookup.code, lookup.payload) == (Code.FORBIDDEN, b"authentication required")
    finally:
        await node.close()
    assert len(server.rd.directory) == 0 and server.rd.directory.per_address == {}
    assert server.refusals.by_reason["rd-auth-required"] == 300
    assert server.refusals.by_reason["rd-lookup-denied"] == 1
