"""Opaque values in the web UI (Debian's Chromium through Playwright): shown as hex from the
API's {"base64": ...}, written from hex text (sent as {"base64": ...}) or from a file
(uploaded raw to write-opaque), and a bad hex string explained before anything is sent."""

from __future__ import annotations

import os

import pytest
from playwright.async_api import expect

from aiolwm2m.lwm2m import MultipleResource, ObjectInstance, ResourceType, SingleResource

from ..server.aiocoap_device import AiocoapDevice, wait_for
from .browser_fixtures import CHROMIUM, chromium, live_stack
from .test_browser import TIMEOUT, editor, resource, sign_in

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"{CHROMIUM} is not installed (apt-get install chromium)")


def package(dev: AiocoapDevice) -> object:
    res = dev.state.objects[5][0].resources.get(0)
    return res.value if isinstance(res, SingleResource) else None


async def test_opaque_read_and_write() -> None:
    expect.set_options(timeout=TIMEOUT)
    async with live_stack() as stack, chromium() as s:
        page = s.page
        dev = await stack.device("dev-1")
        dev.state.objects[5] = {0: ObjectInstance.from_resources(0, [
            SingleResource(3, ResourceType.INTEGER, 0)])}
        dev.state.objects[19] = {0: ObjectInstance.from_resources(0, [
            MultipleResource(0, ResourceType.OPAQUE, {0: b"AN", 1: b""})])}
        assert (await dev.register(stack.coap_uri)).code.is_successful()
        await sign_in(s, stack.web.url)
        await page.locator('[data-testid="device-row"][data-endpoint="dev-1"]').get_by_test_id(
            "device-link").click()

        data = resource(page, "/19/0/0")
        await data.get_by_test_id("read").click()
        await expect(data.get_by_test_id("value")).to_have_text(
            "#0: 0x414e (2 bytes), #1: (empty)")

        # Hex text: checked in the page first, then sent as {"base64": ...}.
        pkg = resource(page, "/5/0/0")
        await pkg.get_by_test_id("write").click()
        form = editor(page, "/5/0/0")
        await form.get_by_test_id("write-input").fill("de ad b")
        await form.get_by_test_id("write-submit").click()
        await expect(form.get_by_test_id("write-error")).to_contain_text("two digits each")
        await form.get_by_test_id("write-input").fill("de ad be ef")
        await form.get_by_test_id("write-submit").click()
        await expect(pkg.get_by_test_id("feedback")).to_contain_text("written")
        await wait_for(lambda: package(dev) == b"\xde\xad\xbe\xef")

        # A file: its bytes go as they are (no base64 round trip), block-wise to the device.
        image = os.urandom(20_000)
        await pkg.get_by_test_id("write").click()
        await form.get_by_test_id("write-file").set_input_files(
            files=[{"name": "firmware.bin", "mimeType": "application/octet-stream",
                    "buffer": image}])
        await form.get_by_test_id("write-submit").click()
        await expect(pkg.get_by_test_id("feedback")).to_contain_text("written")
        await wait_for(lambda: package(dev) == image)
        await s.screenshot("08-opaque-write")
        assert not s.errors, s.errors
