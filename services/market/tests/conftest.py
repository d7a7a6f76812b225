"""Fixtures for the market API tests: a running app on SQLite, demo users' tokens, a small market builder."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from eventbus.tables import outbox
from market import demo
from market.app import Settings, create_app
from servicekit.devidp import KEY_FILE, DevIdentityProvider, demo_user, load_or_create_key


def small_plan() -> dict[str, Any]:
    """Two rows of four 3 m stalls near the Kolonel Dusartplein; B1 sells fish only, A4 has electricity."""
    rows = [
        demo.RowSpec("A", 4, 4.0, (), obstacle_after=2),
        demo.RowSpec("B", 4, 0.0, (), {1: "vis"}),
    ]
    plan = demo.build_plan((50.9307, 5.3378), rows).model_dump(mode="json")
    plan["rows"][0]["stalls"][3]["features"] = ["electricity"]
    return plan


def market_body(name: str = "Testmarkt", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "place": {
            "name": "Kolonel Dusartplein",
            "address": "Kolonel Dusartplein, 3500 Hasselt",
            "lat": 50.9307,
            "lon": 5.3378,
        },
        "weekdays": [0, 1, 2, 3, 4, 5, 6],
        "opens": "08:00",
        "closes": "13:00",
        "setup_starts": "06:00",
        "setup_ends": "07:45",
        "regulation": {
            "quotas": {"vis": 1},
            "tariff": {"per_metre_cents": 150, "per_stall_cents": 200, "electricity_cents": 350},
        },
        "plan": small_plan(),
    }
    return body | overrides


def tomorrow() -> date:
    return datetime.now(UTC).date() + timedelta(days=1)


@dataclass
class Api:
    """The app under test, with helpers speaking as demo users."""

    client: httpx.AsyncClient
    app: Any
    identity: DevIdentityProvider
    kbo_serial: list[int] = field(default_factory=lambda: [0])

    def as_(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.identity.issue(demo_user(username))}"}

    async def market(self, master: str = "hasselt.market_master", **overrides: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/markets", json=market_body(**overrides), headers=self.as_(master)
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def day(self, market_id: str, master: str = "hasselt.market_master") -> dict[str, Any]:
        when = tomorrow().isoformat()
        response = await self.client.post(
            f"/v1/markets/{market_id}/days", json={"start": when, "end": when}, headers=self.as_(master)
        )
        assert response.status_code == 201, response.text
        return dict(response.json()[0])

    def kbo(self) -> str:
        self.kbo_serial[0] += 1
        return demo.kbo_number(90_000 + self.kbo_serial[0])

    async def profile(self, username: str, **overrides: Any) -> dict[str, Any]:
        body = {
            "kbo_number": self.kbo(),
            "name": f"Handelszaak {username}",
            "products": ["honing", "siroop"],
            "specialisation": "streekproducten",
            "insurance_valid_until": (tomorrow() + timedelta(days=365)).isoformat(),
        } | overrides
        response = await self.client.put("/v1/me", json=body, headers=self.as_(username))
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def trader(self, master: str = "hasselt.market_master", **overrides: Any) -> dict[str, Any]:
        body = {
            "kbo_number": self.kbo(),
            "name": "Viswinkel Maes",
            "products": ["verse vis"],
            "specialisation": "vis",
            "insurance_valid_until": (tomorrow() + timedelta(days=365)).isoformat(),
            "food_registration": "FAVV-1",
        } | overrides
        response = await self.client.post("/v1/traders", json=body, headers=self.as_(master))
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def event_types(self) -> list[str]:
        async with self.app.state.context.sessionmaker() as session:
            # The market's own events; the platform's audit trail of admin actions sits in the same outbox.
            query = select(outbox.c.type).where(outbox.c.type.like("be.cityblocks.market.%"))
            return [row.type for row in await session.execute(query.order_by(outbox.c.seq))]

    async def events(self, name: str) -> list[dict[str, Any]]:
        async with self.app.state.context.sessionmaker() as session:
            rows = await session.execute(select(outbox.c.type, outbox.c.data).order_by(outbox.c.seq))
            return [row.data for row in rows if row.type == f"be.cityblocks.market.{name}.v1"]


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "solver_time_limit_s": 3.0,
        "enforce_release_time": False,
        "log_level": "WARNING",
    }
    return Settings(**(values | overrides))


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dev identity key for the whole run: making an RSA key per test would cost most of its time."""
    folder = tmp_path_factory.mktemp("devidp")
    load_or_create_key(folder)
    return folder / KEY_FILE


@pytest.fixture
def market_settings(tmp_path: Path, signing_key: Path) -> Settings:
    settings = settings_for(tmp_path)
    settings.devidp_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(signing_key, settings.devidp_dir / KEY_FILE)
    return settings


@pytest.fixture
async def api(market_settings: Settings) -> AsyncIterator[Api]:
    app = create_app(market_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://market") as client:
            yield Api(client, app, DevIdentityProvider.from_settings(market_settings))
        await relay_idle(app)


async def relay_idle(app: Any, timeout_s: float = 5.0) -> None:
    """Wait until the outbox relay has published everything.

    Stopping the relay while it is inside a SQLite transaction can lose the cancellation and hang the
    shutdown (reported to the eventbus owner); letting it go idle first keeps the tests independent of that.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        async with app.state.context.sessionmaker() as session:
            unsent = await session.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            )
        if not unsent:
            await asyncio.sleep(0.05)
            return
        await asyncio.sleep(0.02)


@pytest.fixture
def market_json() -> Any:
    """A factory of valid market bodies to break in tests."""
    return market_body
