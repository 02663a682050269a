"""The web UI in a real browser (Debian's Chromium through Playwright) against a live server
and aiocoap devices: token prompt, live device list, read / write / execute / observe with a
live chart, a sleeping device's queued request, credentials and bootstrap pages.

Screenshots go to test-artifacts/browser/ (paths are printed; run with -s to see them).
"""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Locator, Page, Route, expect

from aiolwm2m.lwm2m import SingleResource

from ..server.aiocoap_device import AiocoapDevice, wait_for
from .browser_fixtures import (
    CHROMIUM,
    TOKEN,
    BrowserSession,
    LiveStack,
    chromium,
    live_stack,
)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"{CHROMIUM} is not installed (apt-get install chromium)")

TIMEOUT = 10_000  # ms, for each expectation


def device_value(dev: AiocoapDevice, oid: int, rid: int) -> object:
    res = dev.state.objects[oid][0].resources[rid]
    assert isinstance(res, SingleResource)
    return res.value


def resource(page: Page, path: str) -> Locator:
    return page.locator(f'[data-testid="resource"][data-path="{path}"]')


def editor(page: Page, path: str) -> Locator:
    return page.locator(f'[data-testid="editor"][data-path="{path}"]')


async def sign_in(s: BrowserSession, url: str) -> None:
    page = s.page
    await page.goto(f"{url}/ui/")
    dialog = page.get_by_test_id("token-dialog")
    await expect(dialog).to_be_visible()
    await page.get_by_test_id("token-input").fill("not-the-token")
    await page.get_by_test_id("token-submit").click()
    await expect(page.get_by_test_id("token-error")).to_contain_text("401")
    await s.screenshot("00-token-prompt")
    await page.get_by_test_id("token-input").fill(TOKEN)
    await page.get_by_test_id("token-submit").click()
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")


