"""The open-data service's composition root: settings, error table, SPEC and create_app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from opendata import api, demo, domain, handlers, store
from opendata.settings import Settings
from servicekit.app import create_service_app
from servicekit.service import ServiceSpec

SPEC = ServiceSpec(
    name="opendata",
    title="Open data",
    description=(
        "Open data of every municipality in OSLO terms: datasets in JSON-LD and CSV with small groups "
        "of citizens suppressed, a DCAT-AP Vlaanderen catalogue, and the public events as a Linked "
        "Data Event Stream."
    ),
    metadata=store.metadata,
    routers=[api.router],
    subscriptions=handlers.SUBSCRIPTIONS,
    error_statuses={domain.InvalidDistricts: 422},
    startup=[demo.seed],
    settings_type=Settings,
    migrations=Path(__file__).parent / "migrations",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or Settings())
