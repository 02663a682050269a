"""The SQLite writer process is SIGKILLed under a real server while devices register: the
server keeps serving (5.00 for the writes that were in flight, 5.03 with Max-Age while the
writer restarts), takes registrations again within seconds, loses nothing it acknowledged,
reaps the dead process and reports the restart in /api/health and the metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiocoap
import httpx
import pytest
from aiocoap.numbers.codes import Code as C
from prometheus_client import generate_latest

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.store.sqlite_writer import WRITER_OK, WRITER_RESTARTING, SQLiteWriter
from aiolwm2m.web.app import create_app
from aiolwm2m.web.metrics import ServerMetrics

TOKEN = "writer-death-token"
LINKS = b'</>;rt="oma.lwm2m",</1/0>,</3/0>'


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="::1", port=0, data_dir=tmp_path, run_timers=False))
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def coap() -> AsyncIterator[aiocoap.Context]:
    ctx = await aiocoap.Context.create_client_context()
    yield ctx
    await ctx.shutdown()


def writer_of(server: LwM2MServer) -> SQLiteWriter:
    writer = server.store_writer
    assert writer is not None
    return writer


async def register(ctx: aiocoap.Context, server: LwM2MServer, ep: str) -> aiocoap.Message:
    msg = aiocoap.Message(code=C.POST, payload=LINKS, content_format=40,
                          uri=f"coap://[::1]:{server.port}/rd?ep={ep}&lt=300&lwm2m=1.1&b=U")
    return await asyncio.wait_for(ctx.request(msg).response, 30)


def process_state(pid: int) -> str | None:
    with contextlib.suppress(FileNotFoundError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split(":", 1)[1].strip()
    return None


def stored_endpoints(server: LwM2MServer) -> set[str]:
    with contextlib.closing(sqlite3.connect(server.config.database)) as conn:
        return {ep for (ep,) in conn.execute("SELECT endpoint FROM registrations")}


async def until(predicate: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.005)


async def test_registers_again_within_seconds_and_loses_no_acknowledged_write(
        server: LwM2MServer, coap: aiocoap.Context) -> None:
    before = [f"before-{i:02d}" for i in range(20)]
    codes = [(await register(coap, server, ep)).code for ep in before]
    assert codes == [C.CREATED] * 20
    writer = writer_of(server)
    dead = writer.pid
    seen: list[aiocoap.numbers.codes.Code] = []
    acked: set[str] = set(before)

    async def register_until_created(ep: str) -> None:
        while True:
            resp = await register(coap, server, ep)
            seen.append(resp.code)
            if resp.code == C.CREATED:
                acked.add(ep)
                return
            if resp.code == C.SERVICE_UNAVAILABLE:
                assert resp.opt.max_age is not None and 1 <= resp.opt.max_age <= 6
            await asyncio.sleep(0.05)

    after = [f"after-{i:02d}" for i in range(40)]
    burst = [asyncio.create_task(register_until_created(ep)) for ep in after[:20]]
    await asyncio.sleep(0)
    os.kill(dead, signal.SIGKILL)
    burst += [asyncio.create_task(register_until_created(ep)) for ep in after[20:]]
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(asyncio.gather(*burst), 15)
    # Every device got its 2.01 within seconds of the kill, and meanwhile only 5.00 (its
    # write was in flight) or 5.03 (the writer was restarting).
    assert asyncio.get_running_loop().time() - started < 10
    assert set(seen) <= {C.CREATED, C.INTERNAL_SERVER_ERROR, C.SERVICE_UNAVAILABLE}
    assert writer.state == WRITER_OK and writer.restarts == 1 and writer.pid != dead
    assert process_state(dead) is None  # reaped: no zombie
    # Everything acknowledged is durable and live; nothing else was announced.
    assert acked == set(before) | set(after)
    assert stored_endpoints(server) >= acked
    assert set(server.registrations) >= acked


async def test_health_and_metrics_report_the_restart(server: LwM2MServer,
                                                     coap: aiocoap.Context) -> None:
    writer = writer_of(server)
    writer.restart_delay_min = 1.0  # a window wide enough to look at
    writer.stable_after = 0.0
    metrics = ServerMetrics(server)
    app = create_app(server, [TOKEN])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test",
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        health = (await http.get("/api/health")).json()
        assert health["status"] == "ok" and health["writer"] == "ok"
        assert health["writer_restarts"] == 0
        os.kill(writer.pid, signal.SIGKILL)
        await until(lambda: writer.state == WRITER_RESTARTING)

        resp = await register(coap, server, "during")
        assert resp.code == C.SERVICE_UNAVAILABLE
        assert resp.opt.max_age is not None and 1 <= resp.opt.max_age <= 2
        got = await http.get("/api/health")
        assert got.status_code == 503
        assert got.json()["writer"] == "restarting" and got.json()["status"] == "degraded"
        assert got.json()["writer_last_error"]
        text = generate_latest(metrics.registry).decode()
        assert "lwm2m_store_writer_up 0.0" in text
        assert "lwm2m_store_writer_restarts_total 0.0" in text
        assert server.refusals.by_reason["store-unavailable"] == 1

        await until(lambda: writer.state == WRITER_OK)
        got = await http.get("/api/health")
        assert got.status_code == 200
        assert got.json()["writer"] == "ok" and got.json()["writer_restarts"] == 1
        text = generate_latest(metrics.registry).decode()
        assert "lwm2m_store_writer_up 1.0" in text
        assert "lwm2m_store_writer_restarts_total 1.0" in text
        assert (await register(coap, server, "during")).code == C.CREATED