async def test_device_list_read_write_execute_observe() -> None:
    expect.set_options(timeout=TIMEOUT)
    async with live_stack() as stack, chromium() as s:
        page = s.page
        dev = await stack.device("dev-1")
        await sign_in(s, stack.web.url)

        # Empty list tells the user where to point a device.
        await expect(page.get_by_test_id("coap-uri")).to_contain_text(f":{stack.server.port}")
        await s.screenshot("01-empty-device-list")

        # The device registers while the page is open: it appears without a reload.
        assert (await dev.register(stack.coap_uri)).code.is_successful()
        row = page.locator('[data-testid="device-row"][data-endpoint="dev-1"]')
        await expect(row).to_be_visible()
        await expect(row.get_by_test_id("status")).to_have_text("online")
        await expect(page.get_by_test_id("device-count")).to_have_text("1")
        await page.get_by_test_id("device-filter").fill("no-such-device")
        await expect(row).to_be_hidden()
        await page.get_by_test_id("device-filter").fill("dev")
        await expect(row).to_be_visible()
        await s.screenshot("02-device-list")

        # The device page: object tree with names, units and operations.
        await row.get_by_test_id("device-link").click()
        await expect(page.get_by_test_id("device-page")).to_be_visible()
        battery = resource(page, "/3/0/9")
        await expect(battery).to_contain_text("Battery Level")
        await expect(page.get_by_test_id("registration")).to_contain_text("1.1")

        # Read: the value with its units.
        await battery.get_by_test_id("read").click()
        await expect(battery.get_by_test_id("value")).to_have_text("87 %")  # Device 1.0: no ver=

        # A resource the device lacks: its 4.04, explained.
        memory = resource(page, "/3/0/10")
        await memory.get_by_test_id("read").click()
        await expect(memory.get_by_test_id("feedback")).to_contain_text("4.04 Not Found")

        # Write, typed by the resource type; the device's state changes, the UI reads it back.
        offset = resource(page, "/3/0/14")
        await offset.get_by_test_id("write").click()
        await editor(page, "/3/0/14").get_by_test_id("write-input").fill("+05:00")
        await editor(page, "/3/0/14").get_by_test_id("write-submit").click()
        await expect(offset.get_by_test_id("value")).to_have_text("+05:00")
        await wait_for(lambda: device_value(dev, 3, 14) == "+05:00")

        # An invalid value: the API's 400 detail is shown (not just "error"). The Server
        # object starts folded.
        lifetime = resource(page, "/1/0/1")
        await expect(lifetime).to_be_hidden()
        await page.locator('[data-testid="object"][data-path="/1"] > summary').click()
        await lifetime.get_by_test_id("write").click()
        await editor(page, "/1/0/1").get_by_test_id("write-input").fill("99999999999999999999")
        await editor(page, "/1/0/1").get_by_test_id("write-submit").click()
        await expect(lifetime.get_by_test_id("feedback")).to_contain_text(
            re.compile(r"Rejected: .*signed 64-bit range"))
        assert device_value(dev, 1, 1) == 300

        # Execute with arguments.
        reboot = resource(page, "/3/0/4")
        await reboot.get_by_test_id("execute").click()
        await editor(page, "/3/0/4").get_by_test_id("execute-arguments").fill("0='now'")
        await editor(page, "/3/0/4").get_by_test_id("execute-submit").click()
        await expect(reboot.get_by_test_id("feedback")).to_contain_text("executed")
        assert dev.state.executed == [("/3/0/4", "0='now'")]

        # Observe: notifications arrive over server-sent events into the chart and the log.
        sensor = resource(page, "/3303/0/5700")
        await sensor.get_by_test_id("observe").click()
        await expect(sensor.get_by_test_id("observe")).to_have_attribute("aria-pressed", "true")
        chart = page.locator('[data-testid="chart"][data-path="/3303/0/5700"]')
        await expect(chart).to_have_attribute("data-count", "1")
        for n, value in enumerate((23.5, 22.25, 24.75), start=2):
            dev.set_value("/3303/0/5700", value)
            await expect(chart).to_have_attribute("data-count", str(n))
        await expect(chart.get_by_test_id("chart-latest")).to_have_text("24.75")
        await expect(sensor.get_by_test_id("value")).to_have_text("24.75")
        await expect(page.get_by_test_id("activity-log")).to_contain_text(
            "Notification /3303/0/5700: Sensor Value = 24.75")
        await expect(chart.locator("polyline")).to_have_count(1)
        await sensor.scroll_into_view_if_needed()
        await s.screenshot("03-device-page-observing")
        await s.screenshot("03b-device-page-full", full_page=True)

        # Cancel the observation from the toggle; the device forgets it.
        await sensor.get_by_test_id("observe").click()
        await expect(sensor.get_by_test_id("observe")).to_have_attribute("aria-pressed", "false")
        await wait_for(lambda: not dev.observations)

        # The server keeps what it was told: after a reload every value read or notified
        # shows, with when it was reported, without a Read...
        await page.reload()
        await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
        battery = resource(page, "/3/0/9")
        await expect(battery.get_by_test_id("value")).to_have_text("87 %")
        await expect(battery.get_by_test_id("seen")).to_have_text(re.compile(r"just now|ago"))
        await expect(resource(page, "/3/0/14").get_by_test_id("value")).to_have_text("+05:00")
        await expect(sensor.get_by_test_id("value")).to_have_text("24.75")
        await expect(resource(page, "/3/0/15").get_by_test_id("value")).to_have_text("—")
        await expect(resource(page, "/3/0/15").get_by_test_id("seen")).to_have_text("")
        # ... and observing again starts the chart from the history: the first observation's
        # four values, then the new one.
        await sensor.get_by_test_id("observe").click()
        await expect(sensor.get_by_test_id("observe")).to_have_attribute("aria-pressed", "true")
        await expect(chart).to_have_attribute("data-count", "5")
        await expect(chart.get_by_test_id("chart-latest")).to_have_text("24.75")
        await s.screenshot("03c-device-page-kept-values")
        await sensor.get_by_test_id("observe").click()
        await expect(sensor.get_by_test_id("observe")).to_have_attribute("aria-pressed", "false")
        await wait_for(lambda: not dev.observations)

        # Credentials: add a PSK, see it listed, delete it (two clicks).
        await page.get_by_test_id("nav-security").click()
        await expect(page.get_by_test_id("security-empty")).to_be_visible()
        await page.get_by_test_id("sec-endpoint").fill("dev-psk")
        await page.get_by_test_id("sec-psk-identity").fill("dev-psk-id")
        await page.get_by_test_id("sec-psk-key").fill("zz")
        await page.get_by_test_id("sec-submit").click()
        await expect(page.get_by_test_id("sec-message")).to_contain_text("must be hex")
        await page.get_by_test_id("sec-psk-key").fill("000102030405060708090a0b0c0d0e0f")
        await page.get_by_test_id("sec-submit").click()
        cred = page.locator('[data-testid="credential-row"][data-endpoint="dev-psk"]')
        await expect(cred).to_contain_text("dev-psk-id")
        info = stack.server.stores.security.get("dev-psk")
        assert info is not None and info.psk_key == bytes(range(16))
        await s.screenshot("04-security")
        await cred.get_by_test_id("delete-credentials").click()
        await cred.get_by_test_id("delete-credentials").click()
        await expect(cred).to_have_count(0)
        assert stack.server.stores.security.get("dev-psk") is None

        # Bootstrap: the API is not there yet, and the page says so.
        await page.get_by_test_id("nav-bootstrap").click()
        await expect(page.get_by_test_id("bootstrap-unavailable")).to_be_visible()
        await s.screenshot("05-bootstrap-unavailable")

        # Back to the list: a deregistration removes the device live.
        await page.get_by_test_id("nav-devices").click()
        await expect(row).to_be_visible()
        assert (await dev.deregister()).code.is_successful()
        await expect(row).to_have_count(0)
        await expect(page.get_by_test_id("devices-empty")).to_be_visible()
        assert not s.errors, s.errors


