"""The embedded platform: every service in one process on one in-process bus, dev identity provider."""

from __future__ import annotations

import asyncio
import contextlib
import html
import importlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from eventbus import InProcessBus
from servicekit.app import create_service_app
from servicekit.devidp import DevIdentityProvider, devidp_app
from servicekit.problems import install_problem_handlers
from servicekit.service import ServiceSpec
from servicekit.settings import ServiceSettings

HEALTH_TIMEOUT_S = 2.0
CONSOLE = "console"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MountedService:
    name: str
    title: str
    app: FastAPI


class ServiceStatus(BaseModel):
    name: str
    title: str
    docs: str
    ready: bool
    detail: str


def load_specs() -> list[ServiceSpec]:
    """The SPEC of every service listed in `cityblocks.services.SERVICES`."""
    from cityblocks.services import SERVICES

    return [importlib.import_module(entry.module).SPEC for entry in SERVICES]


def embedded_settings(spec: ServiceSpec, data_dir: Path) -> ServiceSettings:
    """The service's own settings class pinned to embedded choices: SQLite under data_dir, dev identity."""
    return spec.settings_type(
        service_name=spec.name,
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{(data_dir / f'{spec.name}.db').as_posix()}",
        bus="inprocess",
        create_tables=True,
        migrate_on_start=False,
        demo_data=True,
        dev_identity=True,
        jwks_url=None,
        jwt_public_key=None,
    )


def build_platform(data_dir: Path, *, specs: Sequence[ServiceSpec] | None = None) -> FastAPI:
    """One app: each service under `/<name>`, the dev identity provider under `/auth`, a home page."""
    data_dir.mkdir(parents=True, exist_ok=True)
    bus = InProcessBus()
    mounted = [
        MountedService(
            spec.name, spec.title, create_service_app(spec, embedded_settings(spec, data_dir), bus=bus)
        )
        for spec in (load_specs() if specs is None else specs)
    ]
    identity = DevIdentityProvider.from_settings(ServiceSettings(service_name="auth", data_dir=data_dir))
    app = FastAPI(title="CityBlocks", lifespan=_lifespan(mounted, bus), docs_url=None, redoc_url=None)
    app.state.services = mounted
    app.state.bus = bus
    install_problem_handlers(app)
    _add_home(app, mounted, data_dir)
    app.mount("/auth", devidp_app(identity))
    for service in mounted:
        app.mount(f"/{service.name}", service.app)
    return app


def _lifespan(
    mounted: Sequence[MountedService], bus: InProcessBus
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Starlette does not run the lifespan of mounted apps; without this no service would have a database.
        async with AsyncExitStack() as stack:
            for service in mounted:
                await stack.enter_async_context(service.app.router.lifespan_context(service.app))
            # Every service subscribed in its lifespan; only now may the shared bus start. It stops first.
            await bus.start()
            stack.push_async_callback(bus.stop)
            log.info("embedded platform started with %d services", len(mounted))
            yield

    return lifespan


def _add_home(app: FastAPI, mounted: Sequence[MountedService], data_dir: Path) -> None:
    @app.get("/platform", response_class=HTMLResponse, include_in_schema=False)
    async def platform_page() -> HTMLResponse:
        statuses = await service_statuses(mounted)
        return HTMLResponse(render_home(statuses, data_dir))

    @app.get("/", include_in_schema=False)
    async def home() -> Response:
        # People start in the console when it is mounted; the platform page stays at /platform for developers.
        if any(service.name == CONSOLE for service in mounted):
            return RedirectResponse("console/", status_code=307)
        return await platform_page()

    @app.get("/services")
    async def services() -> list[ServiceStatus]:
        """Every mounted service with its readiness."""
        return await service_statuses(mounted)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "platform"}


async def service_statuses(mounted: Sequence[MountedService]) -> list[ServiceStatus]:
    return list(await asyncio.gather(*(_status(service) for service in mounted)))


async def _status(service: MountedService) -> ServiceStatus:
    # In-process call to the mounted app's own readiness route: the same check a load balancer makes.
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://embedded", timeout=HEALTH_TIMEOUT_S
        ) as c:
            response = await asyncio.wait_for(c.get("/ready"), HEALTH_TIMEOUT_S)
        ready = response.status_code == 200
        checks = response.json().get("checks", {})
        detail = ", ".join(f"{name}: {result}" for name, result in checks.items()) or response.reason_phrase
    except Exception as exc:
        ready, detail = False, f"no answer ({type(exc).__name__})"
    return ServiceStatus(
        name=service.name, title=service.title, docs=f"{service.name}/docs", ready=ready, detail=detail
    )


def render_home(statuses: Sequence[ServiceStatus], data_dir: Path) -> str:
    template = Template(resources.files("cityblocks").joinpath("home/index.html").read_text(encoding="utf-8"))
    return template.substitute(services=_services_table(statuses), data_dir=html.escape(str(data_dir)))


def _services_table(statuses: Sequence[ServiceStatus]) -> str:
    if not statuses:
        return "<p>No services are mounted yet.</p>"
    rows = "\n".join(_service_row(status) for status in statuses)
    head = "<tr><th>Service</th><th>Path</th><th>API</th><th>Health</th></tr>"
    return f"<table>\n{head}\n{rows}\n</table>"


def _service_row(status: ServiceStatus) -> str:
    name = html.escape(status.name)
    badge = "ready" if status.ready else "not-ready"
    label = "ready" if status.ready else "not ready"
    return (
        f"<tr><td>{html.escape(status.title)}</td><td><code>/{name}</code></td>"
        f'<td><a href="{name}/docs">docs</a> · <a href="{name}/openapi.json">OpenAPI</a></td>'
        f'<td><a href="{name}/ready" class="status {badge}" title="{html.escape(status.detail)}">'
        f"{label}</a></td></tr>"
    )


class _AnnouncingServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # False when the port could not be bound
            config = self.config
            print(f"CityBlocks is ready on http://{config.host}:{config.port}/", flush=True)


def serve(host: str = "127.0.0.1", port: int = 8000, data_dir: Path = Path("var")) -> None:
    """Run the embedded platform until interrupted; prints the URL once it accepts connections."""
    # Open live feeds (server-sent events) would otherwise hold Ctrl-C until the browser lets go.
    config = uvicorn.Config(
        build_platform(data_dir), host=host, port=port, lifespan="on", timeout_graceful_shutdown=2
    )
    # uvicorn shuts down cleanly on Ctrl-C, then re-raises the interrupt; its traceback would only be noise.
    with contextlib.suppress(KeyboardInterrupt):
        _AnnouncingServer(config).run()
