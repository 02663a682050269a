"""Taking over someone else's registration: Update or De-register of /rd/{id} from another
address, another transport or another identity, and PSK identities that used to collide.
Real sockets on loopback; the victim is a real CoAP endpoint the server reads from."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m import ContentFormat
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Refused
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.transport.dtls import ClientSecurity, DtlsEndpoint
from aiolwm2m.transport.site import RenderResult, Resource, Site
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.udp import UdpEndpoint

LINKS = b'</>;rt="oma.lwm2m",</1>;ver=1.1,</1/0>,</3/0>'
KEY = bytes(range(16))
TIMEOUT = 5


class Name(Resource):
    """/3/0/0 answering with whose socket this is, so a Read shows where it went."""

    def __init__(self, name: bytes) -> None:
        super().__init__()
        self.name = name

    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, self.name, ContentFormat.TEXT)


def site(name: bytes) -> Site:
    s = Site()
    s.add("3/0/0", Name(name))
    return s


def register(ep: str) -> Message:
    return Message.request(Code.POST, "/rd", query=[f"ep={ep}", "lt=60", "lwm2m=1.1"],
                           payload=LINKS, content_format=40)


def update(location: tuple[str, ...], *query: str) -> Message:
    return Message.request(Code.POST, "/" + "/".join(location), query=list(query))


def deregister(location: tuple[str, ...]) -> Message:
    return Message.request(Code.DELETE, "/" + "/".join(location))


async def start(**config: object) -> LwM2MServer:
    server = LwM2MServer(ServerConfig(host="::1", port=0, tcp_port=0, coaps_port=0,
                                      store="memory", run_timers=False,
                                      **config))  # type: ignore[arg-type]
    await server.start()
    return server


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = await start()
    yield srv
    await srv.stop()


async def read_name(server: LwM2MServer, endpoint: str) -> bytes:
    resp = await server.read(endpoint, "/3/0/0", format=ContentFormat.TEXT, timeout=TIMEOUT)
    assert resp.code == Code.CONTENT and resp.content is not None
    return str(resp.content.value).encode()  # type: ignore[union-attr]


async def test_nosec_registration_cannot_be_moved_or_removed_from_another_port(
        server: LwM2MServer) -> None:
    rd = ("::1", server.port)
    async with await UdpEndpoint.create("::1", 0, site=site(b"victim")) as victim, \
            await UdpEndpoint.create("::1", 0, site=site(b"attacker")) as attacker:
        resp = await victim.request(register("victim"), rd, timeout=TIMEOUT)
        assert resp.code == Code.CREATED
        location = resp.location_path
        before = server.registrations["victim"]
        events = server.events.stream()
        # The attacker knows /rd/{id}: Update (which would move the address to it) and
        # De-register both get 4.04, exactly as an id that does not exist.
        for request in (update(location, "lt=90"), deregister(location),
                        update(location, "ep=victim")):
            resp = await attacker.request(request, rd, timeout=TIMEOUT)
            assert (resp.code, resp.payload) == (Code.NOT_FOUND, b"no such registration")
        unknown = await attacker.request(update(("rd", "no-such-id")), rd, timeout=TIMEOUT)
        assert (unknown.code, unknown.payload) == (Code.NOT_FOUND, b"no such registration")
        assert server.registrations["victim"] is before
        assert server.refusals.by_reason["not-owner"] == 3
        assert server.refusals.by_reason["unknown-registration"] == 1
        ev = await events.until(Refused, timeout=TIMEOUT)
        assert isinstance(ev, Refused)
        assert (ev.reason, ev.endpoint, ev.transport) == ("not-owner", "victim", "udp")
        assert ev.peer == f"::1:{attacker.port}"
        # The server's Read still goes to the victim, which can still update and leave.
        assert await read_name(server, "victim") == b"victim"
        assert (await victim.request(update(location, "lt=90"), rd,
                                     timeout=TIMEOUT)).code == Code.CHANGED
        assert server.registrations["victim"].lifetime == 90
        assert (await victim.request(deregister(location), rd,
                                     timeout=TIMEOUT)).code == Code.DELETED
        assert "victim" not in server.registrations


async def test_udp_registration_cannot_be_updated_over_tcp(server: LwM2MServer) -> None:
    rd = ("::1", server.port)
    async with await UdpEndpoint.create("::1", 0, site=site(b"victim")) as victim:
        resp = await victim.request(register("victim"), rd, timeout=TIMEOUT)
        location = resp.location_path
        before = server.registrations["victim"]
        attacker = await TcpEndpoint.create(listen=False, site=site(b"attacker"))
        try:
            tcp = ("::1", server.port_of("tcp"))
            for request in (update(location), deregister(location)):
                resp = await attacker.request(request, tcp, timeout=TIMEOUT)
                assert resp.code == Code.NOT_FOUND
        finally:
            await attacker.close()
        # Not half-moved (address over TCP, transport UDP): untouched, and reachable.
        after = server.registrations["victim"]
        assert after is before and (after.transport, after.address) == ("udp",
                                                                         before.address)
        assert server.refusals.by_reason["wrong-transport"] == 2
        assert await read_name(server, "victim") == b"victim"


async def test_address_change_with_endpoint_name_when_the_operator_allows_it() -> None:
    server = await start(allow_address_change=True)
    rd = ("::1", server.port)
    try:
        async with await UdpEndpoint.create("::1", 0, site=site(b"old port")) as old, \
                await UdpEndpoint.create("::1", 0, site=site(b"new port")) as new:
            resp = await old.request(register("roamer"), rd, timeout=TIMEOUT)
            location = resp.location_path
            # Without ep=, or with another name, a new address is still refused.
            for query in ((), ("ep=someone-else",)):
                resp = await new.request(update(location, *query), rd, timeout=TIMEOUT)
                assert resp.code == Code.NOT_FOUND
            assert server.registrations["roamer"].address == ("::1", old.port)
            # Naming the endpoint moves it (a NAT rebinding), and the next Read goes there.
            resp = await new.request(update(location, "ep=roamer"), rd, timeout=TIMEOUT)
            assert resp.code == Code.CHANGED
            assert server.registrations["roamer"].address == ("::1", new.port)
            assert await read_name(server, "roamer") == b"new port"
            # ... and the old address is now the stranger.
            resp = await old.request(deregister(location), rd, timeout=TIMEOUT)
            assert resp.code == Code.NOT_FOUND
            assert server.refusals.by_reason["not-owner"] == 3
    finally:
        await server.stop()


async def test_address_change_is_refused_by_default(server: LwM2MServer) -> None:
    rd = ("::1", server.port)
    async with await UdpEndpoint.create("::1", 0, site=site(b"old port")) as old, \
            await UdpEndpoint.create("::1", 0, site=site(b"new port")) as new:
        location = (await old.request(register("roamer"), rd, timeout=TIMEOUT)).location_path
        resp = await new.request(update(location, "ep=roamer"), rd, timeout=TIMEOUT)
        assert resp.code == Code.NOT_FOUND
        assert await read_name(server, "roamer") == b"old port"


async def dtls_device(server: LwM2MServer, identity: bytes, name: bytes
                      ) -> tuple[DtlsEndpoint, tuple[str, int]]:
    ep = await DtlsEndpoint.create("::1", 0, site=site(name), server_credentials=None)
    assert isinstance(ep, DtlsEndpoint)
    remote = await ep.secure(("::1", server.port_of("dtls")),
                             ClientSecurity(PskCredentials(identity, KEY)))
    return ep, remote


async def test_psk_identities_that_read_alike_are_different_principals(
        server: LwM2MServer) -> None:
    # The one byte ff and the four characters \xff were both "psk:\xff", so the holder of
    # one could register, update and remove the other's endpoint.
    await server.stores.security.put(SecurityInfo("byte-dev", psk_identity=b"\xff",
                                                  psk_key=KEY))
    await server.stores.security.put(SecurityInfo("text-dev", psk_identity=b"\\xff",
                                                  psk_key=KEY))
    owner, owner_remote = await dtls_device(server, b"\xff", b"owner")
    other, other_remote = await dtls_device(server, b"\\xff", b"other")
    try:
        resp = await owner.request(register("byte-dev"), owner_remote, timeout=TIMEOUT)
        assert resp.code == Code.CREATED
        location = resp.location_path
        reg = server.registrations["byte-dev"]
        assert reg.identity == "psk:\\xff"
        resp = await other.request(register("byte-dev"), other_remote, timeout=TIMEOUT)
        assert (resp.code, resp.payload) == (Code.FORBIDDEN, b"forbidden")
        for request in (update(location), deregister(location)):
            resp = await other.request(request, other_remote, timeout=TIMEOUT)
            assert resp.code == Code.NOT_FOUND
        assert server.registrations["byte-dev"] is reg
        assert server.refusals.by_reason["wrong-identity"] == 3
        resp = await other.request(register("text-dev"), other_remote, timeout=TIMEOUT)
        assert resp.code == Code.CREATED
        assert server.registrations["text-dev"].identity == "psk:\\\\xff"
        assert await read_name(server, "byte-dev") == b"owner"
    finally:
        await owner.close()
        await other.close()


async def test_authenticated_client_updates_from_a_new_session_and_port(
        server: LwM2MServer) -> None:
    await server.stores.security.put(SecurityInfo("dtls-dev", psk_identity=b"dtls-dev",
                                                  psk_key=KEY))
    first, remote = await dtls_device(server, b"dtls-dev", b"first")
    try:
        location = (await first.request(register("dtls-dev"), remote,
                                        timeout=TIMEOUT)).location_path
    finally:
        await first.close()
    # DTLS proves who it is: any address will do, with no ep= and no operator setting.
    second, remote = await dtls_device(server, b"dtls-dev", b"second")
    try:
        assert (await second.request(update(location), remote,
                                     timeout=TIMEOUT)).code == Code.CHANGED
        assert await read_name(server, "dtls-dev") == b"second"
        # A NoSec peer cannot touch it, from any port.
        async with await UdpEndpoint.create("::1", 0) as plain:
            resp = await plain.request(update(location), ("::1", server.port),
                                       timeout=TIMEOUT)
            assert resp.code == Code.NOT_FOUND
    finally:
        await second.close()
