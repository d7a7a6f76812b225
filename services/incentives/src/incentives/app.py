"""The incentives service's composition root: settings, error table, SPEC and create_app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError

from incentives import api, demo, domain, handlers, rules, store
from incentives.settings import Settings
from ledger import install_heads
from ledger import metadata as ledger_metadata
from servicekit.app import create_service_app
from servicekit.db import create_all
from servicekit.service import ServiceContext, ServiceSpec

# Each ledger transaction holds one journal chain's head until it commits: enough chains that redemptions and
# the rule engine's batches commit side by side instead of one after the other.
JOURNAL_CHAINS = 16


async def create_ledger_tables(context: ServiceContext) -> None:
    """The ledger's tables (with their append-only triggers) live in this service's database too.

    They are created by the ledger's own DDL (idempotent), also when migrations run: Alembic would create them
    without the triggers that keep the journal append-only.
    """
    await create_all(context.engine, ledger_metadata)
    try:
        async with context.engine.begin() as connection:
            await install_heads(connection, JOURNAL_CHAINS)
    except IntegrityError:
        pass  # another worker of this service installed them at the same moment


SPEC = ServiceSpec(
    name="incentives",
    title="Incentives",
    description="Coins for behaviour the city wants, spent at local merchants, repaid in euro.",
    metadata=store.metadata,
    routers=[api.router],
    subscriptions=handlers.SUBSCRIPTIONS,
    error_statuses={
        domain.NotFound: 404,
        domain.Conflict: 409,
        domain.InsufficientCoins: 409,
        domain.CoinNotAccepted: 409,
        domain.QrAlreadyUsed: 409,
        domain.QrRejected: 400,
        domain.VelocityLimitExceeded: 429,
        domain.InvalidParty: 422,
        rules.RuleError: 422,
    },
    startup=[create_ledger_tables, demo.seed_demo_data],
    settings_type=Settings,
    migrations=Path(__file__).parent / "migrations",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or Settings())
