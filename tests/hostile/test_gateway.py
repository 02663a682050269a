"""Gateways that lie in /25, and clients that pose as end devices: refused one by one,
nothing half-created, and the server keeps serving everyone else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.client import ClientConfig, LwM2MClient, TemperatureInstance
from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.gateway import CoapNodeDevice, EndDeviceName, LwM2MGateway, TreeEndDevice
from aiolwm2m.gateway.object25 import GatewayInstance
from aiolwm2m.lwm2m import LwM2MPath
from aiolwm2m.lwm2m.operations import ReadRequest
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import QueuedRequestFinished, Refused
from aiolwm2m.store.records import DONE, QueuedRequest
from tests.fake_clock import FakeClock

FAST = TransmissionParameters(ack_timeout=0.2, ack_random_factor=1.0, max_retransmit=2,
                              response_timeout=3.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def server(tmp_path: Path, clock: FakeClock) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", data_dir=tmp_path,
                                   run_timers=False, clock=clock, awake_time=30.0,
                                   max_end_devices_per_gateway=5))
    await srv.start()
    yield srv
    await srv.stop()


def _config(port: int, endpoint: str, **kwargs: object) -> ClientConfig:
    return ClientConfig.development(endpoint, f"coap://[::1]:{port}", host="::1",
                                    transmission=FAST, **kwargs)  # type: ignore[arg-type]


async def _settle(server: LwM2MServer, count: int) -> None:
    async with asyncio.timeout(5):
        while len(server.end_devices) < count:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)


async def test_a_lying_gateway_gets_its_bad_instances_refused(server: LwM2MServer) -> None:
    """A plain client filling /25 by hand, as a broken or hostile gateway would."""
    links = "</3303>;ver=1.1,</3303/0>"
    rows = [
        ("urn:a", "3303", links),          # digits only: it would read as an object id
        ("urn:b", "a b", links),           # a space
        ("urn:c", "x" * 65, links),        # too long
        ("urn:d", "good", links),
        ("urn:e", "good", links),          # duplicate prefix
        ("", "empty-id", links),           # no device id
        ("urn:g", "badlinks", "</3303/0"),  # link list that does not parse
        ("urn:h", "dev9", "</dev9/3303/0>"),  # links written with the prefix: taken
    ]
    instances = [GatewayInstance(i, device_id=d, prefix=p, iot_device_objects=x)
                 for i, (d, p, x) in enumerate(rows)]
    client = LwM2MClient(_config(server.port, "liar"),
                         objects=[*instances, TemperatureInstance(0)])
    refused: list[Refused] = []
    server.events.subscribe(lambda e: refused.append(e) if isinstance(e, Refused) else None)
    await client.start()
    try:
        await client.wait_registered(5)
        await _settle(server, 2)
        assert sorted(r.prefix for r in server.end_devices) == ["dev9", "good"]
        good = next(r for r in server.end_devices if r.prefix == "good")
        assert good.device_id == "urn:d" and good.instance_id == 3
        reasons = server.refusals.by_reason
        assert reasons["gateway-bad-prefix"] == 3
        assert reasons["gateway-duplicate-prefix"] == 1
        assert reasons["gateway-bad-device-id"] == 1
        assert reasons["gateway-bad-device-objects"] == 1
        assert {e.endpoint for e in refused} == {"liar"}
        assert any("clashes with an object id" in e.detail for e in refused)
        # The gateway keeps its registration and serves its own objects.
        assert (await server.read("liar", "/3303/0/5700")).code == Code.CONTENT
    finally:
        await client.stop(deregister=False)


async def test_too_many_end_devices_are_refused_beyond_the_limit(server: LwM2MServer) -> None:
    devices = [TreeEndDevice(f"d{i}", [TemperatureInstance(0)]) for i in range(8)]
    gateway = LwM2MGateway(_config(server.port, "big"), end_devices=devices)
    await gateway.start()
    try:
        await gateway.wait_registered(5)
        await _settle(server, 5)
        assert len(server.end_devices) == 5
        assert server.refusals.by_reason["gateway-too-many-end-devices"] == 3
    finally:
        await gateway.stop(deregister=False)


async def test_a_client_named_like_an_end_device_gets_none_of_its_requests(
        server: LwM2MServer, clock: FakeClock) -> None:
    """An ordinary client registering the text "gw/dev0" neither receives requests for end
    device dev0 of gateway gw, nor its queued ones, nor shadows it."""
    gateway = LwM2MGateway(_config(server.port, "gw", queue_mode=True),
                           end_devices=[TreeEndDevice("dev0", [TemperatureInstance(
                               0, sensor_value=1.0)])])
    poser = LwM2MClient(_config(server.port, "gw/dev0", queue_mode=True),
                        objects=[TemperatureInstance(0, sensor_value=666.0)])
    await gateway.start()
    await poser.start()
    try:
        await gateway.wait_registered(5)
        await poser.wait_registered(5)
        await _settle(server, 1)
        end_device = EndDeviceName("gw", "dev0")
        assert (await server.read(end_device, "/3303/0/5700")).content.value == 1.0
        assert (await server.read("gw/dev0", "/3303/0/5700")).content.value == 666.0
        # The gateway sleeps (queue mode): a request for its end device is queued...
        clock.advance(31)
        await server.tick()
        queued = await server.submit(end_device, ReadRequest(LwM2MPath(3303, 0, 5700)))
        assert isinstance(queued, QueuedRequest)
        # ...the poser speaks (an Update wakes it): it gets none of it.
        events = server.events.stream()
        await poser.wake()
        poser.sessions[1].request_update()
        await asyncio.sleep(0.3)
        assert (await server.queued_request(queued.id)).state == "pending"  # type: ignore
        # The gateway wakes: its end device's request is sent, to the end device.
        gateway.sessions[1].request_update()
        async with asyncio.timeout(5):
            while True:
                ev = await events.next()
                if isinstance(ev, QueuedRequestFinished) and ev.request.id == queued.id:
                    break
        assert ev.request.state == DONE
        assert ev.request.result["senml"][0]["v"] == 1.0  # type: ignore[index]
    finally:
        await poser.stop(deregister=False)
        await gateway.stop(deregister=False)


class _RawNode(asyncio.DatagramProtocol):
    """A CoAP node written byte by byte: it answers the gateway's Observe, then sends
    whatever notifications the test tells it to (NON, the observation's token)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.observer: tuple[object, bytes] | None = None
        self.observed = asyncio.get_running_loop().create_future()
        self.seq = 2

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = decode_udp(data)
        if request.code != Code.GET or self.transport is None:
            return
        reply = request.response(Code.CONTENT, b"21.5", 0)
        reply.mid = request.mid
        reply.observe = 1
        self.transport.sendto(encode_udp(reply), addr)
        self.observer = (addr, request.token)
        if not self.observed.done():
            self.observed.set_result(None)

    def notify(self, payload: bytes, content_format: int | None) -> None:
        assert self.transport is not None and self.observer is not None
        addr, token = self.observer
        note = Message(MessageType.NON, Code.CONTENT, self.seq, token, [], payload)
        if content_format is not None:
            note.content_format = content_format
        note.observe = self.seq
        self.seq += 1
        self.transport.sendto(encode_udp(note), addr)


async def test_a_node_sending_garbage_is_ignored_value_by_value(server: LwM2MServer) -> None:
    """Oversized values, text that is no number, CBOR that does not decode, formats the
    gateway does not take, an error code: each is dropped (throttled log), the last good
    value stays, and the gateway keeps answering the server."""
    loop = asyncio.get_running_loop()
    transport, raw = await loop.create_datagram_endpoint(_RawNode, local_addr=("::1", 0))
    port = transport.get_extra_info("sockname")[1]
    node = CoapNodeDevice("raw", ("::1", port), {"/3303/0/5700": "/t"}, timeout=3.0)
    gateway = LwM2MGateway(_config(server.port, "gw-raw"), end_devices=[node])
    await gateway.start()
    try:
        await asyncio.wait_for(raw.observed, 5)
        await _settle(server, 1)
        sensor = node.tree.get(3303, 0)
        assert sensor is not None and sensor.get(5700) == 21.5
        taken: list[object] = []
        node.tree.value_listeners.append(lambda path: taken.append(sensor.get(5700)))
        for payload, fmt in ((b"9" * 2000, 0), (b"warm", 0), (b"\xff\x00", 60),
                             (b"<html/>", 41), (b"", None)):
            raw.notify(payload, fmt)
        raw.notify(b"22.25", 0)
        async with asyncio.timeout(5):
            while sensor.get(5700) != 22.25:
                await asyncio.sleep(0.01)
        assert taken == [22.25]  # nothing of the garbage reached the tree
        read = await server.read(EndDeviceName("gw-raw", "raw"), "/3303/0/5700")
        assert read.code == Code.CONTENT and read.content.value == 22.25
    finally:
        await gateway.stop(deregister=False)
        transport.close()
