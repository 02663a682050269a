"""The embedded Bootstrap-Server of ``aiolwm2m server`` as a user runs it: its coaps://
listener, a device provisioned through the REST API that bootstraps with ``aiolwm2m client
--bootstrap coaps://... --psk-...`` and registers over DTLS, and the settings that turn the
listener off or move it."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from pathlib import Path

import httpx

from aiolwm2m.cli.settings import load_settings

from .test_server_cli import banner, run_to_end, start

TOKEN = "tok-bs"
DM_KEY = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
BS_KEY = "00112233445566778899aabbccddeeff"
COMMON = ("--coap-host", "::1", "--coap-port", "0", "--coaps-port", "0", "--no-tcp",
          "--bootstrap-port", "0", "--http-port", "0", "--api-token", TOKEN,
          "--store", "memory")


def port_in(text: str, pattern: str) -> int:
    found = re.search(pattern, text)
    assert found is not None, (pattern, text)
    return int(found.group(1))


async def stopped(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


async def test_client_bootstraps_over_coaps_and_registers_over_dtls(tmp_path: Path) -> None:
    server = await start(*COMMON, "--bootstrap-coaps-port", "0", cwd=tmp_path)
    client = None
    try:
        text = await banner(server)
        dm_port = port_in(text, r"aiolwm2m server .*coaps:// udp \[::1\]:(\d+)")
        bs_port = port_in(text, r"bootstrap coap:// udp \[::1\]:\d+, coaps:// udp "
                                r"\[::1\]:(\d+) \(0 configurations\)")
        url = re.search(r"REST API (http://\S+)/api", text)
        assert url is not None
        async with httpx.AsyncClient(base_url=url.group(1), timeout=20, headers={
                "Authorization": f"Bearer {TOKEN}"}) as http:
            r = await http.put("/api/bootstrap/cli-e2e", json={
                "security": [{"instance_id": 1, "server_uri": f"coaps://[::1]:{dm_port}",
                              "security_mode": "psk",
                              "public_key_or_identity": "text:cli-e2e-dm",
                              "secret_key": DM_KEY, "short_server_id": 1}],
                "servers": [{"instance_id": 0, "short_server_id": 1, "lifetime": 60}],
                "bootstrap_credentials": {"psk_identity": "text:cli-e2e-bs",
                                          "psk_key": BS_KEY}})
            assert r.status_code == 200, r.text
            assert r.json()["credentials"]["installed"] == "psk:cli-e2e-dm"
            client = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "aiolwm2m", "client", "--endpoint", "cli-e2e",
                "--host", "::1", "--bootstrap", f"coaps://[::1]:{bs_port}",
                "--psk-identity", "cli-e2e-bs", "--psk-key", BS_KEY,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            reg = None
            for _ in range(200):
                r = await http.get("/api/registrations/cli-e2e")
                if r.status_code == 200:
                    reg = r.json()
                    break
                await asyncio.sleep(0.1)
            assert reg is not None, "the client did not register"
            assert (reg["transport"], reg["identity"]) == ("dtls", "psk:cli-e2e-dm")
            sessions = (await http.get("/api/bootstrap/cli-e2e/sessions")).json()
            assert [s["state"] for s in sessions] == ["finished"]
        code, output = await stopped(client)
        client = None
        assert code == 0 and "bootstrapped" in output, output
    finally:
        if client is not None:
            client.kill()
            await client.wait()
        assert (await stopped(server))[0] == 0


async def test_without_the_dtls_listener_bootstrap_credentials_are_409(tmp_path: Path
                                                                      ) -> None:
    server = await start(*COMMON, "--no-bootstrap-dtls", cwd=tmp_path)
    try:
        text = await banner(server)
        line = next(li for li in text.splitlines() if "bootstrap" in li)
        assert "coap:// udp" in line and "coaps://" not in line
        url = re.search(r"REST API (http://\S+)/api", text)
        assert url is not None
        async with httpx.AsyncClient(base_url=url.group(1), headers={
                "Authorization": f"Bearer {TOKEN}"}) as http:
            r = await http.put("/api/bootstrap/dev-1", json={
                "security": [{"instance_id": 1, "server_uri": "coap://[::1]:5683",
                              "short_server_id": 1}],
                "servers": [{"instance_id": 0, "short_server_id": 1}],
                "bootstrap_credentials": {"psk_identity": "text:dev-1-bs",
                                          "psk_key": BS_KEY}})
            assert r.status_code == 409
            assert "secure bootstrap listener" in r.json()["detail"]
    finally:
        assert (await stopped(server))[0] == 0


async def test_a_busy_bootstrap_coaps_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as busy:
        busy.bind(("::1", 0))
        port = busy.getsockname()[1]
        rc, err = await run_to_end(*COMMON, "--bootstrap-coaps-port", str(port),
                                   cwd=tmp_path)
    assert rc == 2, err
    assert err.strip().splitlines()[-1].endswith(
        f"cannot listen on udp (bootstrap dtls) [::1]:{port}: the port is already in use")


def test_bootstrap_listener_settings(tmp_path: Path) -> None:
    assert (load_settings(None, {}, {}).bootstrap_coaps_port,
            load_settings(None, {}, {}).bootstrap_dtls) == (5784, True)
    cfg = tmp_path / "s.toml"
    cfg.write_text("bootstrap_coaps_port = 6784\nbootstrap_dtls = false\n")
    s = load_settings(cfg, {}, {})
    assert (s.bootstrap_coaps_port, s.bootstrap_dtls) == (6784, False)
    s = load_settings(cfg, {"AIOLWM2M_BOOTSTRAP_DTLS": "on"}, {"bootstrap_coaps_port": 7784})
    assert (s.bootstrap_coaps_port, s.bootstrap_dtls) == (7784, True)
