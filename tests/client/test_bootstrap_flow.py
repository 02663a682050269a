"""Bootstrap end to end: client, Bootstrap-Server and LwM2M server(s) over UDP loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.bootstrap import (
    AclConfig,
    BootstrapServer,
    BootstrapServerConfig,
    EndpointConfig,
    SecurityConfig,
    ServerAccountConfig,
    SessionFailed,
    SessionFinished,
)
from aiolwm2m.client import BootstrapFailed, Bootstrapped, Registered, RetryPolicy
from aiolwm2m.coap.codes import Code
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Registered as ServerRegistered

from .conftest import ClientFactory, eventually, next_event, uri


@pytest.fixture
async def bootstrap_server(tmp_path: Path) -> AsyncIterator[BootstrapServer]:
    bs = BootstrapServer(BootstrapServerConfig(host="::1", port=0, store="sqlite",
                                               data_dir=tmp_path, request_timeout=2.0))
    await bs.start()
    yield bs
    await bs.stop()


@pytest.fixture
async def second_server(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", run_timers=False))
    await srv.start()
    yield srv
    await srv.stop()


async def test_client_initiated_bootstrap_then_register(
        server: LwM2MServer, bootstrap_server: BootstrapServer,
        make_client: ClientFactory) -> None:
    await bootstrap_server.set_config("*", EndpointConfig.for_server(
        uri(server.port), 7, lifetime=90, default_max_period=600))
    bs_events = bootstrap_server.events.stream()
    client = await make_client("bs-dev", bootstrap_port=bootstrap_server.port)
    reg = server.registrations["bs-dev"]
    assert reg.lifetime == 90
    assert isinstance(await bs_events.until(SessionFinished), SessionFinished)
    sessions = await bootstrap_server.sessions("bs-dev")
    assert [s.state for s in sessions] == ["finished"]
    assert sessions[0].requests == 5  # delete /0, delete /1, write /0/1, write /1/0, finish
    resp = await server.read("bs-dev", "/1/0")
    assert resp.content.resources[0].value == 7  # type: ignore[union-attr]
    assert resp.content.resources[3].value == 600  # type: ignore[union-attr]
    assert 12 in resp.content.resources  # Last Bootstrapped  # type: ignore[union-attr]
    # The bootstrap account survives Bootstrap-Delete of /0.
    assert any(s.get(1) for s in client.tree.instances(0))


async def test_bootstrap_request_trigger_bootstraps_again(
        server: LwM2MServer, bootstrap_server: BootstrapServer,
        make_client: ClientFactory) -> None:
    await bootstrap_server.set_config("*", EndpointConfig.for_server(uri(server.port)))
    client = await make_client("trig", bootstrap_port=bootstrap_server.port)
    stream = client.events.stream()
    assert (await server.execute("trig", "/1/0/9")).code == Code.CHANGED
    await stream.until(Bootstrapped)
    await stream.until(Registered)
    assert len(await bootstrap_server.sessions("trig")) == 2


async def test_server_initiated_bootstrap(server: LwM2MServer,
                                          bootstrap_server: BootstrapServer,
                                          make_client: ClientFactory) -> None:
    await bootstrap_server.set_config("quiet", EndpointConfig.for_server(uri(server.port), 3))
    client = await make_client("quiet", bootstrap_port=bootstrap_server.port,
                               server_initiated_wait=30.0, register=False)
    record = await bootstrap_server.bootstrap("quiet", f"coap://[::1]:{client.port}")
    assert record.state == "finished" and record.server_initiated
    await client.wait_registered(5)
    assert "quiet" in server.registrations


async def test_unreachable_server_falls_back_to_bootstrap(
        server: LwM2MServer, bootstrap_server: BootstrapServer,
        make_client: ClientFactory) -> None:
    dead = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", run_timers=False))
    await dead.start()
    dead_port = dead.port
    await dead.stop()
    await bootstrap_server.set_config("*", EndpointConfig.for_server(uri(dead_port), 1))
    client = await make_client("fb", bootstrap_port=bootstrap_server.port, register=False,
                               retry=RetryPolicy(initial=0.05, minimum=0.05, jitter=0.1,
                                                 attempts_before_fallback=2))
    stream = client.events.stream()
    await stream.until(Bootstrapped)
    # The server is gone: fix the configuration; the client gives up after 2 attempts and
    # asks the bootstrap server again.
    await bootstrap_server.set_config("*", EndpointConfig.for_server(uri(server.port), 1))
    await client.wait_registered(15)
    assert "fb" in server.registrations
    assert len(await bootstrap_server.sessions("fb")) >= 2


async def test_inconsistent_configuration_is_refused(
        bootstrap_server: BootstrapServer, make_client: ClientFactory) -> None:
    # A Security instance for server 5 and a Server instance for server 6: no usable account.
    bad = EndpointConfig(
        (SecurityConfig(1, "coap://[::1]:9", short_server_id=5),),
        (ServerAccountConfig(0, 5),), writes=())
    object.__setattr__(bad, "servers", (ServerAccountConfig(0, 6),))
    await bootstrap_server.set_config("*", bad)
    events = bootstrap_server.events.stream()
    client = await make_client("bad", bootstrap_port=bootstrap_server.port, register=False,
                               retry=RetryPolicy(initial=0.2, minimum=0.2, jitter=0.0))
    failed = await events.until(SessionFailed)
    assert isinstance(failed, SessionFailed) and "4.06" in failed.reason
    stream = client.events.stream()
    await stream.until(BootstrapFailed, timeout=10)
    assert not client.registered


async def test_access_control_with_two_servers(
        server: LwM2MServer, second_server: LwM2MServer, bootstrap_server: BootstrapServer,
        make_client: ClientFactory) -> None:
    config = EndpointConfig(
        security=(SecurityConfig(1, uri(server.port), short_server_id=1),
                  SecurityConfig(2, uri(second_server.port), short_server_id=2)),
        servers=(ServerAccountConfig(0, 1, 300), ServerAccountConfig(1, 2, 300)),
        acls=(AclConfig(0, 3, 0, owner=1, acl={2: 1}),          # server 2 may read /3/0
              AclConfig(1, 3303, 0, owner=1),                   # only the owner
              AclConfig(2, 3303, 65535, owner=2),  # only server 2 may create
              AclConfig(3, 6, 0, owner=1, acl={0: 1})))  # default: everybody may read
    await bootstrap_server.set_config("acl", config)
    events2 = second_server.events.stream()
    await make_client("acl", bootstrap_port=bootstrap_server.port)
    await next_event(events2, ServerRegistered, 5)
    await eventually(lambda: "acl" in server.registrations)
    a, b = server, second_server
    assert (await b.read("acl", "/3/0")).code == Code.CONTENT
    assert (await b.write("acl", "/3/0/14", "+01:00")).code == Code.UNAUTHORIZED
    assert (await b.read("acl", "/3303/0")).code == Code.UNAUTHORIZED
    assert (await b.execute("acl", "/3/0/4")).code == Code.UNAUTHORIZED
    assert (await a.read("acl", "/3303/0")).code == Code.CONTENT  # the owner
    assert (await a.write("acl", "/3/0/14", "+01:00")).code == Code.CHANGED
    created = await b.create("acl", "/3303", {5700: 1.0}, instance_id=5)
    assert created.code == Code.CREATED
    # The creator owns the new instance; the other server has no right on it.
    assert (await b.read("acl", "/3303/5")).code == Code.CONTENT
    assert (await a.read("acl", "/3303/5")).code == Code.UNAUTHORIZED
    assert (await a.create("acl", "/3303", {5700: 1.0}, instance_id=6)).code == (
        Code.UNAUTHORIZED)
    assert (await a.write("acl", "/2/0/2", {2: 3})).code == Code.CHANGED  # owner of ACL /2/0
    assert (await b.write("acl", "/2/0/2", {2: 3})).code == Code.UNAUTHORIZED
    assert (await b.write("acl", "/3/0/14", "+02:00")).code == Code.CHANGED
    assert (await b.read("acl", "/6/0")).code == Code.CONTENT  # the default ACL
    assert (await b.write("acl", "/6/0/0", 1.0)).code == Code.UNAUTHORIZED
    assert (await b.read("acl", "/4/0")).code == Code.UNAUTHORIZED  # no ACL instance at all
