"""The market service's settings (env prefix `MARKET_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MARKET_", extra="ignore")

    service_name: str = "market"
    solver_time_limit_s: float = 10.0
    # Tests and demos may run the release round before the market's release time.
    enforce_release_time: bool = True
    # HMAC key of check-in codes; empty: a random key in the data dir, shared by the service's processes.
    checkin_secret: str = ""

    def checkin_key(self) -> bytes:
        return self.signing_key(self.checkin_secret, "market-checkin.key")
