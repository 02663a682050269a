"""Run libcoap's example client and server (libcoap3-bin) as subprocesses, with hard timeouts.

libcoap's client exits 0 even when the DTLS handshake fails ("cannot send CoAP pdu"), so
callers judge success by the payload it prints, never by the exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest

BINARIES = ("coap-client-gnutls", "coap-client-openssl", "coap-server-gnutls",
            "coap-server-openssl")
requires_libcoap = pytest.mark.skipif(
    any(shutil.which(b) is None for b in BINARIES),
    reason="libcoap3-bin is not installed (scripts/setup.sh test installs it)")


@dataclass
class Finished:
    returncode: int | None
    stdout: str
    stderr: str


async def _stop(proc: asyncio.subprocess.Process, grace: float = 2.0) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def coap_client(binary: str, args: Sequence[str], uri: str,
                      timeout: float = 10.0) -> Finished:
    """Run one libcoap client request; killed if it outlives ``timeout``."""
    proc = await asyncio.create_subprocess_exec(
        binary, *args, uri, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        await _stop(proc)
        return Finished(None, "", "killed after timeout")
    finally:
        await _stop(proc)
    return Finished(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def _free_port_pair() -> int:
    """A port p such that p and p + 1 are free for both UDP and TCP on 127.0.0.1."""
    for _ in range(200):
        port = random.randrange(20000, 60000, 2)
        socks: list[socket.socket] = []
        try:
            for p in (port, port + 1):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port pair")


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@contextlib.asynccontextmanager
async def coap_server(binary: str, args: Sequence[str]) -> AsyncIterator[int]:
    """Run a libcoap server on 127.0.0.1; yields its DTLS port (its plain port + 1)."""
    port = _free_port_pair()
    proc = await asyncio.create_subprocess_exec(
        binary, "-A", "127.0.0.1", "-p", str(port), *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(5):
            while not _udp_port_taken(port + 1):
                if proc.returncode is not None:
                    raise RuntimeError(f"{binary} exited with {proc.returncode}")
                await asyncio.sleep(0.02)
        yield port + 1
    finally:
        await _stop(proc)
