"""Every service with tables has Alembic migrations that build, from an empty database, exactly its models."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from cityblocks.services import SERVICES
from eventbus.tables import metadata as eventbus_metadata
from servicekit.db import create_engine
from servicekit.migrations import upgrade_head
from servicekit.service import ServiceSpec


def specs_with_tables() -> list[ServiceSpec]:
    specs = [importlib.import_module(entry.module).SPEC for entry in SERVICES]
    return [spec for spec in specs if spec.metadata.tables]


def differences(connection: Connection, metadatas: list[MetaData]) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadatas))


async def migrated_differences(spec: ServiceSpec, url: str) -> list[Any]:
    has_migrations = spec.migrations is not None and (spec.migrations / "env.py").is_file()
    assert spec.migrations is not None and has_migrations, f"{spec.name} has no migrations"
    await upgrade_head(spec.migrations, url)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(differences, [spec.metadata, eventbus_metadata])
    finally:
        await engine.dispose()


@pytest.mark.parametrize("spec", specs_with_tables(), ids=lambda spec: spec.name)
async def test_migrations_from_empty_match_the_models_on_sqlite(spec: ServiceSpec, tmp_path: Path) -> None:
    assert await migrated_differences(spec, f"sqlite+aiosqlite:///{tmp_path}/{spec.name}.db") == []


@pytest.mark.postgres
@pytest.mark.parametrize("spec", specs_with_tables(), ids=lambda spec: spec.name)
async def test_migrations_from_empty_match_the_models_on_postgresql(
    spec: ServiceSpec, postgres_url: str
) -> None:
    assert await migrated_differences(spec, postgres_url) == []