async def until_asleep(stack: LiveStack, endpoint: str) -> None:
    reg = stack.server.registrations.get(endpoint)
    assert reg is not None
    async with asyncio.timeout(TIMEOUT / 1000):
        while stack.server.queue.is_awake(reg):
            await asyncio.sleep(0.05)


async def test_a_device_that_sleeps_before_the_event_stream_opens() -> None:
    # The page loads the registration (awake) while its event stream connects; the device
    # goes to sleep before the stream is open, so no event tells the page: the stream's
    # opening must (a full run once saw "awake" stay on the page).
    expect.set_options(timeout=TIMEOUT)
    async with live_stack(awake_time=5.0) as stack, chromium(width=900) as s:
        page = s.page
        release = asyncio.Event()

        async def held(route: Route) -> None:
            await release.wait()
            await route.continue_()

        await page.route("**/api/events?*", held)
        dev = await stack.device("sleepy")
        assert (await dev.register(stack.coap_uri, queue=True)).code.is_successful()
        await page.add_init_script(f"localStorage.setItem('aiolwm2m.token', '{TOKEN}')")
        async with page.expect_response("**/api/registrations/sleepy") as answer:
            await page.goto(f"{stack.web.url}/ui/#/devices/sleepy")
        assert (await (await answer.value).json())["awake"] is True
        status = page.get_by_test_id("device-page").get_by_test_id("status")
        await expect(status).to_have_text("awake")
        await until_asleep(stack, "sleepy")
        release.set()
        await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
        await expect(status).to_have_text("sleeping")
        assert not s.errors, s.errors


async def test_a_device_that_sleeps_while_the_page_loads_its_registration() -> None:
    # The event comes before the registration's answer, and that answer was given before the
    # device slept: the page asks again after the event rather than keep the stale answer.
    expect.set_options(timeout=TIMEOUT)
    async with live_stack(awake_time=5.0) as stack, chromium(width=900) as s:
        page = s.page
        late = asyncio.Event()
        stale: list[bool] = []

        async def answered_late(route: Route) -> None:
            response = await route.fetch()
            if not stale:  # the first answer: held until the device sleeps
                stale.append((await response.json())["awake"])
                await late.wait()
            await route.fulfill(response=response)

        await page.route("**/api/registrations/sleepy", answered_late)
        dev = await stack.device("sleepy")
        assert (await dev.register(stack.coap_uri, queue=True)).code.is_successful()
        await page.add_init_script(f"localStorage.setItem('aiolwm2m.token', '{TOKEN}')")
        await page.goto(f"{stack.web.url}/ui/#/devices/sleepy")
        await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
        await until_asleep(stack, "sleepy")
        await expect(page.get_by_test_id("activity-log")).to_contain_text("Went to sleep")
        late.set()
        status = page.get_by_test_id("device-page").get_by_test_id("status")
        await expect(status).to_have_text("sleeping")
        assert stale == [True]
        assert not s.errors, s.errors


async def test_sleeping_device_gets_queued_request() -> None:
    expect.set_options(timeout=TIMEOUT)
    async with live_stack(awake_time=1.0) as stack, chromium(width=900) as s:
        page = s.page
        dev = await stack.device("sleepy")
        assert (await dev.register(stack.coap_uri, queue=True)).code.is_successful()
        # A saved token skips the prompt (as on a second visit).
        await page.add_init_script(f"localStorage.setItem('aiolwm2m.token', '{TOKEN}')")
        await page.goto(f"{stack.web.url}/ui/#/devices/sleepy")
        await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
        status = page.get_by_test_id("device-page").get_by_test_id("status")
        await expect(status).to_have_text("sleeping")
        await expect(page.get_by_test_id("device-banner")).to_contain_text("queued")

        battery = resource(page, "/3/0/9")
        await battery.get_by_test_id("read").click()
        feedback = battery.get_by_test_id("feedback")
        await expect(feedback).to_contain_text(
            re.compile(r"queued as \S+: will be sent when the device wakes up"))
        await s.screenshot("06-queued-request", full_page=True)

        # The device wakes (a registration update); the queued read goes out and its result
        # lands where it was asked for.
        assert (await dev.update()).code.is_successful()
        await expect(battery.get_by_test_id("value")).to_have_text("87 %")  # Device 1.0: no ver=
        await expect(feedback).to_contain_text("2.05")
        await expect(page.get_by_test_id("activity-log")).to_contain_text("Woke up")
        await expect(status).to_have_text("sleeping")  # after awake_time, asleep again
        await s.screenshot("07-queued-request-delivered")
        assert not s.errors, s.errors
