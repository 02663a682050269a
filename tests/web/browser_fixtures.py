"""Real parts for the browser tests: a live server and web app, aiocoap devices, and Debian's
Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from ..server.aiocoap_device import AiocoapDevice, started_device

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
TOKEN = "browser-test-token-42"
# Known to work as root in containers; Playwright adds a fresh temporary profile itself.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@dataclass
class LiveStack:
    server: LwM2MServer
    web: WebServer
    devices: list[AiocoapDevice] = field(default_factory=list)

    @property
    def coap_uri(self) -> str:
        return f"coap://[::1]:{self.server.port}"

    async def device(self, endpoint: str) -> AiocoapDevice:
        dev = await started_device(endpoint)
        self.devices.append(dev)
        return dev


@contextlib.asynccontextmanager
async def live_stack(awake_time: float = 93.0) -> AsyncIterator[LiveStack]:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory",
                                      awake_time=awake_time))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    stack = LiveStack(server, web)
    try:
        yield stack
    finally:
        for dev in stack.devices:
            await dev.stop()
        await web.stop()
        await server.stop()


@dataclass
class BrowserSession:
    browser: Browser
    page: Page
    errors: list[str]

    async def screenshot(self, name: str, full_page: bool = False) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        print(f"screenshot: {path}")
        return path


@contextlib.asynccontextmanager
async def chromium(width: int = 1360, height: int = 900) -> AsyncIterator[BrowserSession]:
    """A page in headless Chromium; uncaught script errors and console errors are collected
    (except the browser's own "Failed to load resource" lines for expected 401/404s)."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            context = await browser.new_context(viewport={"width": width, "height": height})
            page = await context.new_page()
            errors: list[str] = []

            def on_console(msg: ConsoleMessage) -> None:
                if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
                    errors.append(f"console: {msg.text}")

            page.on("console", on_console)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            yield BrowserSession(browser, page, errors)
        finally:
            await browser.close()
