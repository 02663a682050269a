"""``aiolwm2m client`` and ``aiolwm2m bootstrap-server`` with credentials: a device
bootstraps over coaps:// with its bootstrap PSK and registers over coaps:// with the PSK the
bootstrap configuration gave it; bad security flags are refused with the reason."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import pytest

from aiolwm2m.cli.client_commands import bootstrap_server_config, client_security
from aiolwm2m.cli.main import build_parser
from aiolwm2m.security.credentials import generate_p256_key
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Registered
from aiolwm2m.store.records import SecurityInfo

from .conftest import next_event
from .test_cli import free_port, stop

DEVICE_KEY = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
BS_KEY = "00112233445566778899aabbccddeeff"


async def test_bootstrap_over_coaps_then_register_over_coaps(tmp_path: Path) -> None:
    server = LwM2MServer(ServerConfig(host="::1", port=0, coaps_port=0, store="memory",
                                      run_timers=False))
    await server.start()
    await server.stores.security.put(SecurityInfo("cli-sec", psk_identity=b"cli-sec",
                                                  psk_key=bytes.fromhex(DEVICE_KEY)))
    events = server.events.stream()
    config = tmp_path / "bootstrap.toml"
    config.write_text(f"""
[[endpoints."cli-sec".security]]
instance_id = 1
server_uri = "coaps://[::1]:{server.port_of('dtls')}"
security_mode = "psk"
public_key_or_identity = "text:cli-sec"
secret_key = "{DEVICE_KEY}"
short_server_id = 1

[[endpoints."cli-sec".servers]]
instance_id = 0
short_server_id = 1
lifetime = 60

[endpoints."cli-sec".bootstrap_credentials]
psk_identity = "text:cli-bs"
psk_key = "{BS_KEY}"
""")
    coaps_port = free_port()
    python = sys.executable
    bs = await asyncio.create_subprocess_exec(
        python, "-m", "aiolwm2m", "bootstrap-server", "--host", "::1", "--no-udp",
        "--coaps-port", str(coaps_port), "--store", "memory", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    client = None
    try:
        line = await asyncio.wait_for(bs.stdout.readline(), 10)  # type: ignore[union-attr]
        assert b"dtls " + str(coaps_port).encode() in line, line
        client = await asyncio.create_subprocess_exec(
            python, "-m", "aiolwm2m", "client", "--endpoint", "cli-sec", "--host", "::1",
            "--bootstrap", f"coaps://[::1]:{coaps_port}", "--psk-identity", "cli-bs",
            "--psk-key", BS_KEY, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        registered = await next_event(events, Registered, 15)
        reg = registered.registration
        assert (reg.endpoint, reg.transport, reg.identity) == ("cli-sec", "dtls", "psk:cli-sec")
        code, output = await stop(client)
        client = None
        assert code == 0 and "bootstrapped" in output and "registered" in output
    finally:
        if client is not None:
            client.kill()
            await client.wait()
        await stop(bs)
        await server.stop()


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_client_security_flags(tmp_path: Path) -> None:
    key = generate_p256_key()
    (tmp_path / "our.pem").write_bytes(key.private_key_pem)
    (tmp_path / "server.pub").write_bytes(key.public_key_pem)
    psk = client_security(parse("client", "-b", "coaps://h", "--psk-identity", "me",
                                "--psk-key", "0011"))
    assert psk is not None and psk.mode == 0
    rpk = client_security(parse("client", "-b", "coaps://h", "--rpk-key",
                                str(tmp_path / "our.pem"), "--server-public-key",
                                str(tmp_path / "server.pub"), "--sni", "bs.example"))
    assert rpk is not None and rpk.mode == 1 and rpk.sni == "bs.example"
    assert client_security(parse("client", "-b", "coap://h")) is None
    for argv, reason in [
        (("--psk-identity", "me"), "PSK needs --psk-identity and --psk-key"),
        (("--psk-identity", "me", "--psk-key", "zz"), "hex"),
        (("--psk-identity", "me", "--psk-key", "00", "--rpk-key", "x"), "one security mode"),
        (("--rpk-key", str(tmp_path / "our.pem")), "RPK needs"),
        (("--rpk-key", str(tmp_path / "missing.pem"), "--server-public-key", "x"),
         "--rpk-key"),
        (("--certificate", "c.pem"), "X.509 needs"),
    ]:
        with pytest.raises(ValueError, match=reason):
            client_security(parse("client", "-b", "coaps://h", *argv))


async def test_client_command_refuses_a_secure_uri_without_credentials() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "client", "--server", "coaps://[::1]:5684",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2 and b"needs credentials" in err


def test_bootstrap_server_flags(tmp_path: Path) -> None:
    key = generate_p256_key()
    (tmp_path / "bs.pem").write_bytes(key.private_key_pem)
    cfg = bootstrap_server_config(parse(
        "bootstrap-server", "--no-udp", "--coaps-port", "5684", "--tls-port", "5685",
        "--rpk-key", str(tmp_path / "bs.pem")))
    assert (cfg.port, cfg.coaps_port, cfg.tcp_port, cfg.tls_port) == (None, 5684, None, 5685)
    assert cfg.dtls_rpk is not None and cfg.dtls_rpk.public_key_der == key.public_key_der
    with pytest.raises(ValueError, match="no transport"):
        bootstrap_server_config(parse("bootstrap-server", "--no-udp"))
    with pytest.raises(ValueError, match="both --certificate and --private-key"):
        bootstrap_server_config(parse(
            "bootstrap-server", "--certificate", "x.pem"))
