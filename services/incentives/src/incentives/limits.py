"""Limit rows per campaign, member and window: locked and read, then added to, one statement per batch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from eventbus import UnitOfWork
from incentives import caches, store

UsageKey = tuple[UUID, str, str]


async def lock(uow: UnitOfWork, keys: Iterable[UsageKey]) -> dict[UsageKey, int]:
    """Members' coins per campaign and window, rows locked until commit (read once per transaction)."""
    wanted = list(keys)
    seen = caches.usage_in(uow)
    # Locked in key order, so that concurrent transactions cannot deadlock on these rows.
    missing = sorted({key for key in wanted if key not in seen})
    if missing:
        session = uow.session
        rows: Sequence[Any]
        if session.get_bind().dialect.name == "postgresql":
            rows = (await session.execute(_claim(), _key_columns(missing))).all()
        else:
            rows = await _claim_portably(uow, missing)
        for campaign_id, member, window_key, coins in rows:
            seen[(campaign_id, member, window_key)] = int(coins)
    return {key: seen[key] for key in wanted}


def _key_arrays() -> list[sa.BindParameter[Any]]:
    """The keys as three arrays on PostgreSQL: campaigns `c`, members `m`, windows `w`."""
    return [
        sa.bindparam("c", type_=postgresql.ARRAY(sa.Uuid)),
        sa.bindparam("m", type_=postgresql.ARRAY(sa.String)),
        sa.bindparam("w", type_=postgresql.ARRAY(sa.String)),
    ]


def _key_columns(keys: Sequence[UsageKey]) -> dict[str, list[Any]]:
    campaigns, members, windows = (list(column) for column in zip(*keys, strict=True))
    return {"c": campaigns, "m": members, "w": windows}


@cache
def _claim() -> sa.TextClause:
    """Insert missing rows and lock all in one statement: a no-op update locks and returns an existing row."""
    return sa.text(
        "INSERT INTO limit_usage (campaign_id, member_id, window_key, coins) "
        "SELECT k.c, k.m, k.w, 0 FROM unnest(:c, :m, :w) WITH ORDINALITY AS k(c, m, w, n) ORDER BY k.n "
        "ON CONFLICT (campaign_id, member_id, window_key) DO UPDATE SET coins = limit_usage.coins "
        "RETURNING campaign_id, member_id, window_key, coins"
    ).bindparams(*_key_arrays())


async def _claim_portably(uow: UnitOfWork, missing: list[UsageKey]) -> Sequence[Any]:
    u = store.limit_usage
    rows = [{"campaign_id": c, "member_id": m, "window_key": w, "coins": 0} for c, m, w in missing]
    await uow.session.execute(store.upsert(uow.session)(u).on_conflict_do_nothing(), rows)
    key_columns = sa.tuple_(u.c.campaign_id, u.c.member_id, u.c.window_key)
    query = (
        sa.select(u.c.campaign_id, u.c.member_id, u.c.window_key, u.c.coins)
        .where(key_columns.in_(missing))
        .order_by(u.c.campaign_id, u.c.member_id, u.c.window_key)
        .with_for_update()
    )
    return (await uow.session.execute(query)).all()


async def add(uow: UnitOfWork, granted: Iterable[tuple[UsageKey, int]]) -> None:
    """Add what was granted to the locked rows (and to this transaction's memory of them)."""
    totals: dict[UsageKey, int] = {}
    for key, amount in granted:
        totals[key] = totals.get(key, 0) + amount
    if not totals:
        return
    session = uow.session
    if session.get_bind().dialect.name == "postgresql":
        keys = sorted(totals)
        await session.execute(_add(), {**_key_columns(keys), "g": [totals[key] for key in keys]})
    else:
        await _add_portably(uow, totals)
    seen = caches.usage_in(uow)
    for key, amount in totals.items():
        seen[key] += amount


@cache
def _add() -> sa.TextClause:
    return sa.text(
        "UPDATE limit_usage AS u SET coins = u.coins + k.g FROM unnest(:c, :m, :w, :g) AS k(c, m, w, g) "
        "WHERE u.campaign_id = k.c AND u.member_id = k.m AND u.window_key = k.w"
    ).bindparams(*_key_arrays(), sa.bindparam("g", type_=postgresql.ARRAY(sa.BigInteger)))


async def _add_portably(uow: UnitOfWork, totals: dict[UsageKey, int]) -> None:
    u = store.limit_usage
    stmt = (
        sa.update(u)
        .where(
            u.c.campaign_id == sa.bindparam("c"),
            u.c.member_id == sa.bindparam("m"),
            u.c.window_key == sa.bindparam("w"),
        )
        .values(coins=u.c.coins + sa.bindparam("g"))
    )
    # Core executemany of one UPDATE; the ORM's bulk path would want primary-key names as parameters.
    connection = await uow.session.connection()
    await connection.execute(stmt, [{"c": k[0], "m": k[1], "w": k[2], "g": g} for k, g in totals.items()])
