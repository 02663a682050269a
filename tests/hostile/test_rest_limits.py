"""The REST API against hostile HTTP clients, on a real Hypercorn port: the token is checked
before the body is read (a 300 MiB anonymous upload costs no memory), bodies are limited
(413), /metrics is not open to the network, and server-sent-event subscribers that do not
read cost neither an encoding per event nor unbounded buffers: they are dropped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Refused
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer
from aiolwm2m.web.sse_fanout import SseFanout

from ..web.sse_client import SseReader

TOKEN = "limits-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MiB = 1 << 20


@dataclass
class Web:
    server: LwM2MServer
    web: WebServer

    @property
    def fanout(self) -> SseFanout:
        fanout: SseFanout = self.web.app.state.sse
        return fanout


@contextlib.asynccontextmanager
async def served(host: str = "127.0.0.1", **config: Any) -> AsyncIterator[Web]:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", **config))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), host, 0)
    await web.start()
    try:
        yield Web(server, web)
    finally:
        await web.stop()
        await server.stop()


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def zeros(total: int, chunk: int = MiB) -> AsyncIterator[bytes]:
    """A streamed body that the test does not hold in memory (one chunk, sent again)."""
    block = b"\0" * chunk
    for _ in range(total // chunk):
        yield block


# -- authentication before the body -------------------------------------------------------------


async def test_anonymous_300_mib_post_is_401_without_reading_it() -> None:
    async with served() as w, httpx.AsyncClient(base_url=w.web.url, timeout=30) as anon:
        # Warm up (first-request imports and allocations are not the body's).
        await anon.post("/api/clients/dev-1/write", content=b"{}")
        before = rss()
        started = time.monotonic()
        r = await anon.post("/api/clients/dev-1/write", content=zeros(300 * MiB),
                            headers={"content-type": "application/json"})
        assert r.status_code == 401 and r.json() == {"detail": "authentication required"}
        assert r.headers["www-authenticate"].startswith("Bearer")
        growth = rss() - before
        assert growth < 20 * MiB, f"RSS grew by {growth / MiB:.0f} MiB"
        assert time.monotonic() - started < 10


async def test_bad_json_is_401_before_anything_else() -> None:
    async with served() as w, httpx.AsyncClient(base_url=w.web.url, timeout=10) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = await http.post("/api/clients/dev-1/write", content=b'{"path": nonsense',
                                headers={"content-type": "application/json", **headers})
            assert r.status_code == 401, r.text
            assert "nonsense" not in r.text and "JSON" not in r.text
        # A non-ASCII token is just a wrong token (it was a 500 from hmac before).
        r = await http.get("/api/registrations", headers={"Authorization": b"Bearer \xe9"})
        assert r.status_code == 401
        # Authenticated: a short 400 naming the problem, without echoing the body.
        r = await http.post("/api/clients/dev-1/write", content=b'{"path": nonsense',
                            headers={"content-type": "application/json", **AUTH})
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert detail.startswith("request body is not valid JSON") and "nonsense" not in detail
        assert len(detail) < 120


# -- body limits ---------------------------------------------------------------------------------


async def test_body_limit_413_declared_and_chunked() -> None:
    async with served(http_max_body=64 * 1024, http_max_upload=256 * 1024) as w, \
            httpx.AsyncClient(base_url=w.web.url, headers=AUTH, timeout=30) as http:
        big = {"path": "/3/0/14", "value": "x" * (70 * 1024)}
        r = await http.post("/api/clients/dev-1/write", json=big)  # Content-Length
        assert r.status_code == 413 and "65536 bytes" in r.json()["detail"], r.text

        async def chunked() -> AsyncIterator[bytes]:
            data = json.dumps(big).encode()
            for i in range(0, len(data), 4096):
                yield data[i:i + 4096]

        r = await http.post("/api/clients/dev-1/write", content=chunked(),
                            headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
        # Just under the limit: read, parsed, and refused for what it says (no such device).
        r = await http.post("/api/clients/dev-1/write",
                            json={"path": "/3/0/14", "value": "x" * (60 * 1024)})
        assert r.status_code == 404, r.text
        # The raw upload route has its own, larger limit, counted on a streamed body too.
        before = rss()
        r = await http.post("/api/clients/dev-1/write-opaque", params={"path": "/5/0/0"},
                            content=zeros(100 * MiB))
        assert r.status_code == 404  # refused (unknown device) before the body is read
        assert rss() - before < 20 * MiB
        w.server.config.http_max_upload = 256 * 1024
        r = await http.post("/api/clients/dev-1/write-opaque", params={"path": "/5/0/0"},
                            content=zeros(300 * 1024, 4096))
        assert r.status_code == 404
        # The connection is still good for the next request.
        assert (await http.get("/api/registrations")).status_code == 200


async def test_authenticated_huge_body_is_413_in_bounded_memory() -> None:
    async with served() as w, \
            httpx.AsyncClient(base_url=w.web.url, headers=AUTH, timeout=30) as http:
        await http.get("/api/registrations")
        before = rss()
        r = await http.post("/api/clients/dev-1/write", content=zeros(300 * MiB),
                            headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
        assert rss() - before < 20 * MiB


# -- /metrics ------------------------------------------------------------------------------------


def non_loopback_address() -> str | None:
    """An IPv4 address of this host that is not loopback (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("198.51.100.1", 9))
            address: str = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


