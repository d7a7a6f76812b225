"""Fixtures: the service with Hasselt's and Geel's demo data on SQLite, entered through its lifespan."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mobility_credit.app import create_app
from mobility_credit.testing import World, settings_for


async def _seed(data_dir: Path) -> None:
    app = create_app(settings_for(data_dir))
    async with app.router.lifespan_context(app):
        pass


@pytest.fixture(scope="session")
def seeded_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose database holds the demo data: each test starts from a copy (seeding is slow)."""
    data_dir = tmp_path_factory.mktemp("mobility-credit-seeded")
    asyncio.run(_seed(data_dir))
    return data_dir


@pytest.fixture
async def world(tmp_path: Path, seeded_data_dir: Path) -> AsyncIterator[World]:
    data_dir = tmp_path / "data"
    shutil.copytree(seeded_data_dir, data_dir)
    settings = settings_for(data_dir)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mobility") as client:
            yield World(app, client, settings)
