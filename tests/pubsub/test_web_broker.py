"""``/api/broker``: a broker's topics with their last values, for a broker in the server's
process and for one read over CoAP; and ``aiolwm2m server --broker-port`` end to end."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import cbor2
import httpx
import pytest

from aiolwm2m.pubsub import Broker, TopicConfig
from aiolwm2m.pubsub import drafts as d
from aiolwm2m.pubsub.view import LocalBrokerView, RemoteBrokerView
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.transport.udp import UdpEndpoint
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from .conftest import Client, start_broker

TOKEN = "broker-view-token"


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    s = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory"))
    await s.start()
    yield s
    await s.stop()


async def web_for(server: LwM2MServer, view: object) -> tuple[WebServer, httpx.AsyncClient]:
    app = create_app(server, [TOKEN])
    app.state.broker_view = view
    web = WebServer(app, "127.0.0.1", 0)
    await web.start()
    return web, httpx.AsyncClient(base_url=web.url, timeout=20,
                                  headers={"Authorization": f"Bearer {TOKEN}"})


async def populate(broker: Broker) -> None:
    temp = await broker.create_topic(TopicConfig(name="temperature", content_format=0,
                                                 topic_type="temperature"))
    broker.publish(temp, b"21.5", 0)
    cbor = await broker.create_topic(TopicConfig(name="senml", content_format=112))
    broker.publish(cbor, cbor2.dumps([{"n": "t", "v": 1.5}]), 112)
    await broker.create_topic(TopicConfig(name="empty"))


async def test_embedded_broker_topics_with_last_values(server: LwM2MServer) -> None:
    broker = await start_broker()
    web, http = await web_for(server, LocalBrokerView(broker))
    client = Client(await UdpEndpoint.create("127.0.0.1", 0), broker.port)
    try:
        await populate(broker)
        _, data = await client.create_topic("from-coap")
        await client.publish(data, b"x")
        info = (await http.get("/api/broker")).json()
        assert info["source"] == "embedded" and info["topics"] == 4
        assert info["draft"] == d.DRAFT and info["port"] == broker.port
        page = (await http.get("/api/broker/topics", params={"limit": 10})).json()
        assert page["total"] == 4
        by_name = {t["name"]: t for t in page["items"]}
        temp = by_name["temperature"]
        assert temp["state"] == "fully-created" and temp["value"]["text"] == "21.5"
        assert temp["topic_type"] == "temperature" and temp["publishes"] == 1
        assert by_name["senml"]["value"]["json_value"] == [{"n": "t", "v": 1.5}]
        assert by_name["empty"]["state"] == "half-created" and by_name["empty"]["value"] is None
        assert by_name["from-coap"]["last_publisher"] == "127.0.0.1"
        one = (await http.get(f"/api/broker/topics/{temp['id']}")).json()
        assert one["name"] == "temperature"
        assert (await http.get("/api/broker/topics/nope")).status_code == 404
        nodes = (await http.get("/api/broker/nodes")).json()
        assert [n["address"] for n in nodes] == ["127.0.0.1"] and nodes[0]["publishes"] == 1
        second = (await http.get("/api/broker/topics", params={"offset": 3})).json()
        assert len(second["items"]) == 1
        assert (await httpx.AsyncClient(base_url=web.url).get("/api/broker")).status_code == 401
    finally:
        await client.endpoint.close()
        await http.aclose()
        await web.stop()
        await broker.stop()


async def test_broker_read_over_coap(server: LwM2MServer) -> None:
    broker = await start_broker()
    port = broker.port
    view = await RemoteBrokerView.create(f"coap://127.0.0.1:{port}")
    web, http = await web_for(server, view)
    try:
        await populate(broker)
        info = (await http.get("/api/broker")).json()
        assert info["source"] == f"coap://127.0.0.1:{broker.port}" and info["topics"] == 3
        page = (await http.get("/api/broker/topics")).json()
        by_name = {t["name"]: t for t in page["items"]}
        assert by_name["temperature"]["value"]["text"] == "21.5"
        assert by_name["temperature"]["publishes"] is None  # not known over CoAP
        assert by_name["empty"]["state"] == "half-created"
        assert (await http.get("/api/broker/nodes")).status_code == 404
    finally:
        await http.aclose()
        await web.stop()
        await view.close()
        await broker.stop()
    # The broker is gone: 502, not a hang or a 500.
    view = await RemoteBrokerView.create(f"coap://127.0.0.1:{port}")
    view.timeout = 0.5
    web, http = await web_for(server, view)
    try:
        assert (await http.get("/api/broker/topics")).status_code == 502
    finally:
        await http.aclose()
        await web.stop()
        await view.close()


async def test_no_broker_is_404(server: LwM2MServer) -> None:
    web, http = await web_for(server, None)
    try:
        reply = await http.get("/api/broker/topics")
        assert reply.status_code == 404 and "--broker-port" in reply.json()["detail"]
    finally:
        await http.aclose()
        await web.stop()


async def test_server_command_embeds_a_broker(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "server", "--coap-host", "127.0.0.1",
        "--coap-port", "0", "--no-dtls", "--no-tcp", "--no-bootstrap", "--http-port", "0",
        "--api-token", TOKEN, "--broker-port", "0", "--data-dir", str(tmp_path),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stderr is not None
        text = ""
        while "REST API" not in text:
            line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
            assert line, "server exited: " + text
            text += line
        found = re.search(r"broker +coap:// udp 127\.0\.0\.1:(\d+) /ps", text)
        url = re.search(r"REST API (http://\S+)/api", text)
        assert found is not None and url is not None
        client = Client(await UdpEndpoint.create("127.0.0.1", 0), int(found.group(1)))
        try:
            _, data = await client.create_topic("t")
            await client.publish(data, b"42")
        finally:
            await client.endpoint.close()
        async with httpx.AsyncClient(base_url=url.group(1),
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            items = (await http.get("/api/broker/topics")).json()["items"]
        assert [(t["name"], t["value"]["text"]) for t in items] == [("t", "42")]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert (tmp_path / "pubsub.sqlite3").exists()
