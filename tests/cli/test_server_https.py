"""``aiolwm2m server --http-certificate/--http-private-key``: the REST API and UI over HTTPS,
as a user starts it; and its one-line refusals of a half or broken configuration."""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
from pathlib import Path

import httpx
import pytest

from aiolwm2m.cli.nidd_flags import nidd_settings
from aiolwm2m.cli.settings import load_settings

from ..security.pki import Pki, make_pki
from .test_server_cli import banner, run_to_end, start

QUIET = ("--coap-port", "0", "--no-dtls", "--no-tcp", "--no-bootstrap", "--store", "memory",
         "--http-port", "0")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


async def test_serves_the_api_over_https(tmp_path: Path, pki: Pki) -> None:
    proc = await start(*QUIET, "--api-token", "tok-https",
                       "--http-certificate", str(pki.path("server_chain.pem")),
                       "--http-private-key", str(pki.path("server.key")), cwd=tmp_path)
    try:
        text = await banner(proc)
        url = re.search(r"REST API (https://\S+)/api", text)
        assert url is not None, text
        trust = ssl.create_default_context(cafile=str(pki.path("root.pem")))
        async with httpx.AsyncClient(base_url=url.group(1), verify=trust) as c:
            r = await c.get("/api/server", headers={"Authorization": "Bearer tok-https"})
            assert r.status_code == 200 and r.json()["registrations"] == 0
            assert (await c.get("/api/server")).status_code == 401
        # A client that does not trust the certificate's CA gets no answer at all.
        async with httpx.AsyncClient(base_url=url.group(1)) as c:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await c.get("/api/server")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_refuses_half_or_broken_https_settings(tmp_path: Path, pki: Pki) -> None:
    rc, err = await run_to_end(*QUIET, "--http-certificate", str(pki.path("server.pem")),
                               cwd=tmp_path)
    assert rc == 2 and "http_certificate and http_private_key go together" in err
    # The key of another certificate.
    rc, err = await run_to_end(*QUIET, "--http-certificate", str(pki.path("server.pem")),
                               "--http-private-key", str(pki.path("client1.key")),
                               cwd=tmp_path)
    assert rc == 2 and "is not a PEM certificate chain and its private key" in err
    assert len(err.strip().splitlines()) == 1
    rc, err = await run_to_end(*QUIET, "--http-certificate", str(tmp_path / "missing.pem"),
                               "--http-private-key", str(pki.path("server.key")),
                               cwd=tmp_path)
    assert rc == 2 and f"{tmp_path / 'missing.pem'} is not a readable file" in err


def test_the_scef_is_told_to_call_back_over_https(pki: Pki) -> None:
    settings = load_settings(None, {}, {
        "scef": "http://127.0.0.1:9/", "http_port": 8443,
        "http_certificate": str(pki.path("server_chain.pem")),
        "http_private_key": str(pki.path("server.key"))})
    assert nidd_settings(settings).callback_url == "https://127.0.0.1:8443"
