"""Firmware Update (object 5) with a 100 KB image, pulled (Block2 from a CoAP resource) and
pushed (Block1 writes of /5/0/0), through the whole State / Update Result machine."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from aiolwm2m.client import FirmwareUpdateInstance, LwM2MClient, TemperatureInstance
from aiolwm2m.client.objects.firmware import (
    CANCELLED,
    DOWNLOADED,
    IDLE,
    INITIAL,
    INTEGRITY_FAILURE,
    INVALID_URI,
    SUCCESS,
    UNSUPPORTED_PROTOCOL,
    UPDATE_FAILED,
)
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.server import LwM2MServer
from aiolwm2m.transport.site import Resource, Site
from aiolwm2m.transport.udp import UdpEndpoint

from .conftest import ClientFactory

IMAGE = os.urandom(100 * 1024)


class ImageResource(Resource):
    """A plain CoAP resource; the dispatcher serves it block by block (Block2)."""

    def render_get(self, request: Message) -> Message:
        return request.response(Code.CONTENT, IMAGE, 42)


@pytest.fixture
async def image_server() -> AsyncIterator[tuple[UdpEndpoint, ImageResource]]:
    site = Site()
    image = ImageResource()
    site.add("fw/image.bin", image)
    endpoint = await UdpEndpoint.create("::1", 0, site=site)
    yield endpoint, image
    await endpoint.close()


class Updater:
    def __init__(self) -> None:
        self.installed: list[bytes] = []
        self.fail_next = False

    async def __call__(self, image: bytes) -> bool:
        if self.fail_next:
            self.fail_next = False
            return False
        self.installed.append(image)
        return True


async def state(server: LwM2MServer, ep: str) -> tuple[int, int]:
    inst = (await server.read(ep, "/5/0")).content
    return inst.resources[3].value, inst.resources[5].value  # type: ignore[union-attr,return-value]


async def until_state(server: LwM2MServer, ep: str, wanted: tuple[int, int]) -> None:
    for _ in range(200):
        if await state(server, ep) == wanted:
            return
    raise AssertionError(f"state stayed {await state(server, ep)}, wanted {wanted}")


async def fw_client(make_client: ClientFactory, server: LwM2MServer, updater: Updater,
                    **kwargs: object) -> LwM2MClient:
    firmware = FirmwareUpdateInstance(0, updater=updater, **kwargs)  # type: ignore[arg-type]
    client: LwM2MClient = await make_client(server_port=server.port,
                                            objects=[TemperatureInstance(0), firmware])
    return client


async def test_pull_download_and_update(server: LwM2MServer, make_client: ClientFactory,
                                        image_server: tuple[UdpEndpoint, ImageResource]
                                        ) -> None:
    updater = Updater()
    await fw_client(make_client, server, updater)
    endpoint, _ = image_server
    image_uri = f"coap://[::1]:{endpoint.port}/fw/image.bin"
    assert (await server.write("dev-1", "/5/0/1", image_uri)).code == Code.CHANGED
    await until_state(server, "dev-1", (DOWNLOADED, INITIAL))
    assert endpoint.layer.stats.received >= 100  # one request per 1 KiB block
    assert (await server.read("dev-1", "/5/0/1")).content.value == image_uri  # type: ignore[union-attr]
    assert (await server.execute("dev-1", "/5/0/2")).code == Code.CHANGED
    await until_state(server, "dev-1", (IDLE, SUCCESS))
    assert updater.installed == [IMAGE]


async def test_push_block1_update_failure_then_success(server: LwM2MServer,
                                                       make_client: ClientFactory) -> None:
    updater = Updater()
    client = await fw_client(make_client, server, updater)
    assert (await server.write("dev-1", "/5/0/0", IMAGE)).code == Code.CHANGED
    assert await state(server, "dev-1") == (DOWNLOADED, INITIAL)
    assert (await server.read("dev-1", "/5/0/0")).code == Code.METHOD_NOT_ALLOWED  # W only
    updater.fail_next = True
    assert (await server.execute("dev-1", "/5/0/2")).code == Code.CHANGED
    await until_state(server, "dev-1", (DOWNLOADED, UPDATE_FAILED))
    assert (await server.execute("dev-1", "/5/0/2")).code == Code.CHANGED
    await until_state(server, "dev-1", (IDLE, SUCCESS))
    assert updater.installed == [IMAGE]
    fw = client.instance(5)
    assert isinstance(fw, FirmwareUpdateInstance) and fw.image == b""


async def test_state_machine_errors(server: LwM2MServer, make_client: ClientFactory,
                                    image_server: tuple[UdpEndpoint, ImageResource]) -> None:
    updater = Updater()
    await fw_client(make_client, server, updater, verifier=lambda image: image[:1] != b"\0")
    endpoint, _ = image_server
    # Update in Idle is not allowed.
    assert (await server.execute("dev-1", "/5/0/2")).code == Code.METHOD_NOT_ALLOWED
    # Results are reported through Update Result; the writes themselves succeed.
    await server.write("dev-1", "/5/0/1", "ftp://example.com/fw.bin")
    assert await state(server, "dev-1") == (IDLE, UNSUPPORTED_PROTOCOL)
    await server.write("dev-1", "/5/0/1", "coap://[::1")
    assert await state(server, "dev-1") == (IDLE, INVALID_URI)
    await server.write("dev-1", "/5/0/1", f"coap://[::1]:{endpoint.port}/missing.bin")
    await until_state(server, "dev-1", (IDLE, INVALID_URI))
    await server.write("dev-1", "/5/0/0", b"\0corrupt")
    assert await state(server, "dev-1") == (IDLE, INTEGRITY_FAILURE)
    # Downloaded, then cancelled; then an empty package resets everything.
    await server.write("dev-1", "/5/0/0", b"good")
    assert await state(server, "dev-1") == (DOWNLOADED, INITIAL)
    assert (await server.write("dev-1", "/5/0/0", b"other")).code == Code.METHOD_NOT_ALLOWED
    assert (await server.execute("dev-1", "/5/0/10")).code == Code.CHANGED
    assert await state(server, "dev-1") == (IDLE, CANCELLED)
    await server.write("dev-1", "/5/0/0", b"")
    assert await state(server, "dev-1") == (IDLE, INITIAL)
