"""The async engine and sessions for SQLite (aiosqlite, embedded) and PostgreSQL (asyncpg, production)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, MetaData, TypeDecorator, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    busy_timeout_ms: int = 5_000,
    echo: bool = False,
) -> AsyncEngine:
    """An engine tuned for the backend: WAL and immediate transactions on SQLite, a pool on PostgreSQL."""
    if is_sqlite(url):
        return _sqlite_engine(url, busy_timeout_ms=busy_timeout_ms, echo=echo)
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1_800, echo=echo
    )
    _check_on_checkout(engine)
    return engine


# A connection back in the pool for less than this is handed out again without a ping (HikariCP's
# alive-bypass window): under load every checkout would otherwise cost a round trip or three.
PING_AFTER_IDLE_S = 1.0


def _check_on_checkout(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling, cheap when busy: a connection the driver knows is closed is replaced
    for free; one idle for longer than PING_AFTER_IDLE_S is pinged first; a fresh one is used as it is.

    A server restart closes the idle connections' sockets, which the driver notices without a round trip; a
    connection in use when the server goes away fails its statement, and SQLAlchemy then invalidates every
    connection of the pool that is older than that failure.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None:
            return  # connected just now
        driver = record.driver_connection
        if driver is not None and driver.is_closed():
            raise exc.DisconnectionError("the connection was closed while it was idle in the pool")
        if time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"the connection failed its ping: {error}") from error


def _sqlite_engine(url: str, *, busy_timeout_ms: int, echo: bool) -> AsyncEngine:
    parsed = make_url(url)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:")
    if not in_memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"echo": echo}
    if in_memory:
        # Every new connection to :memory: is a new empty database; keep exactly one.
        options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    engine = create_async_engine(url, **options)
    _configure_sqlite(engine, busy_timeout_ms=busy_timeout_ms, wal=not in_memory)
    return engine


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int, wal: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's implicit deferred BEGIN is replaced by ours below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY when another writer
        # got in between (busy_timeout does not help there); taking the write lock up front makes it wait.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def create_all(engine: AsyncEngine, *metadatas: MetaData) -> None:
    """Create missing tables (embedded and dev mode; production runs the Alembic migrations instead)."""
    async with engine.begin() as connection:
        for metadata in metadatas:
            await connection.run_sync(metadata.create_all)


async def ping(engine: AsyncEngine, *, timeout_s: float = 2.0) -> None:
    """Raise when the database does not answer `SELECT 1` in time."""
    async with asyncio.timeout(timeout_s), engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite (which keeps no zone: it is put back on reading)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
