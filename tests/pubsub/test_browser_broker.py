"""The broker page of the web UI in Debian's Chromium: topics with their last values,
refreshed as publications arrive; and the explanation a server without a broker gives."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from aiolwm2m.pubsub import TopicConfig
from aiolwm2m.pubsub.view import LocalBrokerView

from ..web.browser_fixtures import CHROMIUM, TOKEN, chromium, live_stack
from .conftest import start_broker

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"{CHROMIUM} is not installed (apt-get install chromium)")
TIMEOUT = 15_000  # ms, for each expectation (the page refreshes every 5 s)


async def test_broker_page_shows_topics_and_new_values() -> None:
    expect.set_options(timeout=TIMEOUT)
    broker = await start_broker()
    try:
        async with live_stack() as stack, chromium() as s:
            stack.web.app.state.broker_view = LocalBrokerView(broker)
            temp = await broker.create_topic(TopicConfig(name="temperature",
                                                         content_format=0))
            broker.publish(temp, b"21.5", 0)
            await broker.create_topic(TopicConfig(name="<b>not html</b>"))
            page = s.page
            await page.goto(f"{stack.web.url}/ui/#token={TOKEN}")
            await page.get_by_test_id("nav-broker").click()
            row = page.locator('[data-testid="broker-row"][data-topic="temperature"]')
            await expect(row.get_by_test_id("broker-value")).to_have_text("21.5")
            await expect(page.get_by_test_id("broker-summary")).to_contain_text("2 topics")
            # Names are text, never markup.
            await expect(page.locator('[data-testid="broker-row"]').nth(1)).to_contain_text(
                "<b>not html</b>")
            broker.publish(temp, b"22.0", 0)
            await expect(row.get_by_test_id("broker-value")).to_have_text("22.0")
            await s.screenshot("broker-topics")
            assert s.errors == []
    finally:
        await broker.stop()


async def test_broker_page_without_a_broker() -> None:
    expect.set_options(timeout=TIMEOUT)
    async with live_stack() as stack, chromium() as s:
        await s.page.goto(f"{stack.web.url}/ui/#token={TOKEN}")
        await s.page.get_by_test_id("nav-broker").click()
        await expect(s.page.get_by_test_id("broker-unavailable")).to_contain_text(
            "--broker-port")
        assert s.errors == []
