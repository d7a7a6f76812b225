"""Fixtures: the service with Hasselt's and Geel's demo data on SQLite, entered through its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mobility_credit.app import create_app
from mobility_credit.testing import World, settings_for


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    settings = settings_for(tmp_path)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mobility") as client:
            yield World(app, client, settings)
