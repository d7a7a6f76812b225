"""Test helpers: the demo data's ids, callers acting as demo users, trip bodies, settings for a temp dir."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from fastapi import FastAPI

from mobility_credit import accounts, demo
from mobility_credit.app import Settings
from servicekit.auth import Principal
from servicekit.devidp import DemoUser, DevIdentityProvider, demo_user, demo_user_id

HASSELT, GEEL = demo.HASSELT, demo.GEEL
_keys = itertools.count()


def provider_id(name: str, tenant: str = HASSELT) -> UUID:
    return accounts.derived_id("demo-provider", tenant, name)


def scheme_id(name: str, tenant: str = HASSELT) -> UUID:
    return accounts.derived_id("demo-scheme", tenant, name)


DE_LIJN = provider_id("De Lijn")
BLUE_BIKE = provider_id("Blue-bike Hasselt")
TAXI = provider_id("Taxi Hasselt")
NMBS = provider_id("NMBS")
GEEL_BUS = provider_id("De Lijn Kempen", GEEL)
BUDGET = scheme_id("Mobiliteitsbudget Hasselt")
PREMIUM = scheme_id("Autovrij premie")
CITIZEN = demo_user_id("hasselt.citizen")


class Caller:
    """An HTTP client acting as one demo user."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.headers, **kwargs)

    async def post(
        self, path: str, json: Any = None, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.client.post(path, json=json, headers=headers, **kwargs)


class World:
    """The running service and a way to act as anyone."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, settings: Settings) -> None:
        self.app = app
        self.client = client
        self.identity = DevIdentityProvider.from_settings(settings)

    def as_user(self, username: str) -> Caller:
        return Caller(self.client, self.identity.issue(demo_user(username)))

    def as_citizen(self, subject: str, tenant: str = HASSELT) -> Caller:
        user = DemoUser(f"citizen-{subject}", "A citizen", ("citizen",), tenant)
        return Caller(self.client, self.identity.issue(user, sub=subject))

    @property
    def uow_factory(self) -> Any:
        return self.app.state.context.uow_factory


def principal_of(username: str) -> Principal:
    """The verified caller a demo login becomes, for calling handlers without HTTP."""
    user = demo_user(username)
    return Principal(subject=user.subject, roles=frozenset(user.roles), tenant=user.tenant)


def new_key() -> str:
    return f"key-{next(_keys)}"


def trip(
    citizen: str = CITIZEN,
    mode: str = "bus",
    total: int = 300,
    at: datetime | None = None,
    place: dict[str, Any] | None = None,
) -> dict[str, Any]:
    moment = at or datetime.now(UTC)
    return {
        "citizen_id": citizen,
        "mode": mode,
        "place": place or {"name": "Hasselt Kolonel Dusartplein", "lat": 50.931, "lon": 5.338},
        "consumed_at": moment.isoformat(),
        "total_cents": total,
    }


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "demo_data": True,
        "sweep_interval_s": 0,
        "log_json": False,
    }
    values.update(overrides)
    return Settings(**values)
