"""Alembic wiring: run a service's `migrations/` folder from code, and the shared body of every `env.py`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from servicekit.db import create_engine, is_sqlite

# Any fixed 64-bit number, the same in every replica of every service (each service has its own database).
MIGRATION_LOCK_KEY = 0x43697479426C6B73

ENV_PY = '''"""Alembic environment of this service: the shared servicekit body with this service's tables."""

from servicekit.migrations import run_env

from {package}.store import metadata

run_env(metadata)
'''

SCRIPT_PY_MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    """An Alembic Config for a service's migrations folder (no alembic.ini) pointing at an async URL."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    # ConfigParser interpolates %, which appears in URL-encoded passwords.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def upgrade_head(migrations_dir: Path, database_url: str) -> None:
    """Apply every migration; Alembic is synchronous and env.py runs its own loop, so it gets a thread."""
    config = alembic_config(migrations_dir, database_url)
    await asyncio.to_thread(command.upgrade, config, "head")


async def revision(
    migrations_dir: Path, database_url: str, message: str, *, autogenerate: bool = True
) -> None:
    """Write a new revision, comparing the database at `database_url` with the service's metadata."""
    config = alembic_config(migrations_dir, database_url)
    await asyncio.to_thread(command.revision, config, message=message, autogenerate=autogenerate)


def init_migrations(migrations_dir: Path, package: str) -> None:
    """Create a service's migrations folder: the three-line env.py, the revision template and versions/."""
    (migrations_dir / "versions").mkdir(parents=True, exist_ok=True)
    env_py = migrations_dir / "env.py"
    if not env_py.exists():
        env_py.write_text(ENV_PY.format(package=package))
    (migrations_dir / "script.py.mako").write_text(SCRIPT_PY_MAKO)


def run_env(target_metadata: MetaData | Sequence[MetaData], *, include_eventbus: bool = True) -> None:
    """The body of a service's migrations/env.py; the eventbus tables (outbox, inbox, ...) come along."""
    metadatas = [target_metadata] if isinstance(target_metadata, MetaData) else list(target_metadata)
    if include_eventbus:
        from eventbus.tables import metadata as eventbus_metadata

        if eventbus_metadata not in metadatas:
            metadatas.append(eventbus_metadata)
    url = _database_url()
    if context.is_offline_mode():
        context.configure(
            url=url, target_metadata=metadatas, literal_binds=True, render_as_batch=is_sqlite(url)
        )
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_online(url, metadatas))


def _database_url() -> str:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url in the Alembic config or DATABASE_URL")
    return url


async def _run_online(url: str, metadatas: list[MetaData]) -> None:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_migrations, metadatas, is_sqlite(url))
    finally:
        await engine.dispose()


def _run_migrations(connection: Connection, metadatas: list[MetaData], sqlite: bool) -> None:
    # Batch mode lets SQLite run ALTER TABLE style migrations by copying the table.
    context.configure(connection=connection, target_metadata=metadatas, render_as_batch=sqlite)
    with context.begin_transaction():
        if not sqlite:
            # Replicas start together: one upgrades, the others wait here, then find the head applied.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()
