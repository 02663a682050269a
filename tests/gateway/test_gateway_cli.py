"""``aiolwm2m gateway`` as a user runs it, against our server: its simulated end devices
register, its broker answers on 127.0.0.1 and ::1, a node publishing to it becomes an end
device; bad settings are one line and exit code 2."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from pathlib import Path

import cbor2

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.pubsub import drafts as d
from aiolwm2m.server import LwM2MServer
from aiolwm2m.transport.udp import UdpEndpoint

from .conftest import eventually
from .test_coap_node import Node


async def start(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "gateway", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def banner(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    lines = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        if not line:
            err = await proc.stderr.read() if proc.stderr else b""
            raise AssertionError("gateway exited: " + "".join(lines) + err.decode())
        lines.append(line)
        if line.lstrip().startswith("data"):
            return "".join(lines)


async def test_gateway_command_end_to_end(server: LwM2MServer, tmp_path: Path) -> None:
    node = Node()  # a plain CoAP node (aiocoap) fronted with --coap-node
    await node.start()
    proc = await start("--server", f"coap://[::1]:{server.port}", "--endpoint", "gw-cli",
                       "--end-devices", "5", "--broker-port", "0", "--store", "memory",
                       "--drift-interval", "0", "--rd", f"coap://[::1]:{server.port}",
                       "--rd-endpoint", "gw-cli-broker", "--coap-node",
                       f"boiler=coap://[::1]:{node.port},/3303/0/5700=/temperature,"
                       "/3303/0/5750=/label", cwd=tmp_path)
    try:
        text = await banner(proc)
        assert "gw-cli: 6 end devices" in text
        found = re.search(r"udp 127\.0\.0\.1:(\d+), \[::1\]:(\d+)", text)
        assert found is not None and found.group(1) == found.group(2)
        port = int(found.group(1))
        assert f"announcing the broker to coap://[::1]:{server.port}" in text
        await eventually(lambda: len(server.end_devices) == 6, 20)
        assert (await server.read("gw-cli", "/dev4/3303/0/5700")).code == Code.CONTENT
        assert (await server.read("gw-cli", "/boiler/3303/0/5700")).content.value == 21.5
        assert (await server.write("gw-cli", "/boiler/3303/0/5750", "cellar")).code == \
            Code.CHANGED
        assert node.label.value == "cellar"
        # The broker, discoverable on both addresses.
        for host in ("127.0.0.1", "::1"):
            client = await UdpEndpoint.create(host, 0)
            try:
                reply = await client.request(Message.request(
                    Code.GET, [".well-known", "core"], query=["rt=core.ps*"]),
                    (host, port), timeout=10)
                assert reply.code == Code.CONTENT and b"core.ps" in reply.payload
            finally:
                await client.close()
        # A node publishes: it becomes end device "pump", read from the gateway.
        client = await UdpEndpoint.create("127.0.0.1", 0)
        try:
            created = await client.request(Message.request(
                Code.POST, ["ps"], content_format=d.CONTENT_FORMAT_PUBSUB,
                payload=cbor2.dumps({d.TOPIC_NAME: "pump/3303/0/5700",
                                     d.RESOURCE_TYPE: d.RT_DATA})), ("127.0.0.1", port),
                timeout=10)
            assert created.code == Code.CREATED
            data = cbor2.loads(created.payload)[d.TOPIC_DATA]
            put = await client.request(Message.request(
                Code.PUT, data, payload=b"4.5", content_format=0), ("127.0.0.1", port),
                timeout=10)
            assert put.code == Code.CREATED
        finally:
            await client.close()
        await eventually(lambda: any(r.prefix == "pump" and any(
            o.object_id == 3303 for o in r.objects) for r in server.end_devices), 20)
        assert (await server.read("gw-cli", "/pump/3303/0/5700")).content.value == 4.5
        # The broker announced itself to the RD (our server is one): rt=core.ps is found.
        probe = await UdpEndpoint.create("::1", 0)
        try:
            for _ in range(200):
                lookup = await probe.request(Message.request(
                    Code.GET, ["rd-lookup", "res"], query=["rt=core.ps"]),
                    ("::1", server.port), timeout=10)
                if lookup.code == Code.CONTENT and lookup.payload:
                    break
                await asyncio.sleep(0.05)
            assert lookup.code == Code.CONTENT
            assert f":{port}/".encode() in lookup.payload, lookup.payload
            assert b"core.ps" in lookup.payload
        finally:
            await probe.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        await node.stop()
    await eventually(lambda: len(server.end_devices) == 0, 10)  # it deregistered


async def test_bad_settings_are_one_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        cases = [
            (["--server", "coap://[::1]:5683", "--broker-port", str(port),
              "--broker-host", "127.0.0.1", "--store", "memory"],
             f"aiolwm2m gateway: cannot listen on udp 127.0.0.1:{port}: the port is already "
             "in use"),
            (["--server", "http://nowhere"], "aiolwm2m gateway: --server: unsupported scheme"),
            (["--server", "coap://[::1]:5683", "--rd", "coap://[::1]"],
             "aiolwm2m gateway: --rd announces the broker: give --broker-port as well"),
            (["--server", "coap://[::1]:5683", "--end-devices", "-1"],
             "aiolwm2m gateway: --end-devices: 0 to 100000"),
            (["--server", "coap://[::1]:5683", "--coap-node", "123=coap://[::1],/3303/0/5700=/t"],
             "aiolwm2m gateway: --coap-node '123=coap://[::1],/3303/0/5700=/t': invalid LwM2M "
             "path '/123': prefix '123' clashes with an object id"),
            (["--server", "coap://[::1]:5683", "--coap-node", "b=coap://[::1],/3303/0=/t"],
             "aiolwm2m gateway: --coap-node 'b=coap://[::1],/3303/0=/t': /3303/0: map "
             "resources"),
            (["--server", "coap://[::1]:5683", "--coap-node", "boiler"],
             "aiolwm2m gateway: --coap-node 'boiler': expected PREFIX=coap://HOST[:PORT],"),
            (["--server", "coap://[::1]:5683", "--end-devices", "2", "--coap-node",
              "dev1=coap://[::1],/3303/0/5700=/t"],
             "aiolwm2m gateway: --coap-node: prefix 'dev1' is already in use"),
        ]
        for args, expected in cases:
            proc = await start(*args, cwd=tmp_path)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 2, err
            assert err.decode().strip().startswith(expected), err.decode()
            assert len(err.decode().strip().splitlines()) == 1
