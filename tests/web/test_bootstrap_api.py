"""``/api/bootstrap`` against a live Bootstrap-Server beside a live LwM2M server, and
without one: provisioning a secure account installs it in the server's security store in
the same PUT, a device bootstraps over coaps:// and registers over DTLS with no other step,
conflicts are 409, and a refused bootstrap shows up in sessions, events, logs and metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from aiolwm2m.bootstrap.server import BootstrapServer, BootstrapServerConfig
from aiolwm2m.client import ClientConfig, LwM2MClient, RetryPolicy, TemperatureInstance
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Refused
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from ..transport.raw_peer import RawPeer
from .api_fixtures import TOKEN

FAST = TransmissionParameters(ack_timeout=0.2, ack_random_factor=1.0, max_retransmit=2,
                              response_timeout=3.0)
DM_KEY = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
BS_KEY = "a1a2a3a4a5a6a7a8a9aaabacadaeafb0"


def psk_config(identity: str = "dev-7", key: str = "00112233", uri: str = "coaps://[::1]:5684",
               **extra: Any) -> dict[str, Any]:
    return {"security": [{"instance_id": 1, "server_uri": uri, "security_mode": "psk",
                          "public_key_or_identity": f"text:{identity}", "secret_key": key,
                          "short_server_id": 1}],
            "servers": [{"instance_id": 0, "short_server_id": 1, "lifetime": 300,
                         "binding": "U"}], **extra}


CONFIG = psk_config()


@dataclass
class Api:
    server: LwM2MServer
    bs: BootstrapServer
    http: httpx.AsyncClient

    def dm_uri(self) -> str:
        return f"coaps://[::1]:{self.server.port_of('dtls')}"

    def bs_uri(self, scheme: str = "coaps") -> str:
        return f"{scheme}://[::1]:{self.bs.port_of('dtls' if scheme == 'coaps' else 'udp')}"


async def live(bs_config: BootstrapServerConfig) -> AsyncIterator[Api]:
    server = LwM2MServer(ServerConfig(host="::1", port=0, coaps_port=0, store="memory",
                                      run_timers=False))
    await server.start()
    bs = BootstrapServer(bs_config, server_security=server.stores.security,
                         refusal_sink=server.refusals)
    await bs.start()
    web = WebServer(create_app(server, [TOKEN], bs), "127.0.0.1", 0)
    await web.start()
    http = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=20)
    try:
        yield Api(server, bs, http)
    finally:
        await http.aclose()
        await web.stop()
        await bs.stop()
        await server.stop()


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    """The embedded set-up: coap:// and coaps:// bootstrap listeners."""
    async for a in live(BootstrapServerConfig(host="::1", port=0, coaps_port=0, store="memory",
                                              request_timeout=2.0, transmission=FAST)):
        yield a


@pytest.fixture
async def nosec_only() -> AsyncIterator[Api]:
    async for a in live(BootstrapServerConfig(host="::1", port=0, store="memory")):
        yield a


@pytest.fixture
async def without() -> AsyncIterator[httpx.AsyncClient]:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory"))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    http = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        yield http
    finally:
        await http.aclose()
        await web.stop()
        await server.stop()


async def test_crud(api: Api) -> None:
    c = api.http
    assert (await c.get("/api/bootstrap")).json() == []
    r = await c.put("/api/bootstrap/dev-7", json=CONFIG)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["endpoint"] == "dev-7"
    assert body["config"]["security"][0]["secret_key"] == "(hidden)"
    assert body["config"]["security"][0]["server_uri"] == "coaps://[::1]:5684"
    # The device's own bootstrap key is a secret too.
    with_creds = {**CONFIG, "bootstrap_credentials": {"psk_identity": "6465762d37",
                                                      "psk_key": "a1a2a3a4a5a6a7a8"}}
    r = await c.put("/api/bootstrap/dev-7", json=with_creds)
    assert r.status_code == 200, r.text
    assert r.json()["config"]["bootstrap_credentials"]["psk_key"] == "(hidden)"
    assert "a1a2a3a4" not in (await c.get("/api/bootstrap")).text
    listed = (await c.get("/api/bootstrap")).json()
    assert [i["endpoint"] for i in listed] == ["dev-7"]
    assert (await c.get("/api/bootstrap/dev-7")).json()["config"]["servers"][0]["lifetime"] == 300
    assert (await c.get("/api/bootstrap/dev-7/sessions")).json() == []
    r = await c.delete("/api/bootstrap/dev-7", params={"remove_credentials": "true"})
    assert r.status_code == 200 and r.json()["credentials"]["removed"] == "psk:dev-7"
    assert (await c.delete("/api/bootstrap/dev-7")).status_code == 404
    assert (await c.get("/api/bootstrap/dev-7")).status_code == 404


