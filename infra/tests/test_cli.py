"""The `cityblocks` command line: what each command does when there is, or is not, something to run."""

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

from cityblocks import services
from cityblocks.cli import app

runner = CliRunner()


@pytest.fixture
def var_dir() -> Iterator[Path]:
    # Under /tmp with a traversable parent: as root, PostgreSQL runs as the unprivileged postgres user.
    folder = Path(tempfile.mkdtemp(prefix="cityblocks-cli-"))
    folder.chmod(0o755)
    yield folder
    runner.invoke(app, ["down", "--var-dir", str(folder)])
    runner.invoke(app, ["kafka", "stop", "--var-dir", str(folder)])
    runner.invoke(app, ["postgres", "stop", "--var-dir", str(folder)])
    shutil.rmtree(folder, ignore_errors=True)


def test_run_serves_the_embedded_platform_with_the_given_options(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    embedded = ModuleType("cityblocks.embedded")
    embedded.serve = lambda **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cityblocks.embedded", embedded)

    result = runner.invoke(app, ["run", "--port", "8123", "--data-dir", "elsewhere"])

    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8123/" in result.output
    assert calls == [{"host": "127.0.0.1", "port": 8123, "data_dir": Path("elsewhere")}]


def test_run_explains_when_the_embedded_runner_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cityblocks.embedded", None)

    result = runner.invoke(app, ["run"])

    assert result.exit_code == 1
    assert "embedded runner is not available" in result.output


def test_kafka_status_fails_when_no_broker_runs(tmp_path: Path) -> None:
    result = runner.invoke(app, ["kafka", "status", "--var-dir", str(tmp_path)])

    assert result.exit_code == 1
    assert "not running" in result.output


def test_stopping_what_does_not_run_is_harmless(tmp_path: Path) -> None:
    for command in (["kafka", "stop"], ["postgres", "stop"], ["down"]):
        result = runner.invoke(app, [*command, "--var-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output


def test_up_without_any_service_starts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "SERVICES", ())

    result = runner.invoke(app, ["up", "--var-dir", str(tmp_path)])

    assert result.exit_code == 0
    assert "nothing to start" in result.output
    assert not (tmp_path / "kafka").exists()


def test_service_gets_its_own_database_and_the_kafka_bus() -> None:
    entry = services.ServiceEntry("mobility-credit", "mobility_credit.app", "MOBILITY_CREDIT_", 8103)

    env = entry.environment("postgresql+asyncpg://u@h:1/mobility_credit", "127.0.0.1:9092")

    assert entry.database == "mobility_credit"
    assert entry.factory == "mobility_credit.app:create_app"
    assert env == {
        "MOBILITY_CREDIT_DATABASE_URL": "postgresql+asyncpg://u@h:1/mobility_credit",
        "MOBILITY_CREDIT_BUS": "kafka",
        "MOBILITY_CREDIT_KAFKA_BOOTSTRAP": "127.0.0.1:9092",
    }


def test_every_listed_service_has_an_app_factory_and_its_own_port() -> None:
    import importlib

    for entry in services.SERVICES:
        module = importlib.import_module(entry.module)
        assert callable(module.create_app), entry.name
        assert entry.env_prefix.endswith("_")
    ports = [entry.port for entry in services.SERVICES]
    assert len(ports) == len(set(ports))


@pytest.mark.postgres
def test_postgres_start_prints_a_dsn_and_stop_stops_it(var_dir: Path) -> None:
    started = runner.invoke(
        app, ["postgres", "start", "--no-fsync", "--port", "0", "--var-dir", str(var_dir)]
    )
    assert started.exit_code == 0, started.output
    assert "CITYBLOCKS_POSTGRES_DSN=postgresql://postgres@127.0.0.1:" in started.output

    stopped = runner.invoke(app, ["postgres", "stop", "--var-dir", str(var_dir)])
    assert stopped.exit_code == 0, stopped.output
    assert "PostgreSQL stopped" in stopped.output
    assert not (var_dir / "postgres" / "data" / "postmaster.pid").exists()


@pytest.mark.kafka
def test_kafka_start_runs_a_broker_in_the_background_until_stopped(var_dir: Path) -> None:
    started = runner.invoke(app, ["kafka", "start", "--port", "0", "--var-dir", str(var_dir)])
    assert started.exit_code == 0, started.output
    assert "CITYBLOCKS_KAFKA_BOOTSTRAP=127.0.0.1:" in started.output

    status = runner.invoke(app, ["kafka", "status", "--var-dir", str(var_dir)])
    assert status.exit_code == 0, status.output
    assert "Kafka runs on 127.0.0.1:" in status.output

    stopped = runner.invoke(app, ["kafka", "stop", "--var-dir", str(var_dir)])
    assert "Kafka stopped" in stopped.output
    assert runner.invoke(app, ["kafka", "status", "--var-dir", str(var_dir)]).exit_code == 1
