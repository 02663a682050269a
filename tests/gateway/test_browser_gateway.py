"""Gateways in the web UI (Debian's Chromium through Playwright): the device list shows a
gateway's end devices under it, kept current as they come; an end device's page reads,
writes and observes it like any device."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from aiolwm2m.client import ClientConfig, TemperatureInstance
from aiolwm2m.gateway import LwM2MGateway, TreeEndDevice
from aiolwm2m.gateway.simulated import simulated_end_devices

from ..web.browser_fixtures import CHROMIUM, TOKEN, chromium, live_stack
from .conftest import FAST

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"{CHROMIUM} is not installed (apt-get install chromium)")
TIMEOUT = 10_000  # ms, for each expectation


async def test_end_devices_under_their_gateway() -> None:
    expect.set_options(timeout=TIMEOUT)
    async with live_stack() as stack, chromium() as s:
        gateway = LwM2MGateway(
            ClientConfig.development("gw-1", stack.coap_uri, host="::1", transmission=FAST),
            end_devices=simulated_end_devices(3, gateway="gw-1"))
        await gateway.start()
        try:
            page = s.page
            await page.goto(f"{stack.web.url}/ui/#token={TOKEN}")
            row = page.locator('[data-testid="device-row"][data-endpoint="gw-1"]')
            toggle = row.get_by_test_id("end-devices-toggle")
            await expect(toggle).to_have_text("▸ 3 end devices")
            children = page.locator('[data-testid="end-device-row"][data-gateway="gw-1"]')
            await expect(children).to_have_count(0)
            await toggle.click()
            await expect(children).to_have_count(3)
            # The end devices come right after their gateway, in prefix order.
            rows = page.locator("[data-testid=device-table] tbody tr")
            await expect(rows.nth(0)).to_have_attribute("data-endpoint", "gw-1")
            await expect(rows.nth(1)).to_have_attribute("data-endpoint", "gw-1/dev0")
            await expect(children.nth(2)).to_contain_text("urn:dev:ops:gw-1-2")
            # A new end device appears without a reload.
            gateway.add_end_device(TreeEndDevice("hall", [TemperatureInstance(0)],
                                                 device_id="urn:dev:ops:hall"))
            await expect(children).to_have_count(4)
            await expect(toggle).to_have_text("▾ 4 end devices")
            await s.screenshot("gateway-end-devices")

            # An end device's page: its objects, a Read, a Write, an Observe.
            await page.locator('[data-testid="end-device-row"][data-endpoint="gw-1/dev1"]'
                               ).get_by_test_id("end-device-link").click()
            await expect(page.get_by_test_id("device-page")).to_have_attribute(
                "data-endpoint", "gw-1/dev1")
            await expect(page.get_by_test_id("registration")).to_contain_text(
                "urn:dev:ops:gw-1-1")
            sensor = page.locator('[data-testid="resource"][data-path="/3303/0/5700"]')
            await sensor.get_by_test_id("read").click()
            await expect(sensor.get_by_test_id("value")).to_contain_text("20.1")
            place = page.locator('[data-testid="resource"][data-path="/3303/0/5750"]')
            await place.get_by_test_id("write").click()
            editor = page.locator('[data-testid="editor"][data-path="/3303/0/5750"]')
            await editor.get_by_test_id("write-input").fill("cellar")
            await editor.get_by_test_id("write-submit").click()
            await expect(place.get_by_test_id("value")).to_have_text("cellar")
            assert gateway.end_device("dev1").tree.get(3303, 0).get(5750) == "cellar"
            await sensor.get_by_test_id("observe").click()
            await expect(sensor.get_by_test_id("observe")).to_have_attribute("aria-pressed",
                                                                             "true")
            chart = page.locator('[data-testid="chart"][data-path="/3303/0/5700"]')
            gateway.end_device("dev1").tree.get(3303, 0).measure(26.5)
            await expect(chart.get_by_test_id("chart-latest")).to_have_text("26.5")
            await expect(sensor.get_by_test_id("value")).to_contain_text("26.5")
            await expect(page.get_by_test_id("activity-log")).to_contain_text(
                "Notification /3303/0/5700")
            await s.screenshot("gateway-end-device-page")
            # The gateway drops it: the page says so.
            gateway.remove_end_device("dev1")
            await expect(page.get_by_test_id("device-banner")).to_contain_text(
                "gw-1/dev1")
            assert s.errors == []
        finally:
            await gateway.stop(deregister=False)
