"""The services the runners start: one entry per service package that has an `app.py` with `create_app`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceEntry:
    """A service as the runners see it: mounted under `/<name>` embedded, on its own port distributed."""

    name: str
    module: str
    env_prefix: str
    port: int

    @property
    def factory(self) -> str:
        """The uvicorn `--factory` target of the service's app."""
        return f"{self.module}:create_app"

    @property
    def database(self) -> str:
        """Name of the service's own PostgreSQL database."""
        return self.name.replace("-", "_")

    def environment(self, database_url: str, kafka_bootstrap: str) -> dict[str, str]:
        """Settings for a distributed run: own database, the Kafka bus."""
        return {
            f"{self.env_prefix}DATABASE_URL": database_url,
            f"{self.env_prefix}BUS": "kafka",
            f"{self.env_prefix}KAFKA_BOOTSTRAP": kafka_bootstrap,
        }


# Add an entry when a service package gains `app.py` with `create_app`; ports count up from 8101.
SERVICES: tuple[ServiceEntry, ...] = (
    ServiceEntry("market", "market.app", "MARKET_", 8101),
    ServiceEntry("logistics", "logistics.app", "LOGISTICS_", 8102),
    ServiceEntry("mobility-credit", "mobility_credit.app", "MOBILITY_CREDIT_", 8103),
    ServiceEntry("incentives", "incentives.app", "INCENTIVES_", 8104),
    ServiceEntry("console", "console.app", "CONSOLE_", 8105),
    ServiceEntry("opendata", "opendata.app", "OPENDATA_", 8106),
)
