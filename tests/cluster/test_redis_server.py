"""A real server on Redis: ``aiolwm2m server --store redis://...`` registering devices and
keeping them across a restart, Redis killed and restarted under a running server (5.03
meanwhile, recovery, no acknowledged registration lost), Redis unreachable at start (one
line). Real redis-server processes and real CoAP clients (aiocoap)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiocoap
import httpx
import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.store.redis_stores import RedisStores
from aiolwm2m.store.sqlite_writer import WRITER_OK, WRITER_RESTARTING
from aiolwm2m.web.app import create_app
from tests.redis_servers import RedisDeployment, RedisProcess, free_port

TOKEN = "redis-server-token"
LINKS = b'</>;rt="oma.lwm2m",</1/0>,</3/0>'


@pytest.fixture
async def coap() -> AsyncIterator[aiocoap.Context]:
    ctx = await aiocoap.Context.create_client_context()
    yield ctx
    await ctx.shutdown()


async def register(ctx: aiocoap.Context, port: int, ep: str) -> aiocoap.Message:
    msg = aiocoap.Message(code=C.POST, payload=LINKS, content_format=40,
                          uri=f"coap://[::1]:{port}/rd?ep={ep}&lt=300&lwm2m=1.1&b=U")
    return await asyncio.wait_for(ctx.request(msg).response, 30)


async def update(ctx: aiocoap.Context, port: int, location: str) -> aiocoap.Message:
    msg = aiocoap.Message(code=C.POST, uri=f"coap://[::1]:{port}/{location}")
    return await asyncio.wait_for(ctx.request(msg).response, 30)


async def until(predicate: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def stored_endpoints(url: str) -> set[str]:
    stores = await RedisStores.open(url)
    try:
        return {r.endpoint for r in await stores.registrations.all()}
    finally:
        await stores.close()


@pytest.fixture(params=["redis_standalone", "redis_cluster"], ids=["redis", "redis-cluster"])
def deployment(request: pytest.FixtureRequest) -> RedisDeployment:
    value: RedisDeployment = request.getfixturevalue(request.param)
    return value


async def test_registrations_outlive_the_server(deployment: RedisDeployment,
                                                coap: aiocoap.Context) -> None:
    url = deployment.url()
    first = LwM2MServer(ServerConfig(host="::1", port=0, store=url, run_timers=False))
    await first.start()
    try:
        locations = {}
        for i in range(30):
            resp = await register(coap, first.port, f"dev-{i:02d}")
            assert resp.code == C.CREATED
            locations[f"dev-{i:02d}"] = "/".join(resp.opt.location_path)
    finally:
        await first.stop()
    second = LwM2MServer(ServerConfig(host="::1", port=0, store=url, run_timers=False))
    await second.start()
    try:
        assert set(second.registrations) == set(locations)
        # The device carries on with its registration on the restarted server.
        assert (await update(coap, second.port, locations["dev-07"])).code == C.CHANGED
    finally:
        await second.stop()


async def test_redis_killed_and_restarted_under_a_running_server(
        private_redis: RedisProcess, coap: aiocoap.Context) -> None:
    url = private_redis.url + "?namespace=killed"
    server = LwM2MServer(ServerConfig(host="::1", port=0, store=url, run_timers=False))
    await server.start()
    app = create_app(server, [TOKEN])
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        writer: Any = server.store_writer
        assert writer is not None
        writer.restart_delay_min, writer.restart_delay_max = 0.05, 0.3
        before = [f"before-{i:02d}" for i in range(20)]
        assert [(await register(coap, server.port, ep)).code for ep in before] == (
            [C.CREATED] * 20)
        seen: list[Any] = []
        acked: set[str] = set(before)

        async def register_until_created(ep: str) -> None:
            while True:
                resp = await register(coap, server.port, ep)
                seen.append(resp.code)
                if resp.code == C.CREATED:
                    acked.add(ep)
                    return
                if resp.code == C.SERVICE_UNAVAILABLE:
                    assert resp.opt.max_age is not None and 1 <= resp.opt.max_age <= 2
                    assert resp.payload == b"store unavailable"
                await asyncio.sleep(0.05)

        after = [f"after-{i:02d}" for i in range(30)]
        burst = [asyncio.create_task(register_until_created(ep)) for ep in after[:15]]
        await asyncio.sleep(0)
        private_redis.kill()
        burst += [asyncio.create_task(register_until_created(ep)) for ep in after[15:]]
        await until(lambda: writer.state == WRITER_RESTARTING)
        await until(lambda: C.SERVICE_UNAVAILABLE in seen)
        health = await http.get("/api/health")
        assert health.status_code == 503 and health.json()["writer"] == "restarting"
        assert "unavailable" in health.json()["writer_last_error"]
        assert server.refusals.by_reason["store-unavailable"] >= 1
        private_redis.start()  # same port and AOF: what it acknowledged is there
        await asyncio.wait_for(asyncio.gather(*burst), 30)
        assert set(seen) <= {C.CREATED, C.INTERNAL_SERVER_ERROR, C.SERVICE_UNAVAILABLE}
        assert writer.state == WRITER_OK and writer.restarts >= 1
        assert (await http.get("/api/health")).json()["writer"] == "ok"
        assert acked == set(before) | set(after)
        assert set(server.registrations) == acked
    finally:
        await http.aclose()
        await server.stop()
    # Every acknowledged registration is in Redis, and nothing else.
    assert await stored_endpoints(url) == acked


async def start_cli(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "server", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def banner(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    lines = []
    while True:
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        assert line, "server exited: " + "".join(lines)
        lines.append(line)
        if line.lstrip().startswith("data"):
            return "".join(lines)


CLI_ARGS = ("--coap-host", "::1", "--coap-port", "0", "--no-dtls", "--no-tcp",
            "--bootstrap-port", "0", "--no-bootstrap-dtls", "--http-host", "127.0.0.1",
            "--http-port", "0", "--api-token", TOKEN)


async def test_cli_server_on_redis_keeps_registrations_across_a_restart(
        redis_standalone: RedisDeployment, coap: aiocoap.Context, tmp_path: Path) -> None:
    url = redis_standalone.url()
    namespace = url.rsplit("=", 1)[1]
    for run in (1, 2):
        proc = await start_cli("--store", url, *CLI_ARGS, cwd=tmp_path)
        try:
            text = await banner(proc)
            assert f"data     redis://{redis_standalone.address} (namespace {namespace})" in text
            port_match = re.search(r"coap:// udp \[::1\]:(\d+)", text)
            rest = re.search(r"REST API (http://\S+)/api", text)
            assert port_match is not None and rest is not None
            port = int(port_match.group(1))
            if run == 1:
                assert "0 registrations loaded" in text
                codes = [(await register(coap, port, f"cli-{i}")).code for i in range(5)]
                assert codes == [C.CREATED] * 5
            else:
                assert "5 registrations loaded" in text
            async with httpx.AsyncClient(base_url=rest.group(1)) as c:
                r = await c.get("/api/registrations",
                                headers={"Authorization": f"Bearer {TOKEN}"})
                assert r.status_code == 200 and r.json()["total"] == 5
        finally:
            proc.send_signal(signal.SIGTERM)
            _, rest_of_log = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, rest_of_log.decode()[-2000:]


async def test_unreachable_redis_at_start_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "server", "--store",
        f"redis://:hunter2@127.0.0.1:{port}", *CLI_ARGS, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ})
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    text = err.decode()
    assert proc.returncode == 2, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and f"cannot reach Redis at 127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in text and "hunter2" not in text
