"""The mobility-credit service's composition root: settings, error table, SPEC and create_app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

import ledger
from mobility_credit import api, demo, handlers, store
from mobility_credit.handlers.expiry import start_sweeper
from mobility_credit.handlers.settlement import CityAccount
from servicekit.app import create_service_app
from servicekit.service import ServiceContext, ServiceSpec
from servicekit.settings import ServiceSettings

# Each ledger transaction holds one journal chain's head until it commits: enough chains for concurrency.
JOURNAL_CHAINS = 32


class CityBankAccount(BaseModel):
    name: str
    iban: str
    bic: str | None = None
    kbo: str | None = None


# Made-up accounts with valid check digits; production sets MOBILITY_CREDIT_CITY_BANK_ACCOUNTS (JSON).
_DEMO_CITY_ACCOUNTS = {
    "71022": CityBankAccount(
        name="Stad Hasselt", iban="BE10735000001604", bic="KREDBEBB", kbo="0207.005.027"
    ),
    "13008": CityBankAccount(name="Stad Geel", iban="BE77363000009942", bic="BBRUBEBB", kbo="0207.123.011"),
}


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MOBILITY_CREDIT_", extra="ignore")

    service_name: str = "mobility-credit"
    sweep_interval_s: float = 30.0
    # Trip payments share transactions: at most this many in flight, each with at most this many payments.
    trip_batches_in_flight: int = Field(default=2, ge=1)
    trip_batch_max: int = Field(default=200, ge=1)
    city_bank_accounts: dict[str, CityBankAccount] = _DEMO_CITY_ACCOUNTS

    def city_account(self, tenant: str) -> CityAccount:
        account = self.city_bank_accounts.get(tenant)
        if account is None:
            return CityAccount(f"Gemeente {tenant}", "BE10735000001604", None, None)
        return CityAccount(account.name, account.iban, account.bic, account.kbo)


async def install_ledger(context: ServiceContext) -> None:
    """Startup hook: the ledger's tables and journal heads live in the service's own database."""
    if not context.settings.create_tables:
        return
    async with context.engine.begin() as connection:
        await connection.run_sync(ledger.metadata.create_all)
        await ledger.install_heads(connection, JOURNAL_CHAINS)


SPEC = ServiceSpec(
    name="mobility-credit",
    title="Mobility credit",
    description="Mobility budgets on a double-entry ledger: trips, holds, expiry, provider settlement.",
    metadata=store.metadata,
    routers=[api.router],
    subscriptions=handlers.SUBSCRIPTIONS,
    error_statuses=api.ERROR_STATUSES,
    startup=[install_ledger, demo.seed_demo_data, start_sweeper],
    settings_type=Settings,
    migrations=Path(__file__).parent / "migrations",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)
