"""Per-database memory of what does not change or may lag briefly: wallets, coin types, merchants, rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from incentives import domain

# Rules of campaigns changed in another process are seen after at most this long (local changes at once).
RULES_TTL_S = 2.0


@dataclass
class DatabaseCaches:
    wallets: set[UUID] = field(default_factory=set)
    coin_types: dict[UUID, domain.CoinType] = field(default_factory=dict)
    # Merchant rows are written once (no route changes a merchant): only found ones are kept.
    merchants: dict[UUID, Any] = field(default_factory=dict)
    rules: dict[str, tuple[float, list[Any]]] = field(default_factory=dict)


# Keyed by the engine, so that two services (or tests) on different databases in one process never share.
_BY_ENGINE: WeakKeyDictionary[Engine, DatabaseCaches] = WeakKeyDictionary()


# Limit rows read (and locked) by a transaction still open: what it granted since is added as it goes.
_USAGE: WeakKeyDictionary[object, dict[tuple[UUID, str, str], int]] = WeakKeyDictionary()


def usage_in(transaction: object) -> dict[tuple[UUID, str, str], int]:
    found = _USAGE.get(transaction)
    if found is None:
        found = _USAGE[transaction] = {}
    return found


def of(session: AsyncSession) -> DatabaseCaches:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    found = _BY_ENGINE.get(engine)
    if found is None:
        found = _BY_ENGINE[engine] = DatabaseCaches()
    return found