async def test_put_installs_the_account_and_delete_offers_to_remove_it(api: Api) -> None:
    c, security = api.http, api.server.stores.security
    r = await c.put("/api/bootstrap/dev-7", json=CONFIG)
    assert r.status_code == 200, r.text
    assert r.json()["credentials"] == {"installed": "psk:dev-7", "replaced": None,
                                       "removed": None, "kept": None, "note": None}
    assert security.get("dev-7") == SecurityInfo("dev-7", psk_identity=b"dev-7",
                                                  psk_key=bytes.fromhex("00112233"))
    # A new key for the same identity replaces the old one.
    r = await c.put("/api/bootstrap/dev-7", json=psk_config(key="44556677"))
    assert r.json()["credentials"]["replaced"] == "psk:dev-7"
    assert security.get("dev-7").psk_key == bytes.fromhex("44556677")  # type: ignore[union-attr]
    # By default the account stays, and the answer says so.
    r = await c.delete("/api/bootstrap/dev-7")
    assert r.status_code == 200, r.text
    creds = r.json()["credentials"]
    assert creds["kept"] == "psk:dev-7" and creds["removed"] is None
    assert "remove_credentials=true" in creds["note"]
    assert security.get("dev-7") is not None
    # Asked to, the removal takes the account along.
    await c.put("/api/bootstrap/dev-7", json=CONFIG)
    r = await c.delete("/api/bootstrap/dev-7?remove_credentials=true")
    assert r.json()["credentials"]["removed"] == "psk:dev-7"
    assert security.get("dev-7") is None
    # Credentials the configuration did not provision are not its to remove.
    await security.put(SecurityInfo("dev-8", psk_identity=b"by-hand", psk_key=b"k"))
    r = await c.put("/api/bootstrap/dev-8", json=psk_config("dev-8-dm"))
    assert r.json()["credentials"]["replaced"] == "psk:by-hand"
    nosec = {"security": [{"instance_id": 1, "server_uri": "coap://[::1]:5683",
                           "short_server_id": 1}],
             "servers": [{"instance_id": 0, "short_server_id": 1}]}
    r = await c.put("/api/bootstrap/dev-8", json=nosec)
    assert r.json()["credentials"]["kept"] == "psk:dev-8-dm"
    await security.put(SecurityInfo("dev-8", psk_identity=b"by-hand", psk_key=b"k"))
    r = await c.delete("/api/bootstrap/dev-8?remove_credentials=true")
    creds = r.json()["credentials"]
    assert creds["kept"] == "psk:by-hand" and "did not provision" in creds["note"]
    assert security.get("dev-8") is not None


async def test_conflicts_are_409_and_change_nothing(api: Api) -> None:
    c, security = api.http, api.server.stores.security
    await security.put(SecurityInfo("someone", psk_identity=b"dev-7", psk_key=b"k"))
    r = await c.put("/api/bootstrap/dev-7", json=CONFIG)
    assert r.status_code == 409, r.text
    assert "psk:dev-7 already belongs to endpoint 'someone'" in r.json()["detail"]
    assert (await c.get("/api/bootstrap/dev-7")).status_code == 404
    assert security.get("dev-7") is None
    # Bootstrap credentials of another endpoint.
    creds = {"bootstrap_credentials": {"psk_identity": "text:bs-1", "psk_key": BS_KEY}}
    assert (await c.put("/api/bootstrap/a", json=psk_config("a", **creds))).status_code == 200
    r = await c.put("/api/bootstrap/b", json=psk_config("b", **creds))
    assert r.status_code == 409 and "already belong to endpoint 'a'" in r.json()["detail"]
    assert security.get("b") is None
    # One set of credentials cannot belong to every endpoint.
    r = await c.put("/api/bootstrap/*", json=psk_config("anyone"))
    assert r.status_code == 409 and "default configuration" in r.json()["detail"]
    # Two different secure accounts: the server binds one identity per endpoint.
    two = psk_config("c-1")
    two["security"].append({**two["security"][0], "instance_id": 2, "short_server_id": 2,
                            "public_key_or_identity": "text:c-2"})
    two["servers"].append({"instance_id": 1, "short_server_id": 2})
    r = await c.put("/api/bootstrap/c", json=two)
    assert r.status_code == 409 and "2 different secure server accounts" in r.json()["detail"]
    # An account that cannot work is a bad request.
    broken = psk_config("d")
    broken["security"][0]["security_mode"] = "rpk"
    r = await c.put("/api/bootstrap/d", json=broken)
    assert r.status_code == 400 and "security instance 1 (RPK)" in r.json()["detail"]


