"""The open-data service in-process for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from opendata.app import create_app
from opendata.testing import OpenData, settings_for


@pytest.fixture
async def opendata(tmp_path: Path) -> AsyncIterator[OpenData]:
    settings = settings_for(tmp_path)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://opendata.test") as client:
            yield OpenData(app, client, settings)
