"""Exhausting the server through coap+tcp and coaps+tcp: connections that send a CSM and then
nothing, a frame that never completes, TLS handshakes that never finish, one address taking
every slot, and the process running out of descriptors. Real sockets on loopback against a
real LwM2MServer (limits shortened to a second), on asyncio and on uvloop. Meanwhile a
registered device keeps its connection and a new device can still register."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.tcp_connection import TcpParameters
from aiolwm2m.coap.tcp_framing import encode_tcp
from aiolwm2m.lwm2m import ContentFormat
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Refused
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.transport.site import RenderResult, Resource, Site
from aiolwm2m.transport.stream_limits import StreamLimits
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tls import TlsClientSecurity
from tests.transport.raw_stream import RawStream

LINKS = b'</>;rt="oma.lwm2m",</1>;ver=1.1,</1/0>,</3/0>'
KEY = b"0123456789abcdef"
LIMITS = StreamLimits(unbound_idle_timeout=1.0, handshake_timeout=1.0,
                      max_connections_per_address=250)


class Battery(Resource):
    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, b"90", ContentFormat.TEXT)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def started(tmp_path: Path, limits: StreamLimits = LIMITS) -> LwM2MServer:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, tcp_port=0, tls_port=0,
                                   store="memory", data_dir=tmp_path, run_timers=False,
                                   tcp_limits=limits,
                                   tcp_parameters=TcpParameters(frame_timeout=1.0)))
    await srv.start()
    await srv.stores.security.put(SecurityInfo("tls-dev", psk_identity=b"tls-dev",
                                               psk_key=KEY))
    return srv


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    srv = await started(tmp_path)
    yield srv
    await srv.stop()


class Device:
    """A device on its own TcpEndpoint that registers and answers Reads of /3/0/9."""

    def __init__(self, name: str, endpoint: TcpEndpoint) -> None:
        self.name = name
        self.endpoint = endpoint

    @classmethod
    async def register(cls, name: str, port: int, tls: bool = False) -> Device:
        site = Site()
        site.add("3/0/9", Battery())
        security = TlsClientSecurity(PskCredentials(name.encode(), KEY)) if tls else None
        endpoint = await TcpEndpoint.create(listen=False, site=site, tls_client=security)
        request = Message.request(Code.POST, "/rd", payload=LINKS, content_format=40,
                                  query=[f"ep={name}", "lt=600", "lwm2m=1.1", "b=T"])
        response = await endpoint.request(request, ("127.0.0.1", port), timeout=10)
        assert response.code == Code.CREATED
        return cls(name, endpoint)

    @property
    def local_port(self) -> int:
        link = self.endpoint.connections()[0].link
        assert link is not None and link.transport is not None
        port: int = link.transport.get_extra_info("sockname")[1]
        return port

    async def readable(self, server: LwM2MServer) -> bool:
        read = await server.read(self.name, "/3/0/9", format=ContentFormat.TEXT, timeout=5)
        return read.code == Code.CONTENT

    async def close(self) -> None:
        await self.endpoint.close()


async def eventually(predicate: object, timeout: float = 8.0) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_csm_then_nothing_is_closed_while_registered_devices_stay(
        server: LwM2MServer) -> None:
    port = server.port_of("tcp")
    tcp = server.transports["tcp"]
    assert isinstance(tcp, TcpEndpoint)
    device = await Device.register("dev-1", port)
    connection_before = device.local_port
    baseline = open_fds()
    attackers = [await RawStream.open(port) for _ in range(200)]
    for raw in attackers:
        await raw.recv_until(Code.CSM)
    assert open_fds() >= baseline + 400  # both ends of every connection are ours
    newcomer = await Device.register("dev-2", port)  # a new device gets in meanwhile
    # Every attacker is told to go (Release) and closed; nobody else is.
    for raw in attackers:
        assert (await raw.recv(8.0)).code == Code.RELEASE
        assert await raw.closed_by_server(8.0)
        raw.close()
    await eventually(lambda: tcp.quota.total == 2)
    await asyncio.sleep(1.5)  # well past the idle timeout: the devices are silent
    assert tcp.quota.total == 2
    assert await device.readable(server) and device.local_port == connection_before
    assert await newcomer.readable(server)
    await eventually(lambda: open_fds() <= baseline + 10)
    await device.close()
    await newcomer.close()


async def test_a_frame_that_never_completes_is_dropped(server: LwM2MServer) -> None:
    port = server.port_of("tcp")
    tcp = server.transports["tcp"]
    assert isinstance(tcp, TcpEndpoint)
    frame = encode_tcp(Message.request(Code.POST, "/rd", payload=b"x" * 65_000, token=b"t"))
    slow = [await RawStream.open(port) for _ in range(10)]
    for raw in slow:
        await raw.recv_until(Code.CSM)
        raw.send(frame[:60_000])  # 60 KB of a 65 KB frame, then silence
    device = await Device.register("dev-1", port)
    for raw in slow:
        abort = await raw.recv_until(Code.ABORT, 8.0)
        assert b"frame not completed within 1s" in abort.payload
        assert await raw.closed_by_server(8.0)
        raw.close()
    await eventually(lambda: tcp.quota.total == 1)
    assert await device.readable(server)
    await device.close()


async def test_tls_handshakes_that_never_finish_are_dropped(server: LwM2MServer) -> None:
    port = server.port_of("tls")
    tls = server.transports["tls"]
    assert isinstance(tls, TcpEndpoint)
    silent = [await RawStream.open(port, csm=False) for _ in range(30)]
    for raw in silent[::2]:
        raw.send(b"\x16\x03\x01\x01\x00\x01")  # a ClientHello that never comes
    device = await Device.register("tls-dev", port, tls=True)
    for raw in silent:
        with pytest.raises((EOFError, ConnectionError)):
            await raw.recv(8.0)
        raw.close()
    await eventually(lambda: tls.quota.total == 1)
    assert await device.readable(server)
    await device.close()


async def test_one_address_cannot_take_every_slot(tmp_path: Path) -> None:
    server = await started(tmp_path, StreamLimits(max_connections_per_address=20))
    try:
        await one_address_cannot_take_every_slot(server)
    finally:
        await server.stop()


async def one_address_cannot_take_every_slot(server: LwM2MServer) -> None:
    port = server.port_of("tcp")
    tcp = server.transports["tcp"]
    assert isinstance(tcp, TcpEndpoint)
    events = server.events.stream()
    held = [await RawStream.open(port) for _ in range(20)]
    for raw in held:
        await raw.recv_until(Code.CSM)
    extra = await RawStream.open(port)
    with pytest.raises((EOFError, ConnectionError, TimeoutError)):
        await extra.recv(3.0)  # closed at once, no CSM
    extra.close()
    assert server.refusals.by_reason["tcp-address-limit"] == 1
    refused = await events.next(5)
    while not isinstance(refused, Refused):
        refused = await events.next(5)
    assert refused.reason == "tcp-address-limit" and refused.transport == "tcp"
    assert refused.peer is not None and refused.peer.startswith("127.0.0.1:")
    # Another address still gets in, and registers.
    other = await RawStream.open(port, source="127.0.0.2")
    assert (await other.recv_until(Code.CSM)).code == Code.CSM
    other.close()
    for raw in held:
        raw.close()
    await eventually(lambda: tcp.quota.total == 0)
    device = await Device.register("dev-1", port)
    assert await device.readable(server)
    await device.close()


EMFILE_SERVER = Path(__file__).with_name("descriptor_starved_server.py")


async def test_running_out_of_descriptors_logs_little_and_recovers(
        event_loop_name: str) -> None:
    """The server process may open only a few descriptors more than it has: a flood of
    connections makes accept() fail with EMFILE. The log gets a line per interval, not a
    traceback per attempt, and accepting resumes once descriptors are free."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EMFILE_SERVER), event_loop_name, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        cwd=Path(__file__).parents[2])
    assert proc.stdin is not None and proc.stdout is not None
    try:
        first = await asyncio.wait_for(proc.stdout.readline(), 15)
        port = json.loads(first)["port"]
        flood = []
        for _ in range(120):
            try:
                flood.append(await RawStream.open(port))
            except ConnectionError:
                pass
        await asyncio.sleep(2.5)  # asyncio retries accept() every second
        for raw in flood:
            raw.close()
        # Descriptors are free again: a new connection is served.
        fresh = None
        async with asyncio.timeout(10):
            while fresh is None:
                try:
                    raw = await RawStream.open(port)
                    await raw.recv_until(Code.CSM, 2.0)
                    fresh = raw
                except (EOFError, ConnectionError, TimeoutError):
                    await asyncio.sleep(0.2)
        fresh.close()
        proc.stdin.write(b"report\n")
        report = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    assert report["served"] >= 1
    assert report["tracebacks"] == 0, report
    assert report["accept_lines"] <= 2, report
