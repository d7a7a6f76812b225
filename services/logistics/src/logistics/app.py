"""The logistics service's composition root: the error table, SPEC and create_app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from logistics import api, domain, handlers, store
from logistics.handlers import demo, planning
from logistics.handlers.errors import Conflict, NotFound
from logistics.settings import Settings
from servicekit.app import create_service_app
from servicekit.service import ServiceSpec

SPEC = ServiceSpec(
    name="logistics",
    title="Logistics",
    description="City-centre deliveries bundled at hubs, planned with OR-Tools, dispatched to drivers.",
    metadata=store.metadata,
    routers=[api.router],
    subscriptions=handlers.SUBSCRIPTIONS,
    error_statuses={NotFound: 404, Conflict: 409, domain.InvalidField: 422},
    startup=[planning.fail_abandoned_runs, demo.seed_demo_data],
    settings_type=Settings,
    migrations=Path(__file__).parent / "migrations",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)


__all__ = ["SPEC", "Settings", "create_app"]
