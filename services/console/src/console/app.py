"""The console's composition root: settings, SPEC and create_app of the web front end and its BFF."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from console import (
    feed,
    incentives_pages,
    kpi_pages,
    logistics_pages,
    market_pages,
    mobility_pages,
    oidc,
    ops,
    pages,
)
from servicekit.app import create_service_app
from servicekit.service import ServiceSpec
from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore")

    service_name: str = "console"
    # Where the services answer: `<services_url>/<name>`; unset means the origin the console was reached on
    # (the embedded platform mounts every service there). `service_urls` overrides single services.
    services_url: str | None = None
    service_urls: dict[str, str] = {}
    auth_url: str | None = None
    services: list[str] = ["market", "logistics", "mobility-credit", "incentives", "console"]
    service_timeout_s: float = 10.0
    service_connect_timeout_s: float = 2.0
    # Production login: the city's OpenID Connect provider (unset: the dev identity provider).
    oidc_issuer: str | None = None
    oidc_client_id: str = "cityblocks-console"
    oidc_client_secret: str | None = None
    oidc_scope: str = "openid profile"


SPEC = ServiceSpec(
    name="console",
    title="Console",
    description="Web front end for traders, citizens, merchants, operators, drivers and city admins.",
    metadata=feed.metadata,
    migrations=Path(__file__).parent / "migrations",
    routers=[
        pages.router,
        oidc.router,
        ops.router,
        market_pages.router,
        logistics_pages.router,
        incentives_pages.router,
        mobility_pages.router,
        kpi_pages.router,
    ],
    subscriptions=feed.SUBSCRIPTIONS,
    settings_type=Settings,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)
