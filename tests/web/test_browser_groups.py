"""The Groups page in a real browser (Debian's Chromium through Playwright) against a live
server and simulated devices: define a group by an RD filter, see its members, run a read
and a write on every member and watch each member's result arrive."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from aiolwm2m.server import LwM2MServer
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from ..fake_clock import FakeClock
from ..groups.conftest import fleet_of, group_config
from .browser_fixtures import CHROMIUM, TOKEN, chromium
from .test_browser import TIMEOUT, sign_in

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"{CHROMIUM} is not installed (apt-get install chromium)")


async def test_groups_page(tmp_path: Path) -> None:
    expect.set_options(timeout=TIMEOUT)
    server = LwM2MServer(group_config(tmp_path, FakeClock(), store="memory"))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    fleet = await fleet_of(server, 5)
    try:
        async with chromium() as s:
            page = s.page
            await sign_in(s, web.url)
            await page.get_by_test_id("nav-groups").click()
            await expect(page.get_by_test_id("groups-empty")).to_be_visible()

            # A bad filter is explained, and nothing is created.
            await page.get_by_test_id("group-name").fill("meters")
            await page.get_by_test_id("group-filter").fill("ep=meter-*&count=2")
            await page.get_by_test_id("group-submit").click()
            await expect(page.get_by_test_id("group-message")).to_contain_text(
                "page and count")
            assert server.groups.all() == []

            await page.get_by_test_id("group-filter").fill("ep=meter-*")
            await page.get_by_test_id("group-members").fill("offline-1")
            await page.get_by_test_id("group-description").fill("all meters")
            await page.get_by_test_id("group-submit").click()
            row = page.locator('[data-testid="group-row"][data-group="meters"]')
            await expect(row).to_be_visible()
            await s.screenshot("groups-01-list")

            await row.get_by_test_id("group-link").click()
            await expect(page.get_by_test_id("group-page")).to_be_visible()
            await expect(page.get_by_test_id("group-member")).to_have_count(6)
            await expect(page.get_by_test_id("group-info")).to_contain_text(
                "6 members (5 registered)")

            # Read on every member: each result arrives in its row.
            await page.get_by_test_id("run-path").fill("/3/0/2")
            await page.get_by_test_id("run-concurrency").fill("2")
            await page.get_by_test_id("run-submit").click()
            await expect(page.get_by_test_id("run-summary")).to_contain_text(
                "Done: 5 ok, 1 not-registered")
            rows = page.get_by_test_id("run-row")
            await expect(rows).to_have_count(6)
            meter = page.locator('[data-testid="run-row"][data-endpoint="meter-000003"]')
            await expect(meter).to_have_attribute("data-status", "ok")
            await expect(meter.get_by_test_id("run-value")).to_have_text("meter-000003")
            offline = page.locator('[data-testid="run-row"][data-endpoint="offline-1"]')
            await expect(offline).to_have_attribute("data-status", "not-registered")
            await s.screenshot("groups-02-read", full_page=True)

            # Write on every member, typed by each one's model.
            await page.get_by_test_id("run-operation").select_option("write")
            await page.get_by_test_id("run-path").fill("/3/0/14")
            await page.get_by_test_id("run-value-input").fill("+03:00")
            await page.get_by_test_id("run-submit").click()
            await expect(page.get_by_test_id("run-summary")).to_contain_text("Done: 5 ok")
            values = {(await server.read(ep, "/3/0/14")).content.value  # type: ignore[union-attr]
                      for ep in server.registrations}
            assert values == {"+03:00"}
            # A bad path is refused with the reason.
            await page.get_by_test_id("run-path").fill("/3/x")
            await page.get_by_test_id("run-submit").click()
            await expect(page.get_by_test_id("run-message")).to_contain_text("Rejected")
            await s.screenshot("groups-03-write", full_page=True)
            assert s.errors == []
    finally:
        await fleet.stop()
        await web.stop()
        await server.stop()
