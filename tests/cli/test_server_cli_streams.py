"""coap+tcp:// and coaps+tcp:// through the shipped ``aiolwm2m server``, on the event loop the
test runs on (AIOLWM2M_EVENT_LOOP, see tests/conftest.py): with uvloop installed, every
connection used to be reset."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.tcp_framing import FrameParser
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tls import TlsClientSecurity

KEY = b"0123456789abcdef"


async def start_server(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "server", "--coap-port", "0", "--no-dtls",
        "--tcp-port", "0", "--tls-port", "0", "--no-bootstrap", "--http-port", "0",
        "--store", "memory", "--api-token", "tok", *args, cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def banner(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    lines: list[str] = []
    while not any(line.startswith("  data") for line in lines):
        line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
        assert line, "server exited: " + "".join(lines)
        lines.append(line)
    return "".join(lines)


async def stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), 20)


def port_of(text: str, scheme: str) -> int:
    found = re.search(re.escape(scheme) + r" tcp \S+:(\d+)", text)
    assert found is not None, text
    return int(found.group(1))


async def test_a_csm_gets_a_csm_and_tls_clients_get_in(tmp_path: Path,
                                                       event_loop_name: str) -> None:
    credentials = tmp_path / "credentials.toml"
    credentials.write_text('[[credential]]\nendpoint = "tls-dev"\npsk_identity = "tls-dev"\n'
                           f'psk_key = "{KEY.hex()}"\n')
    proc = await start_server(tmp_path, "--credentials", str(credentials))
    try:
        text = await banner(proc)
        assert f"loop     {event_loop_name}" in text
        # The repro: a bare CSM on coap+tcp is answered with the server's CSM.
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(text, "coap+tcp://"))
        writer.write(b"\x00\xe1")
        parser = FrameParser(1 << 16)
        frames = []
        while not frames:
            data = await asyncio.wait_for(reader.read(4096), 10)
            assert data, "the server closed the connection"
            frames = parser.feed(data)
        assert frames[0].code == Code.CSM
        writer.close()
        # coaps+tcp: a PSK client completes its handshake and is answered.
        client = await TcpEndpoint.create(listen=False, tls_client=TlsClientSecurity(
            PskCredentials(b"tls-dev", KEY)))
        try:
            rtt = await client.ping(("127.0.0.1", port_of(text, "coaps+tcp://")), timeout=10)
            assert rtt >= 0
        finally:
            await client.close()
    finally:
        assert await stop(proc) == 0


@pytest.mark.asyncio(loop_factories=["asyncio"])  # the flag decides, not the test's loop
async def test_event_loop_flag_and_a_bad_choice(tmp_path: Path) -> None:
    proc = await start_server(tmp_path, "--event-loop", "asyncio")
    try:
        assert "loop     asyncio" in await banner(proc)
    finally:
        assert await stop(proc) == 0
    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "server", cwd=tmp_path,
        env={**os.environ, "AIOLWM2M_EVENT_LOOP": "tokio"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(bad.communicate(), 20)
    assert bad.returncode == 2
    assert err.decode().strip() == ("aiolwm2m server: event_loop must be auto, uvloop or "
                                    "asyncio, not 'tokio'")
