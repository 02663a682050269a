"""The RD's authorisation policy (CRD-004) over real DTLS and TLS sessions: names bound to
their credentials, first come first remembered, per-identity allow-lists, lookup access,
and the policy surviving a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import parse_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.rd.policy import parse_policy
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.server import LwM2MServer
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.transport.dtls import ClientSecurity, DtlsEndpoint
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tls import TlsClientSecurity
from aiolwm2m.transport.udp import UdpEndpoint
from tests.fake_clock import FakeClock

from .conftest import HOST, Node, location, new_node, rd_config

KEYS = {name: f"key-of-{name}-0123".encode() for name in ("gw-1", "gw-2", "sensor-a")}
LINKS = b'</v>;rt="power"'


@dataclass
class Secure:
    """A peer that talks to the RD over one authenticated (DTLS or TLS) session."""

    endpoint: Any
    remote: Any

    async def ask(self, code: int, path: str, *query: str, payload: bytes = b"",
                  cf: int | None = None) -> Message:
        msg = Message.request(code, path, query=list(query), payload=payload,
                              content_format=cf)
        return await self.endpoint.request(msg, self.remote, timeout=10)


async def start(tmp_path: Path, clock: FakeClock, **kw: Any) -> LwM2MServer:
    srv = LwM2MServer(rd_config(tmp_path, clock, coaps_port=0, tls_port=0, **kw))
    await srv.start()
    for name, key in KEYS.items():
        if srv.stores.security.get(name) is None:
            await srv.stores.security.put(SecurityInfo(name, psk_identity=name.encode(),
                                                       psk_key=key))
    return srv


@pytest.fixture
async def server(tmp_path: Path, clock: FakeClock) -> AsyncIterator[LwM2MServer]:
    srv = await start(tmp_path, clock)
    yield srv
    await srv.stop()


@pytest.fixture
async def peers(server: LwM2MServer) -> AsyncIterator[dict[str, Any]]:
    """NoSec, DTLS as gw-1, gw-2 and sensor-a, TLS as gw-1."""
    out: dict[str, Any] = {"nosec": await new_node(server)}
    closing: list[Any] = []
    for name, key in KEYS.items():
        dtls = await DtlsEndpoint.create(HOST, 0, site=Site(), server_credentials=None)
        assert isinstance(dtls, DtlsEndpoint)
        closing.append(dtls)
        remote = await dtls.secure((HOST, server.port_of("dtls")),
                                   ClientSecurity(PskCredentials(name.encode(), key)))
        out[name] = Secure(dtls, remote)
    tls = await TcpEndpoint.create(listen=False, site=Site(), tls_client=TlsClientSecurity(
        PskCredentials(b"gw-1", KEYS["gw-1"])))
    closing.append(tls)
    out["gw-1/tls"] = Secure(tls, (HOST, server.port_of("tls")))
    yield out
    for ep in closing:
        await ep.close()
    await out["nosec"].close()


async def test_names_with_credentials_belong_to_them(server: LwM2MServer,
                                                     peers: dict[str, Any]) -> None:
    """The default policy binds an endpoint name that has credentials in the security
    store to them: without security, or with other credentials, it is refused."""
    nosec: Node = peers["nosec"]
    refused = await nosec.ask(Code.POST, "rd", "ep=sensor-a", "d=x", payload=LINKS, cf=40)
    assert (refused.code, refused.payload) == (Code.FORBIDDEN, b"authentication required")
    other = await peers["gw-1"].ask(Code.POST, "rd", "ep=sensor-a", "d=x", payload=LINKS,
                                    cf=40)
    assert (other.code, other.payload) == (Code.FORBIDDEN, b"forbidden")
    assert server.refusals.by_reason["rd-auth-required"] == 1
    assert server.refusals.by_reason["rd-bound-endpoint"] == 1
    assert len(server.rd.directory) == 0  # type: ignore[union-attr]
    own = await peers["sensor-a"].ask(Code.POST, "rd", "ep=sensor-a", "d=x", payload=LINKS,
                                      cf=40)
    reg = server.rd.get(location(own)[3:])  # type: ignore[union-attr]
    assert reg is not None and reg.identity == "psk:sensor-a"


async def test_first_come_first_remembered(server: LwM2MServer, peers: dict[str, Any]
                                           ) -> None:
    """Only the identity that created a registration updates, patches or deletes it (on
    any secure transport); others get 4.03 and nothing changes."""
    gw1, gw2 = peers["gw-1"], peers["gw-2"]
    loc = location(await gw1.ask(Code.POST, "rd", "ep=meter-1", "d=plant-1", "lt=300",
                                 payload=LINKS, cf=40))
    rd = server.rd
    assert rd is not None
    before = rd.get(loc[3:])
    attempts = [await gw2.ask(Code.POST, loc, "lt=5"),
                await gw2.ask(Code.POST, loc, payload=b"</evil>", cf=40),
                await gw2.ask(Code.PATCH, loc, payload=b'{"remove": ["/v"]}', cf=50),
                await gw2.ask(Code.IPATCH, loc, payload=b'{"add": "</x>"}', cf=50),
                await gw2.ask(Code.DELETE, loc),
                await gw2.ask(Code.POST, "rd", "ep=meter-1", "d=plant-1", payload=b"</e>",
                              cf=40),
                await peers["nosec"].ask(Code.DELETE, loc)]
    assert [(a.code, a.payload) for a in attempts] == [(Code.FORBIDDEN, b"forbidden")] * 7
    assert server.refusals.by_reason["rd-wrong-identity"] == 7
    assert rd.get(loc[3:]) is before
    # The same identity over TLS is the same owner.
    assert (await peers["gw-1/tls"].ask(Code.POST, loc, "lt=600")).code == Code.CHANGED
    assert rd.get(loc[3:]).lifetime == 600  # type: ignore[union-attr]
    assert (await gw1.ask(Code.DELETE, loc)).code == Code.DELETED
    # Gone, the name is free again: the next one to come is remembered.
    again = await gw2.ask(Code.POST, "rd", "ep=meter-1", "d=plant-1", payload=LINKS, cf=40)
    assert rd.get(location(again)[3:]).identity == "psk:gw-2"  # type: ignore[union-attr]


async def test_allow_lists_and_anonymous_registration(server: LwM2MServer,
                                                      peers: dict[str, Any]) -> None:
    rd = server.rd
    assert rd is not None
    await rd.set_policy(parse_policy({
        "anonymous_register": False,
        "identities": {"psk:gw-1": {"endpoints": ["meter-*", "valve-1"],
                                    "sectors": ["plant-1"]},
                       "*": {"endpoints": []}}}))
    gw1, gw2 = peers["gw-1"], peers["gw-2"]

    async def code(peer: Any, *query: str) -> tuple[int, bytes]:
        r = await peer.ask(Code.POST, "rd", *query, payload=LINKS, cf=40)
        return r.code, r.payload

    ok = (Code.CREATED, b"")
    forbidden = (Code.FORBIDDEN, b"forbidden")
    assert await code(gw1, "ep=meter-7", "d=plant-1") == ok
    assert await code(gw1, "ep=valve-1", "d=plant-1") == ok
    assert await code(gw1, "ep=valve-2", "d=plant-1") == forbidden
    assert await code(gw1, "ep=meter-8", "d=plant-2") == forbidden
    assert await code(gw1, "ep=meter-9") == forbidden  # no sector: "" is not listed
    # "*" (every other identity) may register nothing but its own name.
    assert await code(gw2, "ep=meter-10", "d=plant-1") == forbidden
    assert await code(gw2, "ep=gw-2", "d=plant-1") == ok
    assert await code(peers["nosec"], "ep=free", "d=plant-1") == (
        Code.FORBIDDEN, b"authentication required")
    # A simple registration is refused before the RD fetches anything from the peer (this
    # node serves no /.well-known/core: a fetch would have made it 5.02).
    silent = await UdpEndpoint.create(HOST, 0, site=Site(well_known_core=False))
    try:
        answer = await silent.request(Message.request(Code.POST, ".well-known/rd",
                                                      query=["ep=simple"]),
                                      (HOST, server.port), timeout=10)
        assert (answer.code, answer.payload) == (Code.FORBIDDEN, b"authentication required")
    finally:
        await silent.close()
    reasons = server.refusals.by_reason
    assert (reasons["rd-policy-endpoint"], reasons["rd-policy-sector"],
            reasons["rd-auth-required"]) == (2, 2, 2)
    assert sorted(r.endpoint for r in rd.directory.by_id.values()) == [
        "gw-2", "meter-7", "valve-1"]


async def test_lookup_access(server: LwM2MServer, peers: dict[str, Any]) -> None:
    rd = server.rd
    assert rd is not None
    gw1, gw2, nosec = peers["gw-1"], peers["gw-2"], peers["nosec"]
    location(await gw1.ask(Code.POST, "rd", "ep=m1", "d=plant-1", payload=LINKS, cf=40))
    hidden = location(await gw2.ask(Code.POST, "rd", "ep=m2", "d=plant-2", payload=LINKS,
                                    cf=40))
    location(await nosec.ask(Code.POST, "rd", "ep=public", payload=LINKS, cf=40))

    async def eps(peer: Any) -> list[str] | int:
        r = await peer.ask(Code.GET, "rd-lookup/ep")
        if r.code != Code.CONTENT:
            return r.code
        return sorted(link.get("ep") or "" for link in parse_link_format(r.payload))

    assert await eps(nosec) == ["m1", "m2", "public"]  # the default: open lookups
    await rd.set_policy(parse_policy({"anonymous_lookup": False}))
    assert await eps(nosec) == Code.FORBIDDEN
    assert server.refusals.by_reason["rd-lookup-denied"] == 1
    assert await eps(gw1) == ["m1", "m2", "public"]

    await rd.set_policy(parse_policy({"sector_lookup": True}))
    assert await eps(gw1) == ["m1", "public"]  # its own sector and no sector
    assert await eps(gw2) == ["m2", "public"]
    assert await eps(nosec) == ["public"]
    res = await gw1.ask(Code.GET, "rd-lookup/res", "d=plant-2")
    assert (res.code, res.payload) == (Code.CONTENT, b"")
    # Its registration resource is as visible as in a lookup.
    assert (await gw1.ask(Code.GET, hidden)).code == Code.FORBIDDEN
    assert (await gw2.ask(Code.GET, hidden)).code == Code.CONTENT
    # A grant widens it.
    await rd.set_policy(parse_policy({"sector_lookup": True,
                                      "identities": {"psk:gw-1": {"lookup": ["plant-*"]}}}))
    assert await eps(gw1) == ["m1", "m2", "public"]
    assert (await gw1.ask(Code.GET, hidden)).code == Code.CONTENT
    # Sectors an identity may register in are its own even before it registers there.
    await rd.set_policy(parse_policy({"sector_lookup": True,
                                      "identities": {"psk:sensor-a": {"sectors": ["plant-2"]}}}))
    assert await eps(peers["sensor-a"]) == ["m2", "public"]


async def test_policy_survives_a_restart_unless_configured(tmp_path: Path,
                                                           clock: FakeClock) -> None:
    srv = await start(tmp_path, clock)
    try:
        assert srv.rd is not None and srv.rd.policy_source == "default"
        await srv.rd.set_policy(parse_policy({"anonymous_register": False,
                                              "identities": {"psk:gw-1": {"lookup": ["*"]}}}))
    finally:
        await srv.stop()
    srv = await start(tmp_path, clock)
    try:
        assert srv.rd is not None and srv.rd.policy_source == "api"
        assert srv.rd.policy == parse_policy({"anonymous_register": False,
                                              "identities": {"psk:gw-1": {"lookup": ["*"]}}})
        node = await new_node(srv)
        try:
            refused = await node.ask(Code.POST, "rd", "ep=x", "d=y", payload=LINKS, cf=40)
            assert refused.code == Code.FORBIDDEN
        finally:
            await node.close()
    finally:
        await srv.stop()
    # A policy in the configuration is the policy at every start.
    srv = await start(tmp_path, clock, rd_policy=parse_policy({"sector_lookup": True}))
    try:
        assert srv.rd is not None and srv.rd.policy_source == "config"
        assert srv.rd.policy.sector_lookup and srv.rd.policy.anonymous_register
    finally:
        await srv.stop()
