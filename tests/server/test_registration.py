"""Register / Update / De-register over real UDP, with an aiocoap device."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiocoap
import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.cli.server_cmd import RunningServer
from aiolwm2m.cli.settings import SettingsError, load_settings
from aiolwm2m.coap.codes import Code
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Deregistered, Expired, Registered, Updated
from aiolwm2m.server.registration_params import (
    RegisterParams,
    RegistrationError,
    parse_register,
    parse_update,
)
from aiolwm2m.server.registry import RegistrationIds
from aiolwm2m.store.interfaces import Commit
from aiolwm2m.store.memory import MemoryRegistrationStore, MemoryStores
from aiolwm2m.store.records import Registration

from .aiocoap_device import AiocoapDevice, wait_for
from .conftest import FakeClock, uri


async def raw(device: AiocoapDevice, method: C, url: str, payload: bytes = b"",
              cf: int | None = None) -> aiocoap.Message:
    assert device.context is not None
    msg = aiocoap.Message(code=method, uri=url, payload=payload)
    if cf is not None:
        msg.opt.content_format = cf
    return await device.context.request(msg).response


async def test_register_update_deregister(server: LwM2MServer, device: AiocoapDevice) -> None:
    events = server.events.stream()
    resp = await device.register(uri(server), lifetime=120)
    assert resp.code == C.CREATED and device.location[0] == "rd"
    ev = await events.next(1)
    assert isinstance(ev, Registered) and ev.replaced is None
    reg = server.registrations["dev-1"]
    assert reg.lifetime == 120 and reg.lwm2m_version == "1.1" and reg.binding == "U"
    assert reg.content_formats == (60, 110, 112, 11542, 11543, 11544)
    assert {(o.object_id, o.instance_id) for o in reg.objects} >= {(3, 0), (1, 0), (3303, 0)}
    assert reg.object_version(1) == "1.1"
    assert reg.id == device.location[1]

    resp = await device.update("lt=600")
    assert resp.code == C.CHANGED
    ev = await events.next(1)
    assert isinstance(ev, Updated) and ev.previous.lifetime == 120
    assert server.registrations["dev-1"].lifetime == 600

    resp = await device.deregister()
    assert resp.code == C.DELETED
    assert isinstance(await events.next(1), Deregistered)
    assert "dev-1" not in server.registrations
    resp = await device.update()
    assert resp.code == C.NOT_FOUND


async def test_reregistration_replaces(server: LwM2MServer, device: AiocoapDevice) -> None:
    await device.register(uri(server))
    first = server.registrations["dev-1"].id
    await device.register(uri(server), lifetime=50)
    reg = server.registrations["dev-1"]
    assert reg.id != first and reg.lifetime == 50
    assert len(server.registrations) == 1


async def test_bad_registrations(server: LwM2MServer, device: AiocoapDevice) -> None:
    base = uri(server)
    cases = [
        ("rd?lt=60&lwm2m=1.1", b"", C.BAD_REQUEST, b"ep"),
        ("rd?ep=x&lt=abc&lwm2m=1.1", b"", C.BAD_REQUEST, b"lt"),
        ("rd?ep=x&lt=0", b"", C.BAD_REQUEST, b"lt"),
        ("rd?ep=x&lwm2m=1.2", b"", C.PRECONDITION_FAILED, b"1.2"),
        ("rd?ep=x&lwm2m=1.1&b=X", b"", C.BAD_REQUEST, b"binding"),
        ("rd?ep=x&ep=y", b"", C.BAD_REQUEST, b"twice"),
        ("rd?ep=x&lwm2m=1.1", b"</3/0", C.BAD_REQUEST, b"object list"),
        ("rd?ep=x&lwm2m=1.1", b"</3/0/1/2>", C.BAD_REQUEST, b"object list"),
        ("rd?ep=x&lwm2m=1.1", b"\xff\xfe", C.BAD_REQUEST, b"UTF-8"),
    ]
    for query, payload, code, needle in cases:
        resp = await raw(device, C.POST, f"{base}/{query}", payload)
        assert resp.code == code, (query, resp)
        assert needle in resp.payload, (query, resp.payload)
    resp = await raw(device, C.POST, f"{base}/rd?ep=x&lwm2m=1.1", b"{}", cf=50)
    assert resp.code == C.UNSUPPORTED_CONTENT_FORMAT
    resp = await raw(device, C.POST, f"{base}/rd/nope/extra")
    assert resp.code == C.NOT_FOUND
    resp = await raw(device, C.GET, f"{base}/rd")
    assert resp.code == C.METHOD_NOT_ALLOWED
    assert not server.registrations
    # 1.0 clients and the legacy queue-mode binding UQ are accepted.
    resp = await raw(device, C.POST, f"{base}/rd?ep=old&lwm2m=1.0&b=UQ", b"</3/0>")
    assert resp.code == C.CREATED
    reg = server.registrations["old"]
    assert reg.queue_mode and reg.binding == "U" and reg.lwm2m_version == "1.0"


async def test_lifetime_expiry(server: LwM2MServer, device: AiocoapDevice,
                               clock: FakeClock) -> None:
    events = server.events.stream()
    await device.register(uri(server), lifetime=60)
    await events.next(1)
    clock.advance(59)
    await server.tick()
    assert "dev-1" in server.registrations
    await device.update()  # an update restarts the lifetime
    await events.next(1)
    clock.advance(59)
    await server.tick()
    assert "dev-1" in server.registrations
    clock.advance(2)
    await server.tick()
    ev = await events.next(1)
    assert isinstance(ev, Expired) and ev.registration.endpoint == "dev-1"
    assert "dev-1" not in server.registrations
    assert (await device.update()).code == C.NOT_FOUND


class GatedRegistrations(MemoryRegistrationStore):
    """A registration store whose writes become durable only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[asyncio.Future[None]] = []

    def _commit(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.commits.append(fut)
        return fut

    def add_nowait(self, registration: Registration) -> tuple[Registration | None, Commit]:
        return self._add(registration), self._commit()

    def update_nowait(self, registration: Registration) -> Commit:
        self._update(registration)
        return self._commit()

    def remove_nowait(self, registration_id: str) -> tuple[Registration | None, Commit]:
        return self._remove(registration_id), self._commit()


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[tuple[LwM2MServer, GatedRegistrations]]:
    stores = MemoryStores()
    store = stores.registrations = GatedRegistrations()
    server = LwM2MServer(ServerConfig(host="::1", port=0, data_dir=tmp_path, awake_time=30.0),
                         stores=stores)
    await server.start()
    yield server, store
    await server.stop()


async def registered(server: LwM2MServer, store: GatedRegistrations, device: AiocoapDevice,
                     **kw: Any) -> None:
    task = asyncio.create_task(device.register(uri(server), **kw))
    count = len(store.commits)
    await wait_for(lambda: len(store.commits) > count)
    store.commits[-1].set_result(None)
    assert (await task).code == C.CREATED


async def test_reply_and_events_wait_for_the_commit(
        gated: tuple[LwM2MServer, GatedRegistrations], device: AiocoapDevice) -> None:
    server, gated_store = gated
    seen: list[object] = []
    server.subscribe(seen.append)
    register = asyncio.create_task(device.register(uri(server), lifetime=120))
    await wait_for(lambda: gated_store.commits)
    await asyncio.sleep(0.3)
    assert not register.done() and seen == []
    gated_store.commits[0].set_result(None)
    assert (await register).code == C.CREATED
    assert [type(e) for e in seen] == [Registered]

    # A write that cannot be made durable is not acknowledged, not announced, and
    # taken back in memory.
    update = asyncio.create_task(device.update("lt=600"))
    await wait_for(lambda: len(gated_store.commits) == 2)
    gated_store.commits[1].set_exception(OSError("disk full"))
    assert (await update).code == C.INTERNAL_SERVER_ERROR
    assert [type(e) for e in seen] == [Registered]
    assert server.registrations["dev-1"].lifetime == 120


async def test_a_registration_whose_commit_fails_is_forgotten(
        gated: tuple[LwM2MServer, GatedRegistrations], device: AiocoapDevice) -> None:
    server, store = gated
    register = asyncio.create_task(device.register(uri(server)))
    await wait_for(lambda: store.commits)
    store.commits[0].set_exception(OSError("disk full"))
    assert (await register).code == C.INTERNAL_SERVER_ERROR
    assert "dev-1" not in server.registrations and await store.count() == 0
    assert server.registry.expiry.next_deadline() is None


async def test_requests_after_a_pending_deregistration_find_it_gone(
        gated: tuple[LwM2MServer, GatedRegistrations], device: AiocoapDevice) -> None:
    server, store = gated
    await registered(server, store, device)
    deregister = asyncio.create_task(device.deregister())
    await wait_for(lambda: len(store.commits) == 2)
    assert (await device.update()).code == C.NOT_FOUND  # not 5.00 from a half-done removal
    store.commits[1].set_result(None)
    assert (await deregister).code == C.DELETED


async def test_a_registration_replaced_while_committing_is_not_woken(
        gated: tuple[LwM2MServer, GatedRegistrations], device: AiocoapDevice) -> None:
    server, store = gated
    first = asyncio.create_task(device.register(uri(server), queue=True))
    await wait_for(lambda: len(store.commits) == 1)
    first_id = server.registrations["dev-1"].id
    second = asyncio.create_task(device.register(uri(server), queue=True))
    await wait_for(lambda: len(store.commits) == 2)
    for commit in store.commits:
        commit.set_result(None)
    assert (await first).code == (await second).code == C.CREATED
    second_id = server.registrations["dev-1"].id
    assert second_id != first_id
    assert server.queue.awake.deadline(first_id) is None
    assert server.queue.awake.deadline(second_id) is not None


def test_registration_ids_are_random_and_distinct() -> None:
    ids = RegistrationIds()
    drawn = [ids() for _ in range(3 * RegistrationIds.BATCH + 7)]
    assert len(set(drawn)) == len(drawn)
    assert all(len(i) == 12 and re.fullmatch(r"[A-Za-z0-9_-]{12}", i) for i in drawn)
    assert RegistrationIds()() not in drawn


# -- bounded parameters (sans-IO: a Uri-Query over UDP is at most 255 bytes) --------------

HUGE = "9" * 4301  # one digit past what int() converts: it raised a bare ValueError (5.00)
LIST = b"</1>;ver=1.1,</1/0>,</3/0>"


def _register(*query: str, payload: bytes = LIST, **limits: int) -> RegisterParams:
    return parse_register(["ep=dev", "lwm2m=1.1", *query], payload, 40,
                          accepted_versions=frozenset({"1.0", "1.1"}), default_lifetime=60,
                          **limits)


@pytest.mark.parametrize(("query", "payload", "code", "message"), [
    ((f"lt={HUGE}",), LIST, Code.BAD_REQUEST, "not an integer in 1..4294967295"),
    (("lt=4294967296",), LIST, Code.BAD_REQUEST, "not an integer"),
    (("lt=0",), LIST, Code.BAD_REQUEST, "not an integer"),
    ((), f"</{HUGE}/0>".encode(), Code.BAD_REQUEST, "outside 0..65535"),
    ((), f"</3/{HUGE}>".encode(), Code.BAD_REQUEST, "outside 0..65535"),
    ((), f"</3>;ver={HUGE}".encode(), Code.BAD_REQUEST, "is not major.minor"),
    ((), b"</3>;ver=1.1.1", Code.BAD_REQUEST, "is not major.minor"),
    ((), f'</>;rt="oma.lwm2m";ct="60 {HUGE}",</3/0>'.encode(), Code.BAD_REQUEST,
     "not a content format number"),
    ((), b"</3/0>,</3/0>", Code.BAD_REQUEST, "instance listed twice"),
])
def test_numbers_are_bounded_before_conversion(query: tuple[str, ...], payload: bytes,
                                               code: int, message: str) -> None:
    with pytest.raises(RegistrationError, match=message) as info:
        _register(*query, payload=payload)
    assert info.value.code == code
    assert len(info.value.message) < 200  # the peer's input is quoted short, if at all


def test_object_list_caps() -> None:
    links = b",".join([b"</6>", *(b"</6/%d>" % i for i in range(100))])
    assert len(_register(payload=links, max_objects=101).object_links.objects) == 101
    with pytest.raises(RegistrationError, match="more than 100 objects") as info:
        _register(payload=links, max_objects=100)
    assert info.value.code == Code.REQUEST_ENTITY_TOO_LARGE
    with pytest.raises(RegistrationError, match="larger than 500 bytes") as info:
        _register(payload=links, max_payload=500)
    assert info.value.code == Code.REQUEST_ENTITY_TOO_LARGE
    # The root link does not count; the update path has the same caps.
    root = b'</>;rt="oma.lwm2m",' + links
    assert len(_register(payload=root, max_objects=101).object_links.objects) == 101
    with pytest.raises(RegistrationError, match="more than 100 objects"):
        parse_update([], links, 40, "1.1", max_objects=100)


async def test_configured_caps_apply_over_udp(tmp_path: Path, device: AiocoapDevice) -> None:
    srv = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", run_timers=False,
                                   data_dir=tmp_path, max_objects_per_registration=3))
    await srv.start()
    try:
        resp = await device.register(uri(srv))  # /1, /1/0, /3/0, /3303/0: four links
        assert resp.code == C.REQUEST_ENTITY_TOO_LARGE
        assert resp.payload == b"object list holds more than 3 objects and instances"
    finally:
        await srv.stop()


def test_caps_are_operator_settings(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text("max_objects_per_registration = 50000\n")
    settings = load_settings(config, {"AIOLWM2M_MAX_REGISTRATION_PAYLOAD": "1048576"}, {})
    running = RunningServer(settings)
    assert running.server.config.max_objects_per_registration == 50_000
    assert running.server.config.max_registration_payload == 1 << 20
    with pytest.raises(SettingsError, match="max_objects_per_registration"):
        load_settings(None, {}, {"max_objects_per_registration": 0})
