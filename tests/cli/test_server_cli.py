"""``aiolwm2m server`` as a user runs it, and its layered settings."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from aiolwm2m.cli.server_cmd import load_credentials
from aiolwm2m.cli.settings import SettingsError, load_settings


async def start(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "server", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def banner(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    lines = []
    while True:
        line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
        assert line, "server exited: " + "".join(lines)
        lines.append(line)
        if "data" in line:
            try:  # a generated token is printed right after
                lines.append((await asyncio.wait_for(proc.stderr.readline(), 1)).decode())
            except TimeoutError:
                pass
            return "".join(lines)


async def test_runs_serves_and_stops(tmp_path: Path) -> None:
    proc = await start("--coap-port", "0", "--coaps-port", "0", "--tcp-port", "0",
                       "--tls-port", "0", "--bootstrap-port", "0",
                       "--bootstrap-coaps-port", "0", "--http-port", "0",
                       "--api-token", "tok-123",
                       "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    try:
        text = await banner(proc)
        assert "coaps:// udp" in text and "coaps+tcp:// tcp" in text and "bootstrap" in text
        assert "API token" not in text
        url = re.search(r"REST API (http://\S+)/api", text)
        assert url is not None
        async with httpx.AsyncClient(base_url=url.group(1)) as c:
            r = await c.get("/api/registrations", headers={"Authorization": "Bearer tok-123"})
            assert r.status_code == 200 and r.json()["total"] == 0
            assert (await c.get("/api/registrations")).status_code == 401
        assert (tmp_path / "d" / "aiolwm2m.sqlite3").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_generated_token_is_printed(tmp_path: Path) -> None:
    proc = await start("--coap-port", "0", "--coaps-port", "0", "--tcp-port", "0",
                       "--tls-port", "0", "--bootstrap-port", "0",
                       "--bootstrap-coaps-port", "0", "--http-port", "0",
                       "--store", "memory", cwd=tmp_path)
    try:
        text = await banner(proc)
        token = re.search(r"API token \(generated for this run\): (\S+)", text)
        assert token is not None and f"#token={token.group(1)}" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)


async def run_to_end(*args: str, cwd: Path, env: dict[str, str] | None = None
                     ) -> tuple[int, str]:
    import os

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "server", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})})
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_one_line_errors(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as busy:
        busy.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        busy.bind(("::", 0))
        port = busy.getsockname()[1]
        rc, err = await run_to_end("--coap-port", str(port), "--http-port", "0",
                                   "--no-dtls", "--no-tcp", "--no-bootstrap", "--store",
                                   "memory", cwd=tmp_path)
    assert rc == 2 and err.strip().splitlines()[-1].endswith("the port is already in use")
    rc, err = await run_to_end("--config", str(tmp_path / "missing.toml"), cwd=tmp_path)
    assert rc == 2 and "cannot read config file" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "bad.toml").write_text("coap_port = [")
    rc, err = await run_to_end("--config", str(tmp_path / "bad.toml"), cwd=tmp_path)
    assert rc == 2 and "not valid TOML" in err
    (tmp_path / "creds.toml").write_text('[[credential]]\nendpoint = "x"\npsk_key = "zz"\n')
    rc, err = await run_to_end("--credentials", str(tmp_path / "creds.toml"),
                               "--store", "memory", cwd=tmp_path)
    assert rc == 2 and "credentials file" in err and "entry 1" in err
    rc, err = await run_to_end(cwd=tmp_path, env={"AIOLWM2M_HTTP_PORT": "eighty"})
    assert rc == 2 and "AIOLWM2M_HTTP_PORT" in err


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text('[server]\nhttp_port = 1000\ncoap_port = 2000\nstore = "memory"\n'
                   'api_tokens = ["a", "b"]\n')
    s = load_settings(cfg, {"AIOLWM2M_HTTP_PORT": "3000", "AIOLWM2M_DTLS": "off"},
                      {"coap_port": 4000, "http_port": None})
    assert (s.http_port, s.coap_port, s.store, s.api_tokens, s.dtls) == (
        3000, 4000, "memory", ["a", "b"], False)
    with pytest.raises(SettingsError, match="unknown setting"):
        cfg.write_text("colour = 1\n")
        load_settings(cfg, {}, {})
    with pytest.raises(SettingsError, match="outside"):
        load_settings(None, {}, {"coap_port": 70000})


def test_credentials_file(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text('[{"endpoint": "a", "psk_identity": "a-id", "psk_key": "0011"},'
                 ' {"endpoint": "b", "x509_identity": "CN-b"}]')
    infos = load_credentials(f)
    assert [i.mode for i in infos] == ["psk", "x509"] and infos[0].psk_key == b"\x00\x11"
    f.write_text('[{"endpoint": "a"}]')
    with pytest.raises(SettingsError, match="exactly one"):
        load_credentials(f)
    # The same checks as the REST API's (SecurityInfo.from_text): hex, and not empty.
    f.write_text('[{"endpoint": "a", "rpk_public_key": ""}]')
    with pytest.raises(SettingsError, match="rpk_public_key is empty"):
        load_credentials(f)
    f.write_text('[{"endpoint": "a", "psk_identity": "i", "psk_key": "xyz"}]')
    with pytest.raises(SettingsError, match="psk_key must be hex"):
        load_credentials(f)
