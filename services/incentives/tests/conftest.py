"""The running incentives service with its demo data, started from a database seeded once per session."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from incentives.testing import Service, running_service, settings_for


@pytest.fixture(scope="session")
def seeded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose database holds the tables and demo data (and the dev identity key): made once."""
    path = tmp_path_factory.mktemp("incentives-seeded")

    async def seed() -> None:
        async with running_service(settings_for(path)):
            pass

    asyncio.run(seed())
    return path


@pytest.fixture
async def service(tmp_path: Path, seeded_dir: Path) -> AsyncIterator[Service]:
    # A copy of the seeded files: the start-up finds its demo data and adds nothing.
    shutil.copytree(seeded_dir, tmp_path, dirs_exist_ok=True)
    async with running_service(settings_for(tmp_path)) as running:
        yield running
