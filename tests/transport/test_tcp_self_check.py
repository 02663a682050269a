"""The start-up self-check: every listener is asked over loopback whether it really answers
(coap+tcp: CSM for CSM; coaps+tcp: a TLS record for a ClientHello; UDP: Reset for a ping;
DTLS: HelloVerifyRequest for a ClientHello), and a listener that does not fails start()."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from aiolwm2m.security import InMemoryCredentialLookup, ServerCredentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.transport.dtls import DtlsEndpoint
from aiolwm2m.transport.listener_probe import (
    ListenerCheckFailed,
    check_listeners,
    loopback_for,
)
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tls import TlsServerSecurity
from aiolwm2m.transport.udp import UdpEndpoint

LOOKUP = InMemoryCredentialLookup(psk={b"id": b"0123456789abcdef"})


async def test_every_kind_of_listener_answers_and_keeps_no_trace() -> None:
    endpoints: dict[str, object] = {
        "udp": await UdpEndpoint.create("::", 0),
        "dtls": await DtlsEndpoint.create("::", 0, server_credentials=ServerCredentials(LOOKUP)),
        "tcp": await TcpEndpoint.create("::", 0, dial=False),
        "tls": await TcpEndpoint.create("0.0.0.0", 0, dial=False,
                                        tls_server=TlsServerSecurity(ServerCredentials(LOOKUP))),
    }
    events: list[object] = []
    try:
        for name in ("tcp", "tls"):
            endpoint = endpoints[name]
            assert isinstance(endpoint, TcpEndpoint)
            endpoint.events.subscribe(events.append)
        started = time.perf_counter()
        await check_listeners(endpoints)
        assert time.perf_counter() - started < 3.0  # milliseconds, when the machine is idle
        await asyncio.sleep(0.1)
        assert events == []
        for name in ("tcp", "tls"):
            endpoint = endpoints[name]
            assert isinstance(endpoint, TcpEndpoint)
            assert endpoint.quota.total == 0 and endpoint.connections() == []
    finally:
        for endpoint in endpoints.values():
            await endpoint.close()  # type: ignore[attr-defined]


async def test_a_listener_that_resets_connections_is_named() -> None:
    security = TlsServerSecurity(ServerCredentials(LOOKUP))
    endpoint = await TcpEndpoint.create("127.0.0.1", 0, dial=False, tls_server=security)
    security.close()  # every accepted connection now fails before TLS starts
    try:
        with pytest.raises(ListenerCheckFailed) as failed:
            await check_listeners({"tls": endpoint}, timeout=5.0)
        message = str(failed.value)
        assert message.startswith(f"the coaps+tcp listener 'tls' on 127.0.0.1:{endpoint.port} "
                                  "does not work: ")
    finally:
        endpoint.tls_server = None  # already closed
        await endpoint.close()


async def test_the_server_checks_its_listeners_at_start(tmp_path: Path) -> None:
    for check in (True, False):
        server = LwM2MServer(ServerConfig(host="::", port=0, coaps_port=0, tcp_port=0,
                                          tls_port=0, store="memory", data_dir=tmp_path,
                                          run_timers=False, check_listeners=check))
        await server.start()
        try:
            dtls = server.transports["dtls"]
            assert isinstance(dtls, DtlsEndpoint) and dtls.dtls_server is not None
            # The DTLS probe is the one that leaves a trace: one HelloVerifyRequest.
            assert dtls.dtls_server.stats.hello_verify_requests == int(check)
            assert server.refusals.by_reason == {}
        finally:
            await server.stop()


def test_wildcards_are_reached_over_loopback() -> None:
    assert loopback_for("::") == ["::1", "127.0.0.1"]
    assert loopback_for("0.0.0.0") == ["127.0.0.1"]
    assert loopback_for("192.0.2.7") == ["192.0.2.7"]
