"""Settings of the incentives service (env prefix `INCENTIVES_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from incentives import domain
from incentives.settlement import Payer
from servicekit.settings import ServiceSettings

# The municipalities' payout accounts on the pain.001 file (demo values; production sets them per tenant).
DEFAULT_PAYERS = {"13008": "Stad Geel|BE68539007547034", "71022": "Stad Hasselt|BE62510007547061"}


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INCENTIVES_", extra="ignore")

    service_name: str = "incentives"
    # All three partitions of a topic at once on PostgreSQL: the rule engine's Python work for one overlaps
    # the others' round trips and commits (bench/incentives.py: 1.3-1.4 times the events/s of one).
    consumer_concurrency: int = Field(default=3, ge=1, le=16)
    # Key signing wallet QR codes; empty: a random key kept in the data dir.
    qr_secret: str = ""
    qr_ttl_s: int = 120
    velocity_window_s: int = 3_600
    wallet_max_redemptions: int = 20
    wallet_max_coins: int = 2_000
    merchant_max_coins: int = 100_000
    # "<NIS>": "<name>|<IBAN>"
    payers: dict[str, str] = DEFAULT_PAYERS

    def velocity_limits(self) -> domain.VelocityLimits:
        return domain.VelocityLimits(
            self.velocity_window_s,
            self.wallet_max_redemptions,
            self.wallet_max_coins,
            self.merchant_max_coins,
        )

    def payer(self, tenant: str) -> Payer:
        name, _, iban = self.payers.get(tenant, f"Municipality {tenant}|").partition("|")
        if not iban:
            raise domain.Conflict(f"no payout account is configured for municipality {tenant}")
        return Payer(name, domain.normalise_iban(iban))
