"""``--log-level``: before or after the subcommand, it decides what the server logs."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import pytest

from aiolwm2m.cli.main import build_parser
from aiolwm2m.cli.server_cmd import settings_from
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.udp import UdpEndpoint


@pytest.mark.parametrize(("argv", "level"), [
    (["server"], "INFO"),
    (["--log-level", "DEBUG", "server"], "DEBUG"),
    (["server", "--log-level", "ERROR"], "ERROR"),
    (["--log-level", "DEBUG", "server", "--log-level", "ERROR"], "ERROR"),
    (["--log-level", "WARNING", "demo"], "WARNING"),
])
def test_the_level_reaches_the_server_settings(argv: list[str], level: str) -> None:
    assert settings_from(build_parser().parse_args(argv)).log_level == level


async def test_debug_lines_are_printed(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "--log-level", "DEBUG", "server", "--coap-host",
        "::1", "--coap-port", "0", "--no-dtls", "--no-tcp", "--no-bootstrap",
        "--http-port", "0", "--store", "memory", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stderr = proc.stderr
    assert stderr is not None
    seen: list[str] = []

    async def line_matching(pattern: str) -> re.Match[str]:
        while True:
            line = (await asyncio.wait_for(stderr.readline(), 20)).decode()
            assert line, "server exited: " + "".join(seen)
            seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    try:
        port = int((await line_matching(r"coap:// udp \[::1\]:(\d+)")).group(1))
        async with await UdpEndpoint.create("::1", 0) as device:
            register = Message.request(Code.POST, "/rd", query=["ep=log-dev", "lwm2m=1.1"],
                                       payload=b"</3/0>", content_format=40)
            resp = await device.request(register, ("::1", port), timeout=10)
            assert resp.code == Code.CREATED
            update = Message.request(Code.POST, "/" + "/".join(resp.location_path))
            assert (await device.request(update, ("::1", port), timeout=10)).code == \
                Code.CHANGED
        await line_matching(r" INFO aiolwm2m\.server\.server: registered log-dev ")
        await line_matching(r" DEBUG aiolwm2m\.server\.server: updated log-dev ")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 20)
