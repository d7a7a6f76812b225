"""The running incentives service with its demo data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from incentives.testing import Service, running_service, settings_for


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(settings_for(tmp_path)) as running:
        yield running
