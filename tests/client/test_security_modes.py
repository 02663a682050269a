"""The client against our server over coaps:// in every security mode, configured through
the Security object (0): register, read, observe, Send, de-register; and what a wrong
credential or an unusable Security instance does (back off, never crash or spin)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.client import (
    AccountSecurity,
    ClientConfig,
    LwM2MClient,
    RegistrationFailed,
    RetryPolicy,
    SecurityModeError,
    TemperatureInstance,
)
from aiolwm2m.client.account_security import server_target, split_der
from aiolwm2m.client.objects import SecurityInstance
from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m import LwM2MPath
from aiolwm2m.security.credentials import (
    CertificateUsage,
    PskCredentials,
    RpkCredentials,
    X509Credentials,
    generate_p256_key,
)
from aiolwm2m.security.pem import certificates_der
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Deregistered as ServerDeregistered
from aiolwm2m.server.events import NotificationReceived, SendReceived
from aiolwm2m.store.records import SecurityInfo

from ..security.pki import Pki, make_pki
from .conftest import FAST, next_event

KEY = bytes(range(16))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture
async def secure_server(pki: Pki) -> AsyncIterator[LwM2MServer]:
    cfg = ServerConfig(host="::1", port=0, coaps_port=0, store="memory", run_timers=False,
                       dtls_rpk=RpkCredentials(pki.read("rpk_server.key")),
                       dtls_x509=pki.server_x509())
    srv = LwM2MServer(cfg)
    await srv.start()
    store = srv.stores.security
    await store.put(SecurityInfo("psk-dev", psk_identity=b"psk-dev-id", psk_key=KEY))
    await store.put(SecurityInfo("rpk-dev", rpk_public_key=RpkCredentials(
        pki.read("rpk_client.key")).public_key_der))
    await store.put(SecurityInfo("x509-dev", x509_identity="client1"))
    yield srv
    await srv.stop()


def coaps(server: LwM2MServer) -> str:
    return f"coaps://[::1]:{server.port_of('dtls')}"


async def start_client(endpoint: str, uri: str, security: Any, **kwargs: Any) -> LwM2MClient:
    kwargs.setdefault("transmission", FAST)
    config = ClientConfig.development(endpoint, uri, host="::1",
                                      development_security=security, **kwargs)
    client = LwM2MClient(config, objects=[TemperatureInstance(0)])
    await client.start()
    return client


async def exercise(server: LwM2MServer, client: LwM2MClient, endpoint: str, transport: str,
                   identity: str | None, binding: str = "U") -> None:
    """Register, Read, Observe (one notification), Send, De-register; each checked on the
    server's side."""
    events = server.events.stream()
    try:
        await client.wait_registered(10)
        reg = server.registrations[endpoint]
        assert (reg.transport, reg.identity, reg.binding) == (transport, identity, binding)
        read = await server.read(endpoint, "/3303/0/5700", timeout=5)
        assert read.code == Code.CONTENT
        assert read.content.value == 20.0  # type: ignore[union-attr]
        obs = await server.observe(endpoint, "/3303/0/5700", timeout=5)
        assert obs.code == Code.CONTENT
        temperature = client.instance(3303)
        assert isinstance(temperature, TemperatureInstance)
        temperature.measure(31.5)
        note = await next_event(events, NotificationReceived, 5)
        assert note.response.content.value == 31.5
        temperature.measure(12.0)
        await client.send(["/3303/0/5700"])
        sent = await next_event(events, SendReceived, 5)
        assert sent.registration.endpoint == endpoint
        assert sent.values[0].nodes[LwM2MPath(3303, 0, 5700)].value == 12.0
    finally:
        await client.stop()
    gone = await next_event(events, ServerDeregistered, 5)
    assert gone.registration.endpoint == endpoint
    assert endpoint not in server.registrations


async def test_psk(secure_server: LwM2MServer) -> None:
    client = await start_client("psk-dev", coaps(secure_server),
                                PskCredentials(b"psk-dev-id", KEY))
    instance = client.tree.instances(0)[0]
    assert (instance.get(2), instance.get(3), instance.get(5)) == (0, b"psk-dev-id", KEY)
    await exercise(secure_server, client, "psk-dev", "dtls", "psk:psk-dev-id")


async def test_rpk_pins_the_server_key(secure_server: LwM2MServer, pki: Pki) -> None:
    ours = RpkCredentials(pki.read("rpk_client.key"))
    server_key = RpkCredentials(pki.read("rpk_server.key")).public_key_der
    client = await start_client("rpk-dev", coaps(secure_server),
                                AccountSecurity(ours, server_public_key=server_key))
    instance = client.tree.instances(0)[0]
    assert instance.get(2) == 1 and instance.get(3) == ours.public_key_der
    assert instance.get(4) == server_key and instance.get(5) == ours.private_key_der
    await exercise(secure_server, client, "rpk-dev", "dtls",
                   "rpk:" + hashlib.sha256(ours.public_key_der).hexdigest())


async def test_rpk_with_another_server_key_does_not_register(secure_server: LwM2MServer,
                                                              pki: Pki) -> None:
    wrong = RpkCredentials(pki.read("rpk_other.key")).public_key_der
    client = await start_client(
        "rpk-dev", coaps(secure_server),
        AccountSecurity(RpkCredentials(pki.read("rpk_client.key")), server_public_key=wrong),
        retry=RetryPolicy(initial=0.2, minimum=0.2, jitter=0.0))
    stream = client.events.stream()
    try:
        failed = await stream.until(RegistrationFailed, timeout=10)
        assert isinstance(failed, RegistrationFailed) and failed.retry_in == 0.2
        assert "rpk-dev" not in secure_server.registrations
    finally:
        await client.stop()