async def test_metrics_access() -> None:
    async with served() as w, httpx.AsyncClient(base_url=w.web.url, timeout=10) as http:
        assert (await http.get("/metrics")).status_code == 200  # from loopback
    address = non_loopback_address()
    if address is not None:
        # The same default, reached from another address of this host: token needed.
        async with served(host=address) as w, \
                httpx.AsyncClient(base_url=w.web.url, timeout=10) as http:
            r = await http.get("/metrics")
            assert r.status_code == 401 and "lwm2m" not in r.text
            assert (await http.get("/metrics", headers=AUTH)).status_code == 200
            assert (await http.get("/openapi.json")).status_code == 200
    async with served(metrics_access="token") as w, \
            httpx.AsyncClient(base_url=w.web.url, timeout=10) as http:
        assert (await http.get("/metrics")).status_code == 401
        r = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
        assert "lwm2m_registered_devices" in (await http.get("/metrics", headers=AUTH)).text
    async with served(metrics_access="open", host=address or "127.0.0.1") as w, \
            httpx.AsyncClient(base_url=w.web.url, timeout=10) as http:
        assert (await http.get("/metrics")).status_code == 200
    with pytest.raises(ValueError, match="metrics_access"):
        async with served(metrics_access="sometimes"):
            pass


# -- server-sent events --------------------------------------------------------------------------


def emit(w: Web, first: int, count: int, size: int) -> None:
    for i in range(first, first + count):
        w.server.events.emit(Refused(transport="udp", reason="test", endpoint=f"ep-{i}",
                                     detail="d" * size))


async def until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


IDLE = 5


async def test_idle_sse_subscribers_cost_one_encoding_and_are_dropped() -> None:
    async with served(sse_max_events=200, sse_max_bytes=256 * 1024) as w:
        fanout = w.fanout
        reader = SseReader(w.web.url, TOKEN)
        idle = [SseReader(w.web.url, TOKEN, small_buffer=True) for _ in range(IDLE)]
        try:
            for client in (reader, *idle):
                await client.open()
            await until(lambda: fanout.subscribers == 1 + IDLE)
            total = 0
            # 16 MB of events: more than the kernel buffers of a connection hold (up to
            # 4 MB each on Linux), so the idle subscribers' writes block and they fall
            # behind; a reader that keeps up gets every event.
            for _ in range(200):
                emit(w, total, 10, 8000)
                total += 10
                # The reading client keeps up (waited for by count, not by time).
                await asyncio.wait_for(
                    reader.read_until(lambda r, n=total: len(r.events) == n), 10)
            assert [e["endpoint"] for _, e in reader.events] == [f"ep-{i}"
                                                                  for i in range(total)]
            assert all(name == "refused" for name, _ in reader.events)
            # One encoding per event, whatever the number of subscribers.
            assert fanout.encoded == total
            # The shared buffer stayed within its bounds.
            assert len(fanout._log) <= 200 and fanout._bytes <= 256 * 1024 + 8192
            # An idle client that reads again finds what its socket held, then the reason
            # it was dropped, then the end of the stream.
            for client in idle:
                await asyncio.wait_for(client.read_until(lambda r: False), 10)
                name, data = client.events[-1]
                assert name == "dropped" and data["type"] == "dropped", client.events[-1:]
                assert "slow reader" in data["reason"] and data["missed"] > 0
                assert len(client.events) < total
            await until(lambda: fanout.subscribers == 1)
            assert fanout.dropped == IDLE
        finally:
            for client in (reader, *idle):
                await client.close()
        await until(lambda: fanout.subscribers == 0)
        # With nobody subscribed the server's event bus has no SSE listener left.
        assert fanout._unsubscribe is None and not fanout._log


def test_limits_are_settings() -> None:
    from aiolwm2m.cli.server_cmd import RunningServer
    from aiolwm2m.cli.settings import SettingsError, load_settings

    settings = load_settings(None, {"AIOLWM2M_METRICS_ACCESS": "token",
                                    "AIOLWM2M_HTTP_MAX_BODY": "4096"},
                             {"http_max_upload": 1 << 30})
    config = RunningServer(settings).server.config
    assert (config.metrics_access, config.http_max_body, config.http_max_upload) == (
        "token", 4096, 1 << 30)
    with pytest.raises(SettingsError, match="metrics_access must be one of"):
        load_settings(None, {"AIOLWM2M_METRICS_ACCESS": "public"}, {})
    with pytest.raises(SettingsError, match="http_max_body must be at least"):
        load_settings(None, {}, {"http_max_body": 10})
