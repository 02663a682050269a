"""``aiolwm2m coap ...`` as a user runs it: a child process against a live server."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.cli.coap_server import demo_site
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.udp import UdpEndpoint


async def cli(*args: str, timeout: float = 20.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "coap", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def server() -> AsyncIterator[UdpEndpoint]:
    site, _ = demo_site()
    ep = await UdpEndpoint.create("::", 0, site=site)
    yield ep
    await ep.close()


async def test_get_put_post_delete(server: UdpEndpoint) -> None:
    base = f"coap://[::1]:{server.port}"
    rc, out, err = await cli("get", f"{base}/hello")
    assert rc == 0 and out.strip() == "Hello from aiolwm2m" and "2.05" in err
    rc, out, err = await cli("put", f"{base}/store", "--payload", "abc", "-c", "text/plain")
    assert rc == 0 and "2.04" in err
    rc, out, _ = await cli("get", f"{base}/store", "-q")
    assert out.strip() == "abc"
    rc, out, err = await cli("post", f"{base}/counter")
    assert rc == 0 and out.strip() == "1"
    rc, out, err = await cli("delete", f"{base}/hello")
    assert rc == 1 and "4.05" in err


async def test_large_get_to_file(server: UdpEndpoint, tmp_path: Path) -> None:
    dst = tmp_path / "large.bin"
    rc, _, err = await cli("get", f"coap://127.0.0.1:{server.port}/large", "-o", str(dst),
                           "--block-size", "64")
    assert rc == 0, err
    assert len(dst.read_bytes()) == 4096


async def test_observe_count(server: UdpEndpoint) -> None:
    counter = server.site.find(Message.request(Code.GET, "/counter"))

    async def bump() -> None:
        for _ in range(20):
            await asyncio.sleep(0.2)
            counter.notify()

    task = asyncio.create_task(bump())
    rc, out, err = await cli("observe", f"coap://[::1]:{server.port}/counter", "-n", "2")
    task.cancel()
    assert rc == 0, err
    assert out.split() == ["0", "0", "0"]
    assert err.count("Observe") == 3


async def test_bad_uri_and_unreachable() -> None:
    rc, _, err = await cli("get", "http://example.com/")
    assert rc == 2 and "unsupported scheme" in err
    rc, _, err = await cli("get", "coap://[::1]:9/x", "--timeout", "0.5")
    assert rc == 1 and ("Timeout" in err or "Refused" in err or "timed out" in err.lower())
