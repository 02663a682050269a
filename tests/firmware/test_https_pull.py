"""Firmware pulled over HTTPS from the server's own HTTP port when that port has a
certificate: the device checks the certificate against the CAs it trusts and resumes by
ranges as over HTTP; a certificate it does not trust fails the download at once (trying
again meets the same certificate)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from aiolwm2m.client import ClientConfig
from aiolwm2m.client.control import DownloadError
from aiolwm2m.client.firmware_download import download
from aiolwm2m.client.objects.firmware import CONNECTION_LOST
from aiolwm2m.firmware.methods import NoMethod, choose
from aiolwm2m.firmware.records import CampaignLimits
from aiolwm2m.web.serve import https_context

from ..security.pki import Pki, make_pki
from .device import FirmwareDevice
from .stack import FirmwareStack, firmware_stack
from .test_update_e2e import IMAGE, finished, uploaded

LIMITS = CampaignLimits(update_timeout=10, download_timeout=20)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture
async def s(tmp_path: Path, pki: Pki) -> AsyncIterator[FirmwareStack]:
    tls = https_context(pki.path("server_chain.pem"), pki.path("server.key"))
    trust = ssl.create_default_context(cafile=str(pki.path("root.pem")))
    async with firmware_stack(tmp_path, web_tls=tls, web_trust=trust) as st:
        yield st


def https_device(s: FirmwareStack, endpoint: str, trust: bytes | None) -> FirmwareDevice:
    return FirmwareDevice(endpoint, s.coap_uri, behaviour=["reboot"],
                          client_kwargs={"firmware_trust_pem": trust},
                          firmware_kwargs={"protocols": ["https"]})


async def test_a_device_that_pulls_over_https_gets_its_image_over_tls(s: FirmwareStack,
                                                                      pki: Pki) -> None:
    assert s.web.url.startswith("https://")
    assert s.firmware.deliveries.offered() == {"coap", "https"}
    image = await uploaded(s)
    dev = https_device(s, "dev-https", pki.read("root.pem"))
    await dev.start()
    try:
        run = await s.firmware.update_device("dev-https", image.sha256, LIMITS)
        await finished(run)
    finally:
        await dev.stop()
    (job,) = run.jobs.values()
    assert job.state == "succeeded", job.steps
    assert job.method == "https" and dev.installed == [IMAGE] and dev.version == "2.0.0"
    (offer,) = [st.detail for st in job.steps if st.step == "downloading"]
    assert offer.startswith(f"Package URI https://127.0.0.1:{s.web.port}/fw/")
    assert s.firmware.deliveries.bytes_served == len(IMAGE)
    # The REST API is on the same TLS port.
    assert (await s.http.get("/api/server")).status_code == 200


async def test_plain_http_is_not_offered_on_an_https_port(s: FirmwareStack) -> None:
    image = await uploaded(s)
    dev = FirmwareDevice("dev-http", s.coap_uri, firmware_kwargs={"protocols": ["http"],
                                                                   "delivery_method": 0})
    await dev.start()
    try:
        run = await s.firmware.update_device("dev-http", image.sha256, CampaignLimits(
            method="http", update_timeout=10, download_timeout=20))
        await finished(run)
    finally:
        await dev.stop()
    (job,) = run.jobs.values()
    assert job.state == "failed"
    assert job.reason == "this server does not serve images over http now"
    # Nor does the port answer plain HTTP.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.web.port}") as plain:
        with pytest.raises(httpx.HTTPError):
            await plain.get("/api/server", timeout=5)


async def test_an_untrusted_certificate_fails_the_download_without_retrying(
        s: FirmwareStack) -> None:
    image = await uploaded(s)
    # Only the system's CAs: the test PKI's root is not among them.
    dev = https_device(s, "dev-untrusting", None)
    client = await dev.start()
    try:
        run = await s.firmware.update_device("dev-untrusting", image.sha256, CampaignLimits(
            update_timeout=10, download_timeout=20, max_attempts=1))
        (job_id,) = run.jobs
        uri = ""
        async with asyncio.timeout(10):
            while not uri:
                uri = next((st.detail.removeprefix("Package URI ")
                            for st in run.jobs[job_id].steps if st.step == "downloading"), "")
                await asyncio.sleep(0.02)
        started = time.monotonic()
        with pytest.raises(DownloadError) as failed:
            await download(client, uri, 1 << 20)
        assert failed.value.result == CONNECTION_LOST
        assert "certificate is not trusted" in str(failed.value)
        # Not retried: four back-offs would take 0.5 + 1 + 2 + 4 s.
        assert time.monotonic() - started < 2.0
        await finished(run)
    finally:
        await dev.stop()
    job = run.jobs[job_id]
    assert job.state == "failed" and dev.installed == [], job.steps
    assert "connection lost" in job.reason, job.reason


def test_a_client_refuses_trust_that_is_not_a_certificate() -> None:
    with pytest.raises(ValueError, match="no usable PEM CA certificate"):
        ClientConfig.development("dev", "coap://[::1]:5683",
                                 firmware_trust_pem=b"-----BEGIN CERTIFICATE-----\nAAAA\n")


@pytest.mark.parametrize(("transport", "secure", "credentials", "expected"), [
    # A NoSec device that pulls over https needs no credentials at the server: it checks
    # the server's certificate, and the job's token lets it in.
    ("udp", False, False, "https"),
    # A device registered over DTLS is never given a NoSec download, https is fine.
    ("dtls", True, True, "https"),
])
def test_https_is_chosen_without_device_credentials(transport: str, secure: bool,
                                                    credentials: bool, expected: str) -> None:
    assert choose("auto", transport=transport, secure=secure, protocols=[3],
                  delivery=0, offered={"coap", "coaps", "https"},
                  credentials=credentials) == expected


def test_coaps_still_needs_credentials_the_server_can_check() -> None:
    with pytest.raises(NoMethod, match="no credentials here to pull over coaps"):
        choose("coaps", transport="udp", secure=False, protocols=[1], delivery=0,
               offered={"coap", "coaps"}, credentials=False)