async def test_bootstrap_credentials_without_a_secure_listener_are_409(
        nosec_only: Api, api: Api) -> None:
    with_creds = psk_config(bootstrap_credentials={"psk_identity": "text:bs-7",
                                                   "psk_key": BS_KEY})
    r = await nosec_only.http.put("/api/bootstrap/dev-7", json=with_creds)
    assert r.status_code == 409
    assert "need a secure bootstrap listener" in r.json()["detail"]
    assert (await nosec_only.http.get("/api/bootstrap/dev-7")).status_code == 404
    assert nosec_only.server.stores.security.get("dev-7") is None
    # A coaps:// listener without a key pair of our own cannot check an RPK either.
    rpk = psk_config(bootstrap_credentials={"rpk_public_key": (
        "3059301306072a8648ce3d020106082a8648ce3d03010703420004" + "11" * 64)})
    r = await api.http.put("/api/bootstrap/dev-7", json=rpk)
    assert r.status_code == 409 and "own raw public key" in r.json()["detail"]


async def test_provisioned_device_bootstraps_over_coaps_and_registers_over_dtls(
        api: Api) -> None:
    """One PUT and nothing else: the device authenticates to the Bootstrap-Server with its
    bootstrap PSK, receives its LwM2M server PSK, and the server accepts it."""
    config = psk_config("dev-e2e-dm", DM_KEY, api.dm_uri(), bootstrap_credentials={
        "psk_identity": "text:dev-e2e-bs", "psk_key": BS_KEY})
    r = await api.http.put("/api/bootstrap/dev-e2e", json=config)
    assert r.status_code == 200, r.text
    assert r.json()["credentials"]["installed"] == "psk:dev-e2e-dm"
    client = LwM2MClient(ClientConfig(
        "dev-e2e", bootstrap_uri=api.bs_uri("coaps"), host="::1", transmission=FAST,
        retry=RetryPolicy(initial=0.2, minimum=0.2, jitter=0.0),
        bootstrap_security=PskCredentials(b"dev-e2e-bs", bytes.fromhex(BS_KEY))),
        objects=[TemperatureInstance(0)])
    await client.start()
    try:
        await client.wait_registered(15)
        reg = api.server.registrations["dev-e2e"]
        assert (reg.transport, reg.identity) == ("dtls", "psk:dev-e2e-dm")
        sessions = (await api.http.get("/api/bootstrap/dev-e2e/sessions")).json()
        assert [s["state"] for s in sessions] == ["finished"]
        assert (await api.server.read("dev-e2e", "/3303/0/5700", timeout=5)).code == (
            Code.CONTENT)
    finally:
        await client.stop(deregister=False)


def bootstrap_request(endpoint: str, mid: int) -> Message:
    msg = Message.request(Code.POST, "/bs", query=[f"ep={endpoint}"], token=b"bq")
    msg.mid = mid
    return msg


async def test_a_refused_bootstrap_shows_up_everywhere(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    await api.http.put("/api/bootstrap/locked", json=psk_config(
        "locked-dm", bootstrap_credentials={"psk_identity": "text:locked-bs",
                                            "psk_key": BS_KEY}))
    events = api.server.events.stream()
    peer = await RawPeer.open("::1")
    try:
        with caplog.at_level(logging.WARNING):
            peer.send(bootstrap_request("locked", 1), ("::1", api.bs.port_of("udp")))
            reply = await peer.recv()
            peer.send(bootstrap_request("stranger", 2), ("::1", api.bs.port_of("udp")))
            unknown = await peer.recv()
    finally:
        peer.close()
    # The device learns what was wrong, not which identity would have done.
    assert reply.code == Code.FORBIDDEN
    assert reply.payload == b"this endpoint must bootstrap over a secure transport"
    assert unknown.code == Code.BAD_REQUEST and b"stranger" not in unknown.payload
    refused = await events.until(Refused, timeout=5)
    assert isinstance(refused, Refused)
    assert (refused.transport, refused.reason, refused.endpoint) == (
        "bootstrap", "bootstrap-nosec", "locked")
    assert "psk:locked-bs" in refused.detail
    assert any("locked" in r.getMessage() and "bootstrap-nosec" in r.getMessage()
               for r in caplog.records)
    sessions = (await api.http.get("/api/bootstrap/locked/sessions")).json()
    assert [(s["state"], s["reason"]) for s in sessions] == [("refused", "bootstrap-nosec")]
    assert sessions[0]["address"].startswith("[::1]:")
    sessions = (await api.http.get("/api/bootstrap/stranger/sessions")).json()
    assert [(s["state"], s["reason"]) for s in sessions] == [
        ("refused", "bootstrap-unknown-endpoint")]
    metrics = (await api.http.get("/metrics")).text
    assert 'lwm2m_refusals_total{reason="bootstrap-nosec"} 1.0' in metrics
    assert 'lwm2m_refusals_total{reason="bootstrap-unknown-endpoint"} 1.0' in metrics


async def test_without_bootstrap_server(without: httpx.AsyncClient) -> None:
    r = await without.get("/api/bootstrap")
    assert r.status_code == 404 and "no bootstrap server" in r.json()["detail"]
