"""Ledger fixtures: a controllable clock and a ledger on every store (SQLite, PostgreSQL when marked)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledger import Ledger
from ledger.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("postgres-core", id="postgres-core", marks=pytest.mark.postgres),
]


@pytest.fixture(params=STORES)
async def ledger(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Ledger]:
    if request.param == "sqlite":
        store = Ledger.from_url(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", clock=clock, chains=2)
    else:
        url = request.getfixturevalue("postgres_url")
        store = Ledger.from_url(url, clock=clock, chains=4, fast_path=request.param == "postgres")
    await store.create_schema()
    try:
        yield store
    finally:
        await store.close()