@pytest.mark.parametrize("usage", [CertificateUsage.CA_CONSTRAINT,
                                   CertificateUsage.DOMAIN_ISSUED_CERTIFICATE])
async def test_x509(secure_server: LwM2MServer, pki: Pki, usage: CertificateUsage) -> None:
    # Usage 0: resource 4 is the CA the server's chain must lead to; usage 3: it is the
    # server's own certificate. The certificate names "localhost", hence the SNI (14).
    given = pki.read("root.pem" if usage == CertificateUsage.CA_CONSTRAINT else "server.pem")
    creds = X509Credentials(pki.read("client1_chain.pem"), pki.read("client1.key"), given,
                            usage)
    client = await start_client("x509-dev", coaps(secure_server),
                                AccountSecurity(creds, sni="localhost"))
    instance = client.tree.instances(0)[0]
    # Our chain travels as concatenated DER (leaf first), the given certificate as DER.
    assert split_der(instance.get(3)) == certificates_der(pki.read("client1_chain.pem"))
    assert instance.get(4) == certificates_der(given)[0]
    assert (instance.get(2), instance.get(15), instance.get(14)) == (2, usage, "localhost")
    await exercise(secure_server, client, "x509-dev", "dtls", "x509:client1")


async def test_x509_usage_3_refuses_another_server_certificate(
        secure_server: LwM2MServer, pki: Pki) -> None:
    creds = X509Credentials(pki.read("client1_chain.pem"), pki.read("client1.key"),
                            pki.read("server_direct.pem"),
                            CertificateUsage.DOMAIN_ISSUED_CERTIFICATE)
    client = await start_client("x509-dev", coaps(secure_server),
                                AccountSecurity(creds, sni="localhost"),
                                retry=RetryPolicy(initial=0.2, minimum=0.2, jitter=0.0))
    stream = client.events.stream()
    try:
        await stream.until(RegistrationFailed, timeout=10)
        assert "x509-dev" not in secure_server.registrations
    finally:
        await client.stop()


async def test_wrong_psk_backs_off_without_spinning(secure_server: LwM2MServer) -> None:
    policy = RetryPolicy(initial=0.3, factor=2.0, maximum=5.0, jitter=0.0, minimum=0.3)
    client = await start_client("psk-dev", coaps(secure_server),
                                PskCredentials(b"psk-dev-id", b"not the right key"),
                                retry=policy, request_timeout=1.0)
    stream = client.events.stream()
    try:
        delays = []
        for _ in range(3):
            failed = await stream.until(RegistrationFailed, timeout=10)
            assert isinstance(failed, RegistrationFailed)
            delays.append(failed.retry_in)
            if len(delays) == 2:
                # While backing off nothing is sent, and no DTLS socket stays open.
                sent = client.traffic()[2]
                assert not client._links
                await asyncio.sleep(0.25)
                assert client.traffic()[2] == sent
        assert delays == [0.3, 0.6, 1.2]
        assert "psk-dev" not in secure_server.registrations
        assert client._supervisor is not None and not client._supervisor.done()
        # Each attempt is one handshake (a few datagrams), not a flood.
        assert client.traffic()[2] < 60
    finally:
        await client.stop()


async def test_unusable_security_instances_are_explained() -> None:
    cases = [
        ({"server_uri": "coaps://[::1]:5684", "security_mode": 4}, "EST"),
        ({"server_uri": "coaps://[::1]:5684", "security_mode": 3}, "not NoSec"),
        ({"server_uri": "coap://[::1]:5683", "security_mode": 0,
          "public_key_or_identity": b"id", "secret_key": KEY}, "needs a coaps://"),
        ({"server_uri": "coaps://[::1]:5684", "security_mode": 1,
          "public_key_or_identity": b"", "secret_key": b"\x30\x03\x02\x01\x01"},
         "server's public key"),
        ({"server_uri": "coaps://[::1]:5684", "security_mode": 0,
          "public_key_or_identity": b"id", "secret_key": b""}, "PSK key is empty"),
        ({"server_uri": "coaps://[::1]:5684", "security_mode": 2,
          "public_key_or_identity": b"\x30\x03\x02\x01\x01", "server_public_key": b"x",
          "secret_key": b"k"}, "Certificate credentials"),
        ({"server_uri": "http://example.org", "security_mode": 3}, "/0/0/0"),
    ]
    for values, expected in cases:
        with pytest.raises(SecurityModeError, match=expected):
            server_target(SecurityInstance(0, **values))


async def test_est_mode_fails_registration_with_the_reason(secure_server: LwM2MServer
                                                           ) -> None:
    client = LwM2MClient(ClientConfig.development(
        "est-dev", coaps(secure_server), host="::1", transmission=FAST,
        development_security=PskCredentials(b"x", KEY),
        retry=RetryPolicy(initial=0.2, minimum=0.2, jitter=0.0)))
    client.tree.instances(0)[0].store(2, 4)
    stream = client.events.stream()
    await client.start()
    try:
        failed = await stream.until(RegistrationFailed, timeout=5)
        assert isinstance(failed, RegistrationFailed) and "EST" in failed.reason
    finally:
        await client.stop()


def test_config_checks_credentials_against_the_scheme() -> None:
    with pytest.raises(ValueError, match="needs credentials"):
        ClientConfig.development("a", "coaps://[::1]:5684")
    with pytest.raises(ValueError, match="carries no security"):
        ClientConfig("a", bootstrap_uri="coap://[::1]:5683",
                     bootstrap_security=PskCredentials(b"a", KEY))
    with pytest.raises(ValueError, match="server's public key"):
        AccountSecurity(generate_p256_key())
