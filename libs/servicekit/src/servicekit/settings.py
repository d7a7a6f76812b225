"""Settings every service shares, read from the environment under its own prefix (e.g. `MARKET_`)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Base settings; a service subclasses it, sets `service_name` and its env prefix, adds its fields."""

    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore")

    service_name: str = "service"
    data_dir: Path = Path("var")
    database_url: str = ""
    create_tables: bool = True
    migrate_on_start: bool = False
    # Seed the demo municipalities' data at start (the embedded `make run` turns it on); idempotent.
    demo_data: bool = False
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_busy_timeout_ms: int = 5_000

    bus: Literal["inprocess", "kafka"] = "inprocess"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_partitions: int = 3
    kafka_topic_prefix: str = ""
    relay_batch_size: int = 500
    consumer_max_attempts: int = 5
    consumer_backoff_s: float = 0.2
    # Partitions the consumer applies at the same time on PostgreSQL, each in its own transaction (while one
    # waits for the database, the next one's Python work runs). SQLite takes one writer at a time: one there.
    consumer_concurrency: int = Field(default=1, ge=1, le=16)

    jwt_issuer: str = "cityblocks-dev"
    jwt_audience: str = "cityblocks"
    jwks_url: str | None = None
    jwks_timeout_s: float = 5.0
    jwks_cache_s: float = 300.0
    jwt_public_key: str | None = None
    jwt_leeway_s: int = 10
    dev_identity: bool = True
    dev_token_ttl_s: int = 3_600

    # Per client address: the public read routes (`/v1/public/...`) and the dev identity provider's login.
    rate_limit_public_per_minute: int = 600
    rate_limit_login_per_minute: int = 60

    # OTLP/HTTP collector base URL (else the standard OTEL_EXPORTER_OTLP_ENDPOINT); unset: no spans recorded.
    otlp_endpoint: str | None = None

    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _default_database_url(self) -> ServiceSettings:
        # The default database follows the service name and data dir, so it cannot be a plain field default.
        if not self.database_url:
            path = (self.data_dir / f"{self.service_name}.db").as_posix()
            self.database_url = f"sqlite+aiosqlite:///{path}"
        return self

    @property
    def devidp_dir(self) -> Path:
        return self.data_dir / "devidp"

    @property
    def event_source(self) -> str:
        return f"/cityblocks/{self.service_name}"

    def signing_key(self, configured: str, filename: str) -> bytes:
        """A service's HMAC key: the configured one, else a random one made once in the data dir.

        Every process of the service shares the data dir, so they all sign and check with the same key.
        """
        if configured:
            return configured.encode()
        path = self.data_dir / filename
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(secrets.token_bytes(32))
            path.chmod(0o600)
        return path.read_bytes()
