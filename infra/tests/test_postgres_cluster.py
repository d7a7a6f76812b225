"""The session PostgreSQL server hands every test its own empty database."""

import uuid

import asyncpg
import pytest

from cityblocks.postgres import PostgresCluster

pytestmark = pytest.mark.postgres


def plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_fresh_database_accepts_queries(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://")
    connection = await asyncpg.connect(plain(postgres_url))
    try:
        await connection.execute("CREATE TABLE counter (id int PRIMARY KEY, value bigint NOT NULL)")
        await connection.execute("INSERT INTO counter VALUES (1, 41)")
        await connection.execute("UPDATE counter SET value = value + 1 WHERE id = 1")
        assert await connection.fetchval("SELECT value FROM counter WHERE id = 1") == 42
    finally:
        await connection.close()


async def test_each_database_created_is_empty_and_separate(postgres_cluster: PostgresCluster) -> None:
    # Names of this run: the session server may be a long-lived one that kept an earlier run's databases.
    run = uuid.uuid4().hex[:8]
    first = postgres_cluster.create_database(f"infra_separate_a_{run}")
    second = postgres_cluster.create_database(f"infra_separate_b_{run}")
    connection = await asyncpg.connect(plain(first))
    try:
        await connection.execute("CREATE TABLE only_here (id int)")
    finally:
        await connection.close()
    connection = await asyncpg.connect(plain(second))
    try:
        tables = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    assert tables == []
