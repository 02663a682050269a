"""The firmware page in a real browser (Debian's Chromium through Playwright) against a live
server with the firmware service and simulated devices: upload an image from a file, start
a campaign over the devices, follow each device's progress bar to the end live, pause and
resume, and see a failed device's reason."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from aiolwm2m.firmware.service import FirmwareService
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.simulator.firmware import sim_image
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from ..firmware.sims import sims
from .browser_fixtures import CHROMIUM, TOKEN, chromium
from .test_browser import TIMEOUT, sign_in

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"{CHROMIUM} is not installed (apt-get install chromium)")


@contextlib.asynccontextmanager
async def firmware_web(tmp_path: Path) -> AsyncIterator[tuple[LwM2MServer, WebServer]]:
    server = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory",
                                      data_dir=tmp_path))
    firmware = FirmwareService(server)
    await server.start()
    await firmware.start()
    web = WebServer(create_app(server, [TOKEN], firmware=firmware), "127.0.0.1", 0)
    await web.start()
    try:
        yield server, web
    finally:
        await web.stop()
        await firmware.stop()
        await server.stop()


async def test_firmware_campaign_page(tmp_path: Path) -> None:
    expect.set_options(timeout=TIMEOUT)
    image = tmp_path / "sim-2.0.0.bin"
    image.write_bytes(sim_image("2.0.0", 30_000))
    async with firmware_web(tmp_path) as (server, web), \
            sims(server, 4, install_seconds=0.8, update_failure_rate=0.1) as fleet, \
            chromium() as s:
        page = s.page
        failing = {f"sim-{i:06d}" for i in range(4)
                   if fleet.profile.firmware.picked(i, "update")}
        await sign_in(s, web.url)
        await page.get_by_test_id("nav-firmware").click()
        await expect(page.get_by_test_id("fw-images-empty")).to_be_visible()

        # Upload from a file: the name comes from the file, the version is typed.
        await page.get_by_test_id("fw-upload-file").set_input_files(str(image))
        await expect(page.get_by_test_id("fw-upload-name")).to_have_value("sim-2.0.0")
        await page.get_by_test_id("fw-upload-version").fill("2.0.0")
        await page.get_by_test_id("fw-upload-submit").click()
        await expect(page.get_by_test_id("fw-upload-feedback")).to_contain_text("Stored")
        await expect(page.get_by_test_id("fw-image-row")).to_have_count(1)
        await s.screenshot("fw-01-image-uploaded")

        # A campaign over every sim-* device, one at a time.
        await page.get_by_test_id("fw-campaign-name").fill("sims to 2.0.0")
        await page.get_by_test_id("fw-campaign-pattern").fill("sim-*")
        await page.get_by_test_id("fw-campaign-concurrency").fill("1")
        await page.get_by_test_id("fw-campaign-attempts").fill("1")
        await page.get_by_test_id("fw-campaign-submit").click()
        await expect(page.get_by_test_id("fw-campaign-page")).to_be_visible()
        rows = page.get_by_test_id("fw-job-row")
        await expect(rows).to_have_count(4)
        await expect(page.get_by_test_id("fw-campaign-state")).to_have_text("running")

        # Pause while the first device updates: the others stay pending until resume.
        await page.get_by_test_id("fw-pause").click()
        await expect(page.get_by_test_id("fw-campaign-state")).to_have_text("paused")
        await expect(page.locator('[data-testid="fw-job-row"][data-state="pending"]')
                     ).to_have_count(3)
        await s.screenshot("fw-02-paused")
        await page.get_by_test_id("fw-resume").click()

        # Live: every bar fills (or stops where the device failed), the campaign finishes.
        await expect(page.get_by_test_id("fw-campaign-state")).to_have_text(
            "finished", timeout=30_000)
        for i in range(4):
            endpoint = f"sim-{i:06d}"
            row = page.locator(f'[data-testid="fw-job-row"][data-endpoint="{endpoint}"]')
            if endpoint in failing:
                await expect(row.get_by_test_id("fw-job-state")).to_have_text("failed")
                await expect(row.get_by_test_id("fw-job-reason")).to_contain_text(
                    "firmware update failed")
            else:
                await expect(row.get_by_test_id("fw-job-state")).to_have_text("succeeded")
                await expect(row.get_by_test_id("fw-device-progress")).to_have_attribute(
                    "value", "100")
        await expect(page.get_by_test_id("fw-campaign-counts")).to_contain_text(
            f"{4 - len(failing)} succeeded")
        await s.screenshot("fw-03-finished", full_page=True)

        # Back on the overview, the campaign is listed with its bar; a campaign over a
        # device group that does not exist is refused with the reason.
        await page.get_by_test_id("nav-firmware").click()
        await expect(page.get_by_test_id("fw-campaign-row")).to_have_count(1)
        await page.get_by_test_id("fw-campaign-name").fill("line 2")
        await page.get_by_test_id("fw-campaign-group").fill("line-2")
        await page.get_by_test_id("fw-campaign-submit").click()
        await expect(page.get_by_test_id("fw-campaign-error")).to_contain_text(
            "no device group 'line-2'")
        await expect(page.get_by_test_id("fw-campaign-row")).to_have_count(1)
        assert s.errors == []
    assert {d.firmware_version for i, d in enumerate(fleet.devices)
            if f"sim-{i:06d}" not in failing} == {"2.0.0"}
