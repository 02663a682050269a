"""The RD registerer against a scripted RD on real sockets: discovery, what a registration
carries, refreshing before the lifetime ends, registering again on 4.04, falling back to
re-registration where Update is missing, backing off, simple registration, removal, and
every transport and security mode. Time is a ManualClock; CoAP runs on real timers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.client import ManualClock, RetryPolicy
from aiolwm2m.client.account_security import AccountSecurity
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import Link, parse_link_format
from aiolwm2m.rd_client import (
    RdRegistered,
    RdRegisterer,
    RdRegistration,
    RdRegistrationFailed,
    RdRegistrationLost,
    RdRejected,
    RdUnregistered,
    RdUpdated,
)
from aiolwm2m.rd_client.messages import refresh_due
from aiolwm2m.security import (
    CertificateUsage,
    InMemoryCredentialLookup,
    PskCredentials,
    RpkCredentials,
    ServerCredentials,
    X509Credentials,
)
from aiolwm2m.transport.site import Site
from tests.security.pki import Pki, make_pki

from .conftest import FAST
from .rd_peer import RunningRd, scripted_rd

LINKS = '</sensors/temp>;rt="temperature";if="core.s",</sensors/light>;rt="light-lux"'
PSK = PskCredentials(b"rd-node-1", b"rd secret key 16")


def registration(**kwargs: Any) -> RdRegistration:
    kwargs.setdefault("lifetime", 100)
    kwargs.setdefault("links", LINKS)
    return RdRegistration.build("node-1", **kwargs)


def registerer(uri: str, reg: RdRegistration | None = None, **kwargs: Any) -> RdRegisterer:
    kwargs.setdefault("transmission", FAST)
    kwargs.setdefault("host", "127.0.0.1")
    kwargs.setdefault("request_timeout", 5.0)
    return RdRegisterer(uri, reg or registration(), **kwargs)


@pytest.fixture
async def rd() -> AsyncIterator[RunningRd]:
    async with scripted_rd() as running:
        yield running


async def test_register_discovers_the_registration_resource_and_sends_everything(
        rd: RunningRd) -> None:
    reg = registration(sector="plant-1", endpoint_types=["core.rd-ep-a", "oma.x"],
                       base="coap://192.0.2.7:5683", extra={"room": "12", "mobile": None})
    r = registerer(rd.uri, reg)
    events: list[object] = []
    r.events.subscribe(events.append)
    try:
        location = await r.register()
        assert location == "/dir/1"
        discovery, register = rd.state.seen
        assert discovery.path == (".well-known", "core")
        assert discovery.query == ["rt=core.rd"]
        assert register.method == Code.POST and register.path == ("dir",)
        assert register.query == ["ep=node-1", "d=plant-1", "lt=100",
                                  "base=coap://192.0.2.7:5683", "et=core.rd-ep-a",
                                  "et=oma.x", "room=12", "mobile"]
        assert register.content_format == 40
        assert parse_link_format(register.payload) == parse_link_format(LINKS)
        assert events == [RdRegistered("/dir/1", 100, False)]
        assert (r.state, r.registered, r.location) == ("registered", True, ("dir", "1"))
        await r.register()  # the same (ep, d) again: discovery is remembered
        assert [s.path for s in rd.state.seen[2:]] == [("dir",)]
    finally:
        await r.close(unregister=False)


async def test_a_path_in_the_uri_is_the_registration_resource(rd: RunningRd) -> None:
    r = registerer(rd.uri + "/dir")
    try:
        await r.register()
        assert [s.path for s in rd.state.seen] == [("dir",)]
    finally:
        await r.close(unregister=False)


async def test_refreshes_before_the_lifetime_ends_and_sends_what_changed(
        rd: RunningRd) -> None:
    clock = ManualClock()
    r = registerer(rd.uri, clock=clock, jitter=0.0)
    stream = r.events.stream()
    await r.start()
    try:
        await stream.until(RdRegistered)
        # FAST: MAX_TRANSMIT_WAIT 1.4 s, so the refresh is due 98.6 s after registering.
        await clock.advance(98.0)
        await asyncio.sleep(0.2)
        assert rd.state.of(Code.POST, ("dir", "1")) == []
        await clock.advance(1.0)
        await stream.until(RdUpdated)
        [update] = rd.state.of(Code.POST, ("dir", "1"))
        assert update.query == [] and update.payload == b""  # a plain refresh
        r.set_lifetime(300)
        updated = await stream.until(RdUpdated)
        assert updated == RdUpdated("/dir/1", 300)
        assert rd.state.of(Code.POST, ("dir", "1"))[-1].query == ["lt=300"]
        # The next refresh is due from the new lifetime: 300 - 1.4 s.
        await clock.advance(298.0)
        await asyncio.sleep(0.2)
        assert len(rd.state.of(Code.POST, ("dir", "1"))) == 2
        await clock.advance(1.0)
        await stream.until(RdUpdated)
    finally:
        await r.close()


async def test_refresh_jitter_spreads_a_fleet_but_stays_before_the_deadline() -> None:
    dues = [refresh_due(0.0, 1000, 1.4, random.Random(seed), 0.1) for seed in range(50)]
    latest = 1000 - 1.4
    assert all(latest * 0.9 <= d <= latest for d in dues)
    assert len({round(d, 3) for d in dues}) > 40


async def test_registers_again_when_the_rd_forgot_the_registration(rd: RunningRd) -> None:
    clock = ManualClock()
    r = registerer(rd.uri, clock=clock)
    stream = r.events.stream()
    failures: list[object] = []
    r.events.subscribe(lambda e: failures.append(e) if isinstance(e, RdRegistrationFailed)
                       else None)
    await r.start()
    try:
        await stream.until(RdRegistered)
        rd.state.entries.clear()  # as if it had expired or been removed by someone else
        r.refresh_soon()
        lost = await stream.until(RdRegistrationLost)
        assert isinstance(lost, RdRegistrationLost)
        assert lost.location == "/dir/1" and "4.04" in lost.reason
        again = await stream.until(RdRegistered)
        assert again == RdRegistered("/dir/2", 100, False)
        assert r.location == ("dir", "2") and list(rd.state.entries) == ["2"]
        assert failures == [] and r.backoff.failures == 0  # at once, no back-off delay
    finally:
        await r.close()


async def test_an_rd_without_update_is_refreshed_by_registering_again(rd: RunningRd) -> None:
    clock = ManualClock()
    r = registerer(rd.uri, clock=clock)
    stream = r.events.stream()
    await r.start()
    try:
        await stream.until(RdRegistered)
        rd.state.fail("update", Code.METHOD_NOT_ALLOWED)
        r.refresh_soon()
        await stream.until(RdRegistered)
        assert r.updates_unsupported
        assert len(rd.state.of(Code.POST, ("dir",))) == 2
        await clock.advance(99.0)
        await stream.until(RdRegistered)
        assert len(rd.state.of(Code.POST, ("dir",))) == 3
        assert len(rd.state.of(Code.POST, ("dir", "1"))) == 1  # no Update tried again
        assert list(rd.state.entries) == ["1"]  # the same (ep, d): the same registration
    finally:
        await r.close()


async def test_failures_back_off_exponentially_and_honour_max_age(rd: RunningRd) -> None:
    clock = ManualClock()
    r = registerer(rd.uri, clock=clock, retry=RetryPolicy(initial=2.0, factor=2.0,
                                                         maximum=60.0, jitter=0.0))
    stream = r.events.stream()
    rd.state.fail("register", Code.BAD_REQUEST, times=2)
    rd.state.fail("register", Code.SERVICE_UNAVAILABLE, max_age=30)
    await r.start()
    try:
        failures = []
        for expected_delay in (2.0, 4.0, 30.0):
            failed = await stream.until(RdRegistrationFailed)
            assert isinstance(failed, RdRegistrationFailed)
            failures.append(failed)
            assert failed.retry_in == expected_delay
            await asyncio.sleep(0.1)
            assert len(rd.state.of(Code.POST, ("dir",))) == len(failures)  # waits
            await clock.advance(expected_delay)
        assert "4.00" in failures[0].reason and "5.03" in failures[2].reason
        assert [f.failures for f in failures] == [1, 2, 3]
        await stream.until(RdRegistered)
        assert r.backoff.failures == 0
    finally:
        await r.close()


async def test_an_unreachable_rd_is_retried_on_the_back_off_not_in_a_loop() -> None:
    async with scripted_rd() as gone:
        uri = gone.uri
    clock = ManualClock()
    r = registerer(uri + "/dir", clock=clock, request_timeout=1.0,
                   retry=RetryPolicy(initial=2.0, jitter=0.0))
    stream = r.events.stream()
    await r.start()
    try:
        failed = await stream.until(RdRegistrationFailed, timeout=10)
        assert isinstance(failed, RdRegistrationFailed) and failed.retry_in == 2.0
        await asyncio.sleep(0.5)
        assert clock.sleeps == [2.0] and r.backoff.failures == 1 and not r.registered
    finally:
        await r.close()


async def test_close_removes_the_registration_unless_told_not_to(rd: RunningRd) -> None:
    r = registerer(rd.uri)
    events: list[object] = []
    r.events.subscribe(events.append)
    await r.start()
    await r.wait_registered(5)
    await r.close()
    [delete] = rd.state.of(Code.DELETE)
    assert delete.path == ("dir", "1") and rd.state.entries == {}
    assert events[-1] == RdUnregistered("/dir/1", True) and r.state == "closed"
    kept = registerer(rd.uri)
    await kept.register()
    await kept.close(unregister=False)
    assert len(rd.state.of(Code.DELETE)) == 1 and list(rd.state.entries) == ["2"]


async def test_changing_the_links_registers_them_again(rd: RunningRd) -> None:
    clock = ManualClock()
    r = registerer(rd.uri, clock=clock)
    stream = r.events.stream()
    await r.start()
    try:
        await stream.until(RdRegistered)
        r.set_links('</sensors/temp>;rt="temperature"')
        await stream.until(RdRegistered)
        assert [str(link) for link in rd.state.entries["1"].links] == [
            '</sensors/temp>;rt="temperature"']
    finally:
        await r.close()


async def test_simple_registration_lets_the_rd_fetch_our_links(rd: RunningRd) -> None:
    clock = ManualClock()
    r = registerer(rd.uri, registration(sector="s1"), simple=True, clock=clock)
    stream = r.events.stream()
    await r.start()
    try:
        registered = await stream.until(RdRegistered)
        assert registered == RdRegistered("", 100, True)
        [simple] = rd.state.of(Code.POST, (".well-known", "rd"))
        assert simple.query == ["ep=node-1", "d=s1", "lt=100"] and simple.payload == b""
        assert parse_link_format(rd.state.fetched[0]) == parse_link_format(LINKS)
        await clock.advance(99.0)  # refreshed by repeating the simple registration
        await stream.until(RdUpdated)
        assert len(rd.state.of(Code.POST, (".well-known", "rd"))) == 2
    finally:
        await r.close()
    # Removal finds the registration by endpoint lookup, the RD gave no location.
    [lookup] = [s for s in rd.state.seen if s.path == ("find", "ep")]
    assert lookup.query == ["ep=node-1", "d=s1"]
    assert rd.state.of(Code.DELETE)[0].path == ("dir", "1") and rd.state.entries == {}


async def test_a_site_of_its_own_is_served_and_registered(rd: RunningRd) -> None:
    from aiolwm2m.cli.coap_server import TextResource

    site = Site()
    hello = TextResource("hi")
    hello.link_params = (("rt", "greeting"),)
    site.add("hello", hello)
    r = registerer(rd.uri, RdRegistration.build("node-2", lifetime=60), site=site,
                   simple=True)
    try:
        await r.register()
        assert [link.target for link in rd.state.entries["1"].links] == ["/hello"]
        assert r.links() == [Link("/hello", [("rt", "greeting")])]
    finally:
        await r.close()


# -- transports and RD credentials -----------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("rd-pki")))


def rd_credentials(pki: Pki) -> ServerCredentials:
    client_key = RpkCredentials(pki.read("rpk_client.key"))
    lookup = InMemoryCredentialLookup(psk={PSK.identity: PSK.key},
                                      rpk=[client_key.public_key_der])
    return ServerCredentials(lookup, rpk=RpkCredentials(pki.read("rpk_server.key")),
                             x509=pki.server_x509())


def security_for(mode: str, pki: Pki) -> AccountSecurity:
    if mode == "psk":
        return AccountSecurity(PSK)
    if mode == "rpk":
        return AccountSecurity(RpkCredentials(pki.read("rpk_client.key")),
                               pki.read("rpk_server.pub"))
    return AccountSecurity(X509Credentials(pki.read("client1_chain.pem"),
                                           pki.read("client1.key"), pki.read("root.pem"),
                                           CertificateUsage.CA_CONSTRAINT),
                           sni="localhost")


@pytest.mark.parametrize(("scheme", "mode", "identity"), [
    ("coap+tcp", None, None),
    ("coaps", "psk", "psk:rd-node-1"),
    ("coaps", "rpk", "rpk:"),
    ("coaps", "x509", "x509:"),
    ("coaps+tcp", "psk", "psk:rd-node-1"),
    ("coaps+tcp", "rpk", "rpk:"),
    ("coaps+tcp", "x509", "x509:"),
])
async def test_every_transport_and_security_mode(pki: Pki, scheme: str, mode: str | None,
                                                 identity: str | None) -> None:
    credentials = rd_credentials(pki) if mode is not None else None
    async with scripted_rd(scheme, credentials) as rd:
        security = security_for(mode, pki) if mode is not None else None
        clock = ManualClock()
        r = registerer(rd.uri, security=security, clock=clock)
        stream = r.events.stream()
        await r.start()
        try:
            await stream.until(RdRegistered, timeout=15)
            r.refresh_soon()
            await stream.until(RdUpdated, timeout=10)
        finally:
            await r.close()
        methods = [(s.method, s.path) for s in rd.state.seen]
        assert methods == [(Code.GET, (".well-known", "core")), (Code.POST, ("dir",)),
                           (Code.POST, ("dir", "1")), (Code.DELETE, ("dir", "1"))]
        for seen in rd.state.seen:
            if identity is None:
                assert seen.identity is None
            else:
                assert seen.identity is not None and seen.identity.startswith(identity)


async def test_a_wrong_key_fails_the_handshake_and_backs_off(pki: Pki) -> None:
    async with scripted_rd("coaps", rd_credentials(pki)) as rd:
        clock = ManualClock()
        r = registerer(rd.uri, security=PskCredentials(PSK.identity, b"not the right key"),
                       clock=clock, retry=RetryPolicy(initial=2.0, jitter=0.0))
        stream = r.events.stream()
        await r.start()
        try:
            failed = await stream.until(RdRegistrationFailed, timeout=15)
            assert isinstance(failed, RdRegistrationFailed) and failed.retry_in == 2.0
            assert rd.state.seen == [] and not r.registered
        finally:
            await r.close()


# -- configuration errors ----------------------------------------------------------------


@pytest.mark.parametrize(("uri", "kwargs", "message"), [
    ("coaps://127.0.0.1", {}, "needs RD credentials"),
    ("coap://127.0.0.1", {"security": PSK}, "need a coaps://"),
    ("coap://127.0.0.1/rd?x=1", {}, "carries no query"),
    ("coap://127.0.0.1/rd", {"simple": True}, "without a path"),
    ("http://127.0.0.1", {}, "unsupported scheme"),
])
def test_configuration_errors_are_raised_at_once(uri: str, kwargs: dict[str, Any],
                                                  message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RdRegisterer(uri, registration(), **kwargs)


def test_an_unusable_rd_key_is_a_configuration_error(pki: Pki) -> None:
    security = AccountSecurity(RpkCredentials(pki.read("rpk_client.key")), b"\x30\x00")
    with pytest.raises(ValueError, match="the RD's public key"):
        RdRegisterer("coaps://127.0.0.1", registration(), security=security)


def test_registration_values_are_checked() -> None:
    with pytest.raises(ValueError, match="longer than 63 bytes"):
        RdRegistration.build("e" * 64)
    with pytest.raises(ValueError, match="longer than 63 bytes"):
        RdRegistration.build("ok", sector="é" * 32)
    with pytest.raises(ValueError, match=r"outside 1\.\.4294967295"):
        RdRegistration.build("ok", lifetime=0)
    with pytest.raises(ValueError, match=r"outside 1\.\.4294967295"):
        RdRegistration.build("ok", lifetime=1 << 32)
    with pytest.raises(ValueError, match="cannot be an extra attribute"):
        RdRegistration.build("ok", extra={"lt": "5"})
    with pytest.raises(ValueError, match="not a link attribute name"):
        RdRegistration.build("ok", extra={"a b": "5"})
    with pytest.raises(ValueError, match="links: expected '<' at offset 0"):
        RdRegistration.build("ok", links="sensors/temp")
    with pytest.raises(ValueError, match="base"):
        RdRegistration.build("ok", base="ftp://x")
    with pytest.raises(ValueError, match="one non-blank word"):
        RdRegistration.build("ok", endpoint_types="a b")


async def test_register_raises_the_rds_answer(rd: RunningRd) -> None:
    rd.state.fail("register", Code.FORBIDDEN)
    r = registerer(rd.uri)
    try:
        with pytest.raises(RdRejected) as info:
            await r.register()
        assert info.value.code == Code.FORBIDDEN and r.state == "idle"
    finally:
        await r.close()


async def test_our_link_list_goes_to_the_rds_host_only(rd: RunningRd) -> None:
    """A forged GET /.well-known/core must not make the node send its link list to a
    victim: over NoSec UDP only the RD's host gets it, others an empty 4.03."""
    from aiolwm2m.coap.message import Message
    from aiolwm2m.transport.udp import UdpEndpoint

    r = registerer(rd.uri, simple=True)
    await r.register()
    assert r._connection is not None
    node = ("127.0.0.1", r._connection.endpoint.port)
    get = Message.request(Code.GET, (".well-known", "core"))
    try:
        for host, expected in (("127.0.0.2", Code.FORBIDDEN), ("127.0.0.1", Code.CONTENT)):
            peer = await UdpEndpoint.create(host, 0, params=FAST)
            try:
                answer = await peer.request(get, node, timeout=5)
            finally:
                await peer.close()
            assert answer.code == expected
            if expected == Code.FORBIDDEN:
                assert answer.payload == b""
            else:
                assert parse_link_format(answer.payload) == parse_link_format(LINKS)
    finally:
        await r.close()
