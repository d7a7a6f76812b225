"""The market service's composition root: settings, error table, SPEC and create_app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from market import api, checkin, demo, domain, handlers, store
from market.settings import Settings
from servicekit.app import create_service_app
from servicekit.service import ServiceSpec

__all__ = ["SPEC", "Settings", "create_app"]

SPEC = ServiceSpec(
    name="market",
    title="Market",
    description="Hasselt's Slimme Markten: market plans, traders, subscriptions, daily-place applications, "
    "fair stall allocation (CP-SAT), check-in by QR code, fees and the public market-day view.",
    metadata=store.metadata,
    routers=[api.router],
    subscriptions=handlers.SUBSCRIPTIONS,
    error_statuses={domain.DomainError: 422, checkin.InvalidCheckInCode: 422},
    startup=[demo.seed_demo_data],
    settings_type=Settings,
    migrations=Path(__file__).parent / "migrations",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)
