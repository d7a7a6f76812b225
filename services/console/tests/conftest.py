"""Fixtures: the console on an in-process platform with probe services; the live platform and Chromium."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from axe_playwright_python.sync_playwright import Axe
from fastapi import APIRouter, FastAPI
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright
from sqlalchemy import MetaData

from cityblocks.embedded import build_platform
from cityblocks.processes import free_port
from console.app import SPEC as CONSOLE
from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded
from eventbus import UnitOfWork
from servicekit.auth import CurrentPrincipal
from servicekit.service import ServiceSpec, UowFactory
from servicekit.settings import ServiceSettings


class QuickToGiveUp(ServiceSettings):
    consumer_max_attempts: int = 1
    consumer_backoff_s: float = 0.01


def producer_spec() -> ServiceSpec:
    """Emits ProbeRecorded for the caller's municipality."""
    router = APIRouter()

    @router.post("/v1/records/{stream}/{seq}", status_code=202)
    async def record(stream: str, seq: int, principal: CurrentPrincipal, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            uow.emit(ProbeRecorded(stream=stream, seq=seq), tenant=principal.tenant, subject=stream)

    return ServiceSpec(name="producer", title="Producer", metadata=MetaData(), routers=[router])


def fragile_spec(state: dict[str, bool]) -> ServiceSpec:
    """A consumer that fails while `state["broken"]` is set, so that its events become dead letters."""

    async def on_probe_recorded(uow: UnitOfWork, event: ProbeRecorded, envelope: Envelope) -> None:
        if state["broken"] and event.stream == "poison":
            raise RuntimeError("cannot handle poison")

    return ServiceSpec(
        name="fragile",
        title="Fragile consumer",
        metadata=MetaData(),
        subscriptions={ProbeRecorded: on_probe_recorded},
        settings_type=QuickToGiveUp,
    )


@pytest.fixture
def fragile_state() -> dict[str, bool]:
    return {"broken": True}


@pytest.fixture
def platform(tmp_path: Path, fragile_state: dict[str, bool]) -> FastAPI:
    app = build_platform(tmp_path, specs=[CONSOLE, producer_spec(), fragile_spec(fragile_state)])
    for service in app.state.services:
        if service.name == "console":
            # The console calls the services over HTTP; here the platform answers in process.
            service.app.state.service_transport = httpx.ASGITransport(app=app)
    return app


@pytest.fixture
async def client(platform: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with platform.router.lifespan_context(platform):
        transport = httpx.ASGITransport(app=platform)
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield client


LogIn = Callable[[str], Awaitable[httpx.Response]]
Bearer = Callable[[str], Awaitable[dict[str, str]]]


@pytest.fixture
def log_in(client: httpx.AsyncClient) -> LogIn:
    """Log the client's cookie session in as a demo user."""

    async def go(username: str) -> httpx.Response:
        response = await client.post("/console/login", data={"username": username})
        assert response.status_code == 303, response.text
        return response

    return go


@pytest.fixture
def bearer(client: httpx.AsyncClient) -> Bearer:
    """Authorization headers of a demo user, for calling services directly."""

    async def go(username: str) -> dict[str, str]:
        response = await client.post("/auth/token", data={"username": username})
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return go


CHROMIUM = Path(os.environ.get("CITYBLOCKS_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
BLOCKING_IMPACTS = frozenset({"serious", "critical"})
_saved: list[Path] = []


@dataclass
class LivePlatform:
    """The platform served by uvicorn in a thread; `run` executes a coroutine on its event loop."""

    url: str
    app: FastAPI
    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CITYBLOCKS_REQUIRE_INFRA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="package")
def live_platform(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[LivePlatform]:
    app = build_platform(tmp_path_factory.mktemp("platform"))
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the embedded platform did not start")
        time.sleep(0.05)
    yield LivePlatform(f"http://127.0.0.1:{port}", app, loop)
    server.should_exit = True
    thread.join(timeout=20)
    _finish(loop)


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the services left running (fire-and-forget tasks), then close the loop quietly."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:  # gather() of nothing would look for the main thread's current loop, which is not set
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


@pytest.fixture(scope="package")
def mounted(live_platform: LivePlatform) -> set[str]:
    """Names of the services the live platform mounted (journeys wait for the services they need)."""
    return {service.name for service in live_platform.app.state.services}


@pytest.fixture
def browser(chromium: Path) -> Iterator[Browser]:
    # Per test: sync Playwright marks the main thread's event loop as running while it is open, which the
    # asyncio tests of the same session could not live with.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


def new_page(browser: Browser, live_platform: LivePlatform, *, mobile: bool = False) -> Page:
    viewport: ViewportSize = {"width": 390, "height": 844} if mobile else {"width": 1280, "height": 900}
    context = browser.new_context(base_url=live_platform.url, viewport=viewport, locale="nl-BE")
    # No map tiles in tests: pages must stay usable without them, and the run must not need a network.
    context.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
    context.set_default_timeout(15_000)
    return context.new_page()


@pytest.fixture
def page(browser: Browser, live_platform: LivePlatform) -> Iterator[Page]:
    opened = new_page(browser, live_platform)
    yield opened
    opened.context.close()


@pytest.fixture
def open_page(browser: Browser, live_platform: LivePlatform) -> Iterator[Callable[..., Page]]:
    """Open further pages (another user in the same test), each in its own browser context."""
    pages: list[Page] = []

    def make(*, mobile: bool = False) -> Page:
        pages.append(new_page(browser, live_platform, mobile=mobile))
        return pages[-1]

    yield make
    for opened in pages:
        opened.context.close()


def browser_log_in(page: Page, username: str) -> None:
    page.goto("/console/login")
    page.get_by_label("Demogebruiker").select_option(username)
    page.get_by_role("button", name="Aanmelden").click()
    page.wait_for_url("**/console/**")
    page.wait_for_load_state()


@pytest.fixture
def login() -> Callable[[Page, str], None]:
    return browser_log_in


@pytest.fixture
def check(screenshots: Path) -> Callable[[Page, str], None]:
    """Screenshot the page and run axe-core on it: no serious or critical violation may remain."""

    def go(page: Page, name: str) -> None:
        page.wait_for_load_state()
        path = screenshots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        _saved.append(path)
        results = Axe().run(page)
        blocking = [v for v in results.response["violations"] if v.get("impact") in BLOCKING_IMPACTS]
        assert not blocking, f"{name}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in blocking
        )

    return go


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _saved:
        terminalreporter.write_line(f"console screenshots ({len(_saved)}) saved in {SCREENSHOTS}")
