"""Engines for SQLite and PostgreSQL, and a service's Alembic migrations run from code."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit import db
from servicekit.db import create_all, create_engine, create_sessionmaker, ping
from servicekit.migrations import init_migrations, revision, upgrade_head

metadata = MetaData()
counters = Table("counters", metadata, Column("name", String(20), primary_key=True), Column("value", Integer))


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/nested/dir/x.db")
    try:
        async with engine.connect() as connection:
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
            foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()
            busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
    finally:
        await engine.dispose()

    assert (journal, foreign_keys, busy) == ("wal", 1, 5000)


async def test_sqlite_enforces_foreign_keys(tmp_path: Path) -> None:
    schema = MetaData()
    Table("parent", schema, Column("id", Integer, primary_key=True))
    child = Table(
        "child",
        schema,
        Column("id", Integer, primary_key=True),
        Column("parent_id", Integer, ForeignKey("parent.id")),
    )
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/fk.db")
    try:
        await create_all(engine, schema)
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(child.insert().values(id=1, parent_id=42))
    finally:
        await engine.dispose()


async def test_concurrent_read_modify_write_transactions_on_sqlite_all_succeed(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    sessionmaker = create_sessionmaker(engine)
    await create_all(engine, metadata)
    async with sessionmaker.begin() as session:
        await session.execute(counters.insert().values(name="n", value=0))

    async def increment() -> None:
        async with sessionmaker.begin() as session:
            value = (await session.execute(select(counters.c.value))).scalar_one()
            await asyncio.sleep(0)
            await session.execute(update(counters).values(value=value + 1))

    await asyncio.gather(*(increment() for _ in range(20)))
    async with sessionmaker() as session:
        final = (await session.execute(select(counters.c.value))).scalar_one()
    await engine.dispose()

    assert final == 20


async def test_ping_answers_on_a_live_database(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/p.db")
    await ping(engine)
    await engine.dispose()


def write_migrations(directory: Path, *, slow: bool = False) -> None:
    """A migrations folder as a service keeps it: the three-line env.py and one revision (`slow`: 2 s)."""
    init_migrations(directory, package="unused")
    (directory / "env.py").write_text(
        textwrap.dedent(
            """
            from servicekit.migrations import run_env
            from sqlalchemy import MetaData
            run_env(MetaData())
            """
        )
    )
    (directory / "versions" / "0001_counters.py").write_text(
        textwrap.dedent(
            '''
            """Counters."""
            import sqlalchemy as sa
            from alembic import op

            revision = "0001"
            down_revision = None
            branch_labels = None
            depends_on = None
            SLOW = {slow}


            def upgrade() -> None:
                if SLOW:
                    op.execute("SELECT pg_sleep(2)")
                op.create_table(
                    "counters",
                    sa.Column("name", sa.String(20), primary_key=True),
                    sa.Column("value", sa.Integer),
                )


            def downgrade() -> None:
                op.drop_table("counters")
            '''
        ).replace("{slow}", str(slow))
    )


async def assert_migrated(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    finally:
        await engine.dispose()
    assert "counters" in tables
    assert version == "0001"


async def test_migrations_upgrade_a_sqlite_database_to_head(tmp_path: Path) -> None:
    write_migrations(tmp_path / "migrations")
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"

    await upgrade_head(tmp_path / "migrations", url)
    await upgrade_head(tmp_path / "migrations", url)  # a second run finds nothing to do

    await assert_migrated(url)


async def test_an_autogenerated_first_revision_creates_the_service_and_eventbus_tables(
    tmp_path: Path,
) -> None:
    migrations = tmp_path / "migrations"
    init_migrations(migrations, package="unused")
    (migrations / "env.py").write_text(
        "from servicekit.migrations import run_env\nfrom sqlalchemy import MetaData, Table, Column, Integer\n"
        "metadata = MetaData()\nTable('stalls', metadata, Column('id', Integer, primary_key=True))\n"
        "run_env(metadata)\n"
    )
    url = f"sqlite+aiosqlite:///{tmp_path}/auto.db"

    await revision(migrations, url, "first tables")
    await upgrade_head(migrations, url)

    engine = create_engine(url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    await engine.dispose()
    assert {"stalls", "outbox", "inbox", "dead_letters"} <= set(tables)
    assert len(list((migrations / "versions").glob("*_first_tables.py"))) == 1


@pytest.mark.postgres
async def test_migrations_upgrade_a_postgresql_database_to_head(tmp_path: Path, postgres_url: str) -> None:
    write_migrations(tmp_path / "migrations")

    await upgrade_head(tmp_path / "migrations", postgres_url)

    await assert_migrated(postgres_url)


@pytest.mark.postgres
async def test_replicas_starting_together_upgrade_a_postgresql_database_once(
    tmp_path: Path, postgres_url: str
) -> None:
    # Slow enough that all three are inside the upgrade at once.
    write_migrations(tmp_path / "migrations", slow=True)

    # Separate processes, as replicas are: Alembic's `context` is process-global, so threads cannot stand in.
    script = "import asyncio, sys; from pathlib import Path; from servicekit.migrations import upgrade_head; "
    script += "asyncio.run(upgrade_head(Path(sys.argv[1]), sys.argv[2]))"
    replicas = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, str(tmp_path / "migrations"), postgres_url
        )
        for _ in range(3)
    ]
    assert [await replica.wait() for replica in replicas] == [0, 0, 0]

    await assert_migrated(postgres_url)


@pytest.mark.postgres
async def test_the_postgresql_engine_serves_concurrent_sessions(postgres_url: str) -> None:
    engine = create_engine(postgres_url, pool_size=2, max_overflow=2)
    sessionmaker = create_sessionmaker(engine)
    try:
        await create_all(engine, metadata)
        await ping(engine)

        async def insert(n: int) -> None:
            async with sessionmaker.begin() as session:
                await session.execute(counters.insert().values(name=f"c{n}", value=n))

        await asyncio.gather(*(insert(n) for n in range(10)))
        async with sessionmaker() as session:
            total = (await session.execute(select(counters.c.value))).scalars().all()
    finally:
        await engine.dispose()

    assert sorted(total) == list(range(10))


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


@pytest.mark.postgres
async def test_a_pooled_connection_killed_while_idle_is_replaced_without_an_error(postgres_url: str) -> None:
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    admin = create_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        first = await _backend_pid(engine)
        # As a server restart or an administrator would: the backend behind the idle pooled connection goes.
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        for _ in range(100):  # the driver learns of it when the socket closes, without a round trip
            await asyncio.sleep(0.01)
            second = await _backend_pid(engine)
            if second != first:
                break

        assert second != first
    finally:
        await engine.dispose()
        await admin.dispose()


@pytest.mark.postgres
async def test_a_connection_idle_longer_than_the_bypass_window_is_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    pings: list[object] = []
    real_ping = engine.sync_engine.dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(engine.sync_engine.dialect, "do_ping", counted_ping)
    try:
        await _backend_pid(engine)
        await _backend_pid(engine)
        assert len(pings) == 1  # the first checkout is a fresh connection, the second a reused one
        monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 60.0)
        await _backend_pid(engine)
        assert len(pings) == 1  # back within the window: handed out as it is
    finally:
        await engine.dispose()
