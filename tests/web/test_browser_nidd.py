"""The NIDD page in a real browser (Debian's Chromium through Playwright) against a live
server that reaches its devices through the SCEF emulator: see the SCEF, add a device with
quotas through the form, find the quota stored behind the REST API and the configuration
made at the SCEF, edit the device, have bad values refused with the server's reason, add a
group, remove the device; and a server without a SCEF, where the page is not offered."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import expect

from aiolwm2m.nidd.emulator import ScefEmulator
from aiolwm2m.nidd.service import NiddService
from aiolwm2m.nidd.settings import NiddSettings
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from .browser_fixtures import CHROMIUM, TOKEN, chromium
from .test_browser import TIMEOUT, sign_in

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"{CHROMIUM} is not installed (apt-get install chromium)")

UE = "meter-7@nidd.example"
GROUP = "fleet@nidd.example"


@contextlib.asynccontextmanager
async def nidd_web(scef: ScefEmulator | None) -> AsyncIterator[
        tuple[LwM2MServer, WebServer, httpx.AsyncClient]]:
    server = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory",
                                      scef_url=scef.url if scef is not None else None))
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    # The SCEF's callbacks land on this HTTP server: known once it listens.
    server.config.nidd = dataclasses.replace(NiddSettings(ttl=600), callback_url=web.url)
    await server.start()
    api = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=20)
    try:
        yield server, web, api
    finally:
        await api.aclose()
        await server.stop()
        await web.stop()


async def test_nidd_page_adds_edits_and_removes_a_device() -> None:
    expect.set_options(timeout=TIMEOUT)
    async with ScefEmulator("127.0.0.1", 0) as scef, nidd_web(scef) as (server, web, api), \
            chromium() as s:
        service: NiddService = server.nidd
        page = s.page
        await sign_in(s, web.url)
        nav = page.get_by_test_id("nav-nidd")
        await expect(nav).to_be_visible()
        await nav.click()
        await expect(page.get_by_test_id("nidd-scef")).to_have_text(service.client.api_root)
        await expect(page.get_by_test_id("nidd-reachable")).to_be_visible()
        await expect(page.get_by_test_id("nidd-devices-empty")).to_be_visible()
        await expect(page.get_by_test_id("nidd-groups-empty")).to_be_visible()
        await expect(page.get_by_test_id("nidd-queue")).to_contain_text("0 waiting here")

        # Add a device with its endpoint, a TTL and quotas both ways.
        await page.get_by_test_id("nidd-ident").fill(UE)
        await page.get_by_test_id("nidd-endpoint-input").fill("meter-7")
        await page.get_by_test_id("nidd-ttl").fill("120")
        await page.get_by_test_id("nidd-uplink-packets").fill("10")
        await page.get_by_test_id("nidd-downlink-bytes").fill("5000")
        await page.get_by_test_id("nidd-window").fill("3600")
        await page.get_by_test_id("nidd-submit").click()
        await expect(page.get_by_test_id("nidd-message")).to_have_text(
            f"Saved NIDD device {UE}.")
        row = page.locator(f'[data-testid="nidd-device-row"][data-ident="{UE}"]')
        await expect(row).to_be_visible()
        await expect(row.get_by_test_id("nidd-cell-endpoint")).to_have_text("meter-7")
        await expect(row.get_by_test_id("nidd-cell-ttl")).to_have_text("2 min")
        await expect(row.get_by_test_id("nidd-cell-quota")).to_have_text(
            "uplink 10 packets; downlink 5000 bytes per 1 h")
        await expect(row.get_by_test_id("nidd-cell-left")).to_contain_text(
            "10 uplink packets, 5000 downlink bytes")
        # Stored as typed, and the configuration is made at the SCEF (the page follows it,
        # with the byte allowance the SCEF counts through the quota extension).
        stored = (await api.get(f"/api/nidd/devices/{UE}")).json()
        assert stored["endpoint"] == "meter-7" and stored["ttl"] == 120
        assert stored["quota"] == {"uplink_packets": 10, "uplink_bytes": None,
                                   "downlink_packets": None, "downlink_bytes": 5000,
                                   "window": 3600}
        await expect(row.get_by_test_id("nidd-config-state")).to_have_text(
            "active", timeout=3 * TIMEOUT)
        await expect(row.get_by_test_id("nidd-cell-left")).to_contain_text(
            "SCEF: 5000 downlink bytes")
        await expect(page.get_by_test_id("nidd-configurations")).to_contain_text(
            "1 active of 1")
        await s.screenshot("nidd-01-device", full_page=True)

        # Edit: the form is filled from the row; the TTL goes back to the default.
        await row.get_by_test_id("nidd-edit").click()
        await expect(page.get_by_test_id("nidd-ident")).to_have_value(UE)
        await expect(page.get_by_test_id("nidd-uplink-packets")).to_have_value("10")
        await page.get_by_test_id("nidd-ttl").fill("")
        await page.get_by_test_id("nidd-uplink-packets").fill("25")
        await page.get_by_test_id("nidd-uplink-bytes").fill("2048")
        await page.get_by_test_id("nidd-submit").click()
        await expect(row.get_by_test_id("nidd-cell-quota")).to_have_text(
            "uplink 25 packets, 2048 bytes; downlink 5000 bytes per 1 h")
        await expect(row.get_by_test_id("nidd-cell-ttl")).to_have_text("default (10 min)")
        stored = (await api.get(f"/api/nidd/devices/{UE}")).json()
        assert stored["ttl"] is None and stored["ttl_in_force"] == 600
        assert stored["quota"]["uplink_packets"] == 25
        assert stored["quota"]["uplink_bytes"] == 2048

        # Bad values are refused with the server's reason, and nothing changes.
        await row.get_by_test_id("nidd-edit").click()
        await page.get_by_test_id("nidd-downlink-packets").fill("0")
        await page.get_by_test_id("nidd-submit").click()
        message = page.get_by_test_id("nidd-message")
        await expect(message).to_have_attribute("data-kind", "error")
        await expect(message).to_have_text(
            "Rejected: /quota/downlink_packets: must be at least 1")
        await page.get_by_test_id("nidd-downlink-packets").fill("lots")
        await page.get_by_test_id("nidd-submit").click()
        await expect(message).to_contain_text("expected an integer")
        await page.get_by_test_id("nidd-cancel").click()
        await page.get_by_test_id("nidd-ident").fill("other@nidd.example")
        await page.get_by_test_id("nidd-endpoint-input").fill("meter-7")
        await page.get_by_test_id("nidd-submit").click()
        await expect(message).to_have_text(
            f"Conflict: endpoint 'meter-7' belongs to NIDD device {UE}")
        await s.screenshot("nidd-02-refused", full_page=True)
        quota = service.directory.devices[UE].quota
        assert quota is not None and quota.downlink_packets is None
        assert list(service.directory.devices) == [UE]

        # A group, with a TTL of its own.
        await page.get_by_test_id("nidd-cancel").click()
        await page.get_by_test_id("nidd-kind").select_option("group")
        await expect(page.get_by_test_id("nidd-endpoint-input")).to_be_hidden()
        await page.get_by_test_id("nidd-ident").fill(GROUP)
        await page.get_by_test_id("nidd-ttl").fill("3600")
        await page.get_by_test_id("nidd-submit").click()
        group_row = page.locator(f'[data-testid="nidd-group-row"][data-ident="{GROUP}"]')
        await expect(group_row.get_by_test_id("nidd-cell-ttl")).to_have_text("1 h")
        assert (await api.get(f"/api/nidd/groups/{GROUP}")).json()["ttl"] == 3600

        # Remove the device: two clicks; it goes from the page, the API and the SCEF.
        await row.get_by_test_id("nidd-delete").click()
        await expect(row.get_by_test_id("nidd-delete")).to_have_text("Confirm remove")
        await row.get_by_test_id("nidd-delete").click()
        await expect(row).to_have_count(0)
        await expect(page.get_by_test_id("nidd-devices-empty")).to_be_visible()
        assert (await api.get(f"/api/nidd/devices/{UE}")).status_code == 404
        emulated = scef.scef
        assert emulated is not None
        async with asyncio.timeout(10):
            while any(r.config.externalId == UE for r in emulated.configurations.values()):
                await asyncio.sleep(0.05)
        await s.screenshot("nidd-03-removed", full_page=True)
        assert s.errors == []


async def test_without_a_scef_the_page_is_not_offered() -> None:
    expect.set_options(timeout=TIMEOUT)
    async with nidd_web(None) as (_server, web, _api), chromium() as s:
        page = s.page
        await sign_in(s, web.url)
        await page.goto(f"{web.url}/ui/#/nidd")
        await expect(page.get_by_test_id("nidd-unavailable")).to_contain_text(
            "NIDD is not configured")
        await expect(page.get_by_test_id("nidd-form")).to_be_hidden()
        # The menu asked /api/nidd before the page did: by now it knows there is no SCEF.
        await expect(page.get_by_test_id("nav-broker")).to_be_visible()
        await expect(page.get_by_test_id("nav-nidd")).to_be_hidden()
        await s.screenshot("nidd-04-not-configured")
        assert s.errors == []
