"""The Alembic migrations build exactly the tables the service's metadata describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from eventbus.tables import metadata as eventbus_metadata
from market.app import SPEC
from market.store import metadata
from servicekit.db import create_engine
from servicekit.migrations import upgrade_head


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return [d for d in compare_metadata(context, metadata) if _ours(d)]


def _ours(difference: Any) -> bool:
    # Only the market's own tables: the eventbus owns (and migrates) its tables' shape.
    text = repr(difference)
    return not any(name in text for name in eventbus_metadata.tables)


async def test_migrations_match_the_tables(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'market.db'}"
    assert SPEC.migrations is not None
    await upgrade_head(SPEC.migrations, url)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
    finally:
        await engine.dispose()
