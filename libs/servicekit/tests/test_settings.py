"""Service settings: one env prefix per service, a database per service under the data dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class MarketSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MARKET_", extra="ignore")

    service_name: str = "market"
    solver_time_limit_s: float = 10.0


def test_the_default_database_is_a_sqlite_file_named_after_the_service() -> None:
    assert MarketSettings().database_url == "sqlite+aiosqlite:///var/market.db"


def test_settings_come_from_the_service_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MARKET_BUS", "kafka")
    monkeypatch.setenv("MARKET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MARKET_SOLVER_TIME_LIMIT_S", "2.5")
    monkeypatch.setenv("LOGISTICS_BUS", "inprocess")

    settings = MarketSettings()

    assert settings.bus == "kafka"
    assert settings.solver_time_limit_s == 2.5
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.as_posix()}/market.db"


def test_an_explicit_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKET_DATABASE_URL", "postgresql+asyncpg://u:p@db/market")

    assert MarketSettings().database_url == "postgresql+asyncpg://u:p@db/market"


def test_a_signing_key_is_made_once_per_data_dir_unless_configured(tmp_path: Path) -> None:
    settings = ServiceSettings(service_name="probe", data_dir=tmp_path)
    made = settings.signing_key("", "probe.key")
    assert len(made) == 32 and (tmp_path / "probe.key").stat().st_mode & 0o777 == 0o600
    assert ServiceSettings(service_name="probe", data_dir=tmp_path).signing_key("", "probe.key") == made
    assert settings.signing_key("from-the-environment", "probe.key") == b"from-the-environment"
