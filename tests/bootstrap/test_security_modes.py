"""Bootstrap with credentials, end to end over loopback: our client bootstraps (over coap://,
coaps://, coap+tcp:// or coaps+tcp://), receives a Security instance with credentials that
were also put into the LwM2M server's security store, and registers with them; and the
Bootstrap-Server refuses clients that do not authenticate as their endpoint must."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.bootstrap import (
    AccountCredentials,
    BootstrapCredentials,
    BootstrapRefused,
    BootstrapServer,
    BootstrapServerConfig,
    EndpointConfig,
    SecurityConfig,
    ServerAccountConfig,
    SessionFailed,
    SessionFinished,
)
from aiolwm2m.client import (
    AccountSecurity,
    BootstrapFailed,
    ClientConfig,
    LwM2MClient,
    RetryPolicy,
    TemperatureInstance,
)
from aiolwm2m.client.instance import Instance
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.security.credentials import (
    CertificateUsage,
    PskCredentials,
    RpkCredentials,
    X509Credentials,
    generate_p256_key,
)
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.store.records import SecurityInfo

from ..security.pki import Pki, make_pki

FAST = TransmissionParameters(ack_timeout=0.2, ack_random_factor=1.0, max_retransmit=2,
                              response_timeout=3.0)
QUICK_RETRY = RetryPolicy(initial=0.2, minimum=0.2, jitter=0.0)
BS_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
SERVER_KEY = generate_p256_key()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture
async def server(pki: Pki) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(
        host="::1", port=0, coaps_port=0, tcp_port=0, tls_port=0, store="memory",
        run_timers=False, dtls_rpk=SERVER_KEY,
        dtls_x509=pki.server_x509()))
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def bs() -> AsyncIterator[BootstrapServer]:
    server = BootstrapServer(BootstrapServerConfig(
        host="::1", port=0, coaps_port=0, tcp_port=0, tls_port=0, store="memory",
        request_timeout=2.0, transmission=FAST))
    await server.start()
    yield server
    await server.stop()


def url(scheme: str, port: int) -> str:
    return f"{scheme}://[::1]:{port}"


def server_uri(server: LwM2MServer, scheme: str) -> str:
    return url(scheme, server.port_of({"coaps": "dtls", "coap+tcp": "tcp",
                                       "coaps+tcp": "tls", "coap": "udp"}[scheme]))


def bs_uri(bs: BootstrapServer, scheme: str) -> str:
    return url(scheme, bs.port_of({"coap": "udp", "coaps": "dtls", "coap+tcp": "tcp",
                                   "coaps+tcp": "tls"}[scheme]))


@pytest.fixture
async def clients() -> AsyncIterator[list[LwM2MClient]]:
    started: list[LwM2MClient] = []
    yield started
    for c in started:
        await c.stop(deregister=False)


async def bootstrap_client(clients: list[LwM2MClient], endpoint: str, uri: str,
                           security: Any = None, **kwargs: Any) -> LwM2MClient:
    config = ClientConfig(endpoint, bootstrap_uri=uri, bootstrap_security=security,
                          host="::1", transmission=FAST, retry=QUICK_RETRY, **kwargs)
    client = LwM2MClient(config, objects=[TemperatureInstance(0)])
    await client.start()
    clients.append(client)
    return client


def account_of(client: LwM2MClient) -> Instance:
    return next(i for i in client.tree.instances(0) if not i.get(1))


async def test_nosec_bootstrap_onto_coaps_with_a_fresh_psk(
        server: LwM2MServer, bs: BootstrapServer, clients: list[LwM2MClient]) -> None:
    accounts = [await bs.provision(ep, server_uri(server, "coaps"),
                                   server_security=server.stores.security)
                for ep in ("dev-a", "dev-b")]
    first = accounts[0]
    assert (first.mode, first.public_key_or_identity, len(first.secret_key)) == (
        0, b"dev-a", 16)
    assert accounts[1].secret_key != first.secret_key  # one key per device
    stored = server.stores.security.get("dev-a")
    assert stored is not None and stored.psk_key == first.secret_key
    client = await bootstrap_client(clients, "dev-a", bs_uri(bs, "coap"))
    await client.wait_registered(10)
    sec = account_of(client)
    assert (sec.get(0), sec.get(2), sec.get(3), sec.get(5)) == (
        server_uri(server, "coaps"), 0, b"dev-a", first.secret_key)
    reg = server.registrations["dev-a"]
    assert (reg.transport, reg.identity) == ("dtls", "psk:dev-a")
    assert (await server.read("dev-a", "/3303/0/5700", timeout=5)).code == Code.CONTENT


async def test_coaps_bootstrap_with_psk_onto_rpk(
        server: LwM2MServer, bs: BootstrapServer, clients: list[LwM2MClient]) -> None:
    account = await bs.provision(
        "dev-r", server_uri(server, "coaps"), server_security=server.stores.security,
        mode="rpk", server_public_key=SERVER_KEY.public_key_der,
        bootstrap_credentials=BootstrapCredentials.psk("dev-r-bs", BS_KEY))
    assert account.mode == 1 and account.server_public_key == SERVER_KEY.public_key_der
    events = bs.events.stream()
    client = await bootstrap_client(clients, "dev-r", bs_uri(bs, "coaps"),
                                    PskCredentials(b"dev-r-bs", BS_KEY))
    await client.wait_registered(10)
    assert isinstance(await events.until(SessionFinished), SessionFinished)
    reg = server.registrations["dev-r"]
    assert reg.transport == "dtls"
    assert reg.identity == "rpk:" + hashlib.sha256(account.public_key_or_identity).hexdigest()
    sec = account_of(client)
    assert sec.get(2) == 1 and sec.get(4) == SERVER_KEY.public_key_der
    assert RpkCredentials(sec.get(5)).public_key_der == sec.get(3)
    # The bootstrap account survived the Bootstrap-Delete of /0, credentials and all.
    bs_account = next(i for i in client.tree.instances(0) if i.get(1))
    assert (bs_account.get(2), bs_account.get(3)) == (0, b"dev-r-bs")


@pytest.mark.parametrize(("bs_scheme", "server_scheme"), [("coap+tcp", "coap+tcp"),
                                                           ("coaps+tcp", "coaps+tcp"),
                                                           ("coaps+tcp", "coaps")])
async def test_bootstrap_over_tcp(server: LwM2MServer, bs: BootstrapServer,
                                  clients: list[LwM2MClient], bs_scheme: str,
                                  server_scheme: str) -> None:
    secure_bs = bs_scheme == "coaps+tcp"
    await bs.provision("dev-t", server_uri(server, server_scheme),
                       server_security=server.stores.security,
                       bootstrap_credentials=BootstrapCredentials.psk("dev-t-bs", BS_KEY)
                       if secure_bs else None)
    client = await bootstrap_client(clients, "dev-t", bs_uri(bs, bs_scheme),
                                    PskCredentials(b"dev-t-bs", BS_KEY) if secure_bs else None)
    await client.wait_registered(10)
    sessions = await bs.sessions("dev-t")
    assert [s.state for s in sessions] == ["finished"]
    reg = server.registrations["dev-t"]
    transport = {"coap+tcp": "tcp", "coaps+tcp": "tls", "coaps": "dtls"}[server_scheme]
    assert reg.transport == transport
    assert reg.binding == ("T" if server_scheme.endswith("+tcp") else "U")
    assert reg.identity == (None if server_scheme == "coap+tcp" else "psk:dev-t")
    assert (await server.read("dev-t", "/3/0/2", timeout=5)).code == Code.CONTENT


async def test_x509_account(server: LwM2MServer, bs: BootstrapServer, pki: Pki,
                            clients: list[LwM2MClient]) -> None:
    account = AccountCredentials.x509(pki.read("client1_chain.pem"), pki.read("client1.key"),
                                      pki.read("root.pem"), CertificateUsage.CA_CONSTRAINT,
                                      sni="localhost")
    await bs.provision("dev-x", server_uri(server, "coaps"), credentials=account,
                       server_security=server.stores.security)
    stored = server.stores.security.get("dev-x")
    assert stored is not None and stored.x509_identity == "client1"
    client = await bootstrap_client(clients, "dev-x", bs_uri(bs, "coap"))
    await client.wait_registered(10)
    assert server.registrations["dev-x"].identity == "x509:client1"
    assert account_of(client).get(15) == 0


async def test_bootstrap_refuses_the_wrong_identity(bs: BootstrapServer,
                                                    clients: list[LwM2MClient]) -> None:
    config = EndpointConfig.for_server("coap://[::1]:9")
    await bs.set_config("locked", EndpointConfig(
        config.security, config.servers,
        bootstrap_credentials=BootstrapCredentials.psk("locked-id", BS_KEY)))
    await bs.set_config("other", EndpointConfig(
        config.security, config.servers,
        bootstrap_credentials=BootstrapCredentials.psk("other-id", BS_KEY)))
    events = bs.events.stream()
    cases = [
        # NoSec for an endpoint that has bootstrap credentials.
        (bs_uri(bs, "coap"), None, "must bootstrap over a secure transport",
         "bootstrap-nosec"),
        # Another endpoint's valid credentials.
        (bs_uri(bs, "coaps"), PskCredentials(b"other-id", BS_KEY), "may not bootstrap",
         "bootstrap-wrong-identity"),
        (bs_uri(bs, "coaps+tcp"), PskCredentials(b"other-id", BS_KEY), "may not bootstrap",
         "bootstrap-wrong-identity"),
    ]
    for uri, security, reply, reason in cases:
        client = await bootstrap_client(clients, "locked", uri, security)
        failed = await client.events.stream().until(BootstrapFailed, timeout=10)
        assert isinstance(failed, BootstrapFailed)
        assert "4.03" in failed.reason and reply in failed.reason, failed.reason
        # The device is not told which identity would have worked.
        assert "locked-id" not in failed.reason and "other-id" not in failed.reason
        refused = await events.until(BootstrapRefused, timeout=5)
        assert isinstance(refused, BootstrapRefused)
        assert (refused.endpoint, refused.reason) == ("locked", reason)
        assert "psk:locked-id" in refused.detail  # the operator is
        await client.stop(deregister=False)
    # An identity nobody configured does not get through the handshake at all.
    client = await bootstrap_client(clients, "locked", bs_uri(bs, "coaps+tcp"),
                                    PskCredentials(b"nobody", BS_KEY))
    failed = await client.events.stream().until(BootstrapFailed, timeout=10)
    assert isinstance(failed, BootstrapFailed) and "4.03" not in failed.reason
    refused = await events.until(BootstrapRefused, timeout=5)
    assert isinstance(refused, BootstrapRefused)
    assert (refused.endpoint, refused.reason) == (None, "bootstrap-unknown-credentials")
    assert "nobody" in refused.detail
    # One record per endpoint and reason within the record interval (10 s): the second
    # wrong identity is counted, not recorded.
    await asyncio.sleep(0)
    sessions = await bs.sessions("locked")
    assert [(s.state, s.reason) for s in sessions] == [
        ("refused", "bootstrap-nosec"), ("refused", "bootstrap-wrong-identity")]
    assert "psk:other-id" in (sessions[1].error or "")
    assert bs.refusals.by_reason == {"bootstrap-nosec": 1, "bootstrap-wrong-identity": 2,
                                     "bootstrap-unknown-credentials": 1}


async def test_dm_server_credentials_do_not_lock_nosec_bootstrap(
        server: LwM2MServer, clients: list[LwM2MClient]) -> None:
    """The catch-22 of issue 13.3: the endpoint's credentials for the LwM2M server are in
    its security store, and the Bootstrap-Server must not take them for bootstrap
    credentials (it did: NoSec bootstrap then got 4.03 "must bootstrap as psk:...")."""
    await server.stores.security.put(SecurityInfo("dev-s", psk_identity=b"dev-s",
                                                  psk_key=BS_KEY))
    bs = BootstrapServer(BootstrapServerConfig(host="::1", port=0, store="memory",
                                               transmission=FAST),
                         server_security=server.stores.security)
    await bs.start()
    try:
        assert bs.bootstrap_identity("dev-s") is None
        change = await bs.set_config("dev-s", EndpointConfig.for_server(
            server_uri(server, "coaps"), security=server.stores.security.get("dev-s")))
        assert change.installed == server.stores.security.get("dev-s")
        assert change.replaced is None
        client = await bootstrap_client(clients, "dev-s", bs_uri(bs, "coap"))
        await client.wait_registered(10)
        assert server.registrations["dev-s"].identity == "psk:dev-s"
    finally:
        await bs.stop()


async def test_est_account_is_refused_at_finish(bs: BootstrapServer,
                                                clients: list[LwM2MClient]) -> None:
    await bs.set_config("est", EndpointConfig(
        (SecurityConfig(1, "coaps://[::1]:5684", security_mode=4, short_server_id=1),),
        (ServerAccountConfig(0, 1),)))
    events = bs.events.stream()
    await bootstrap_client(clients, "est", bs_uri(bs, "coap"))
    failed = await events.until(SessionFailed)
    assert isinstance(failed, SessionFailed)
    assert "4.06" in failed.reason and "Certificate with EST" in failed.reason


async def test_client_bootstrap_account_credentials_in_the_security_object() -> None:
    pair = generate_p256_key()
    config = ClientConfig("c", bootstrap_uri="coaps://[::1]:5684",
                          bootstrap_security=AccountSecurity(
                              pair, server_public_key=SERVER_KEY.public_key_pem, sni="bs"))
    client = LwM2MClient(config)
    sec = client.tree.instances(0)[0]
    assert (sec.get(1), sec.get(2), sec.get(3), sec.get(5), sec.get(14)) == (
        True, 1, pair.public_key_der, pair.private_key_der, "bs")
    assert sec.get(4) == SERVER_KEY.public_key_der  # PEM given, DER stored


@pytest.mark.parametrize("mode", ["rpk", "x509"])
async def test_bootstrap_authenticated_by_rpk_or_certificate(
        server: LwM2MServer, pki: Pki, clients: list[LwM2MClient], mode: str) -> None:
    bs_key = generate_p256_key()
    bs = BootstrapServer(BootstrapServerConfig(
        host="::1", port=None, coaps_port=0, store="memory", transmission=FAST,
        dtls_rpk=bs_key,
        dtls_x509=pki.server_x509()))
    await bs.start()
    try:
        device_key = generate_p256_key()
        security: AccountSecurity
        if mode == "rpk":
            creds = BootstrapCredentials.rpk(device_key.public_key_der)
            security = AccountSecurity(device_key, server_public_key=bs_key.public_key_der)
        else:
            creds = BootstrapCredentials.x509("client1")
            security = AccountSecurity(X509Credentials(
                pki.read("client1_chain.pem"), pki.read("client1.key"), pki.read("root.pem"),
                CertificateUsage.CA_CONSTRAINT), sni="localhost")
        await bs.provision("dev-m", server_uri(server, "coaps"),
                           server_security=server.stores.security,
                           bootstrap_credentials=creds)
        client = await bootstrap_client(clients, "dev-m", bs_uri(bs, "coaps"), security)
        await client.wait_registered(10)
        assert server.registrations["dev-m"].identity == "psk:dev-m"
        sessions = await bs.sessions("dev-m")
        assert [s.state for s in sessions] == ["finished"]
    finally:
        await bs.stop()
