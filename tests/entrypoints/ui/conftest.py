"""The console under test in a real browser: Debian's Chromium driven by Playwright (its
async API: the stack and the browser share the session's event loop), against the whole
service (tests/runtimes/orchestrator/e2e_support.py: the `api` role over real HTTP, the
command handler, relay, projector and an orchestrator) plus the reconciler role, so a
started pipeline really deploys, on the session's broker.

The browser is never downloaded (`playwright install` needs the internet): it is
/usr/bin/chromium, `apt-get install -y chromium`. Without it these tests fail, saying so,
rather than skip: a console nobody tested is not one to ship.

Screenshots (1280x800) are taken of every page; PIPELINES_UPDATE_SCREENSHOTS=1 writes
them to docs/console/ (committed, shown by docs/console.md), else to a temporary directory.

Every page load goes through `offline`: a request to any host but the API's is aborted
and remembered, and the tests assert there was none (no CDN at run time).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright

from services.adapters.api_keys import Scope
from services.entrypoints.roles import run_roles
from tests.entrypoints.http.support import create_api_key
from tests.runtimes.orchestrator.e2e_support import Stack, module_stack

CHROMIUM: Final = Path(os.environ.get("PIPELINES_CHROMIUM", "/usr/bin/chromium"))
DOCS_SCREENSHOTS: Final = Path(__file__).resolve().parents[3] / "docs" / "console"
# The committed screenshots are refreshed on request only, so a test run leaves the
# working tree as it found it; otherwise they go to a temporary directory.
UPDATE_SCREENSHOTS: Final = "PIPELINES_UPDATE_SCREENSHOTS"
SCREENSHOTS: Final = (
    DOCS_SCREENSHOTS
    if os.environ.get(UPDATE_SCREENSHOTS) == "1"
    else Path(tempfile.gettempdir()) / "pipelines-console-screenshots"
)
VIEWPORT: Final = {"width": 1280, "height": 800}

stack = module_stack("ui", reconciler_sweep_ms=100)


@pytest.fixture(scope="module")
async def reconciler(stack: Stack) -> AsyncIterator[None]:
    """The reconciler role beside the stack: pipelines deploy and report their status."""
    stop = asyncio.Event()
    role = asyncio.create_task(run_roles(stack.settings, ["reconciler"], stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(role, 30)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: the console's browser tests need it. Install it "
            "with `apt-get install -y chromium` (or set PIPELINES_CHROMIUM to a Chromium "
            "binary); `playwright install` is not used.",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            # Containers often run as root with a small /dev/shm.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="module")
def base_url(stack: Stack) -> str:
    return str(stack.client.base_url).rstrip("/")


@pytest.fixture(scope="module")
async def write_key(stack: Stack) -> str:
    return await asyncio.to_thread(create_api_key, stack.settings.event_store_url, Scope.WRITE)


@pytest.fixture(scope="module")
async def read_key(stack: Stack) -> str:
    return await asyncio.to_thread(create_api_key, stack.settings.event_store_url, Scope.READ)


@dataclass
class Offline:
    """Requests the pages made to any other host than the API's (aborted)."""

    host: str
    elsewhere: list[str] = field(default_factory=list)

    async def handle(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == self.host or url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            self.elsewhere.append(url)
            await route.abort()


@contextlib.asynccontextmanager
async def browsing(browser: Browser, base: str, **options: Any) -> AsyncIterator[Page]:
    """A fresh browser context (its own cookies) and page at 1280x800, offline but for
    the API; asserts at the end that nothing was asked of another host."""
    offline = Offline(urlsplit(base).netloc)
    context: BrowserContext = await browser.new_context(
        viewport=options.pop("viewport", VIEWPORT), base_url=base, **options
    )
    await context.route("**/*", offline.handle)
    page = await context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        await context.close()
    assert offline.elsewhere == [], f"the pages loaded from other hosts: {offline.elsewhere}"


async def log_in(page: Page, key: str) -> None:
    await page.goto("/ui/login")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/ui/")


async def screenshot(page: Page, name: str) -> None:
    """One screenshot per page (NAME.png, the viewport); with PIPELINES_UPDATE_SCREENSHOTS=1
    into docs/console/, the README's."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
