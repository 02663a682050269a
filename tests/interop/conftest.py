from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiocoap
import pytest

from aiolwm2m.cli.coap_server import CounterResource, StoreResource, TextResource
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.site import Resource, Site

HELLO = b"hello interop"


def interop_site(large: bytes) -> Site:
    """What our servers offer the third-party clients: /hello, /store, /large (holding
    ``large``, for block-wise transfers) and /counter (observable)."""
    site = Site()
    site.add("hello", TextResource(HELLO.decode()))
    site.add("store", StoreResource())
    site.add("large", StoreResource(large, 42))
    site.add("counter", CounterResource())
    return site


def resource(site: Site, name: str) -> Resource:
    return site.find(Message.request(Code.GET, name))


@pytest.fixture
async def ctx() -> AsyncIterator[aiocoap.Context]:
    """An aiocoap client context."""
    c = await aiocoap.Context.create_client_context()
    yield c
    await c.shutdown()


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (scripts/setup.sh test installs libcoap3-bin)")
    return path


def free_port() -> int:
    """A port free for both UDP and TCP right now (libcoap servers bind both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port: int = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


async def run(*cmd: str, timeout: float = 20.0) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out, err


@asynccontextmanager
async def background(*cmd: str) -> AsyncIterator[
        asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        await asyncio.sleep(0.3)
        if proc.returncode is not None:
            err = await proc.stderr.read() if proc.stderr else b""
            raise RuntimeError(f"{cmd[0]} exited: {err.decode(errors='replace')}")
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()

