"""The container deployment is checked for shape here, since no Docker engine runs where the tests do."""

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cityblocks.services import SERVICES

INFRA = Path(__file__).resolve().parents[1]
ROOT = INFRA.parent
INFRASTRUCTURE = {"kafka", "postgres"}
SINGLE_NODE_SETTINGS = {
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": 1,
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": 1,
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": 1,
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": 1,
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": 1,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((INFRA / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in compose["services"].items() if name not in INFRASTRUCTURE}


def test_kafka_runs_as_a_single_kraft_node_that_consumer_groups_work_on(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]

    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert {key: env.get(key) for key in SINGLE_NODE_SETTINGS} == SINGLE_NODE_SETTINGS
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    assert "healthcheck" in kafka


def test_postgres_creates_one_database_per_service(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    databases = set(postgres["environment"]["CITYBLOCKS_DATABASES"].split())
    mounted = [volume.split(":")[0] for volume in postgres["volumes"] if volume.startswith("./")]

    assert all((INFRA / path).is_file() for path in mounted)
    assert any(path.endswith("create-databases.sh") for path in mounted)
    for name, spec in app_services(compose).items():
        prefix = name.upper().replace("-", "_") + "_"
        database = spec["environment"][f"{prefix}DATABASE_URL"].rsplit("/", 1)[1]
        assert database in databases, name
    assert "healthcheck" in postgres


def test_each_service_runs_its_app_on_kafka_and_its_database_once_both_are_healthy(
    compose: dict[str, Any],
) -> None:
    host_ports: list[str] = []
    for name, spec in app_services(compose).items():
        prefix = name.upper().replace("-", "_") + "_"
        env = spec["environment"]
        assert spec["build"]["dockerfile"] == "infra/Dockerfile"
        assert (INFRA / spec["build"]["context"] / spec["build"]["dockerfile"]).is_file()
        assert spec["build"]["args"]["APP_MODULE"].endswith(".app")
        assert (ROOT / "services" / spec["build"]["args"]["PACKAGE"] / "pyproject.toml").is_file(), name
        assert env[f"{prefix}BUS"] == "kafka"
        assert env[f"{prefix}KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env[f"{prefix}DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert spec["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "postgres": {"condition": "service_healthy"},
        }
        assert "/health" in " ".join(spec["healthcheck"]["test"])
        host_ports.extend(port.split(":")[0] for port in spec["ports"])
    assert len(host_ports) == len(set(host_ports))


def test_every_runnable_service_has_a_container(compose: dict[str, Any]) -> None:
    services = app_services(compose)
    for entry in SERVICES:
        assert entry.name in services, entry.name
        spec = services[entry.name]
        assert spec["build"]["args"]["APP_MODULE"] == entry.module
        assert f"{entry.env_prefix}DATABASE_URL" in spec["environment"]


def test_the_image_is_built_in_stages_with_uv_and_serves_the_app_factory() -> None:
    dockerfile = (INFRA / "Dockerfile").read_text()

    assert re.search(r"^FROM \S+ AS build$", dockerfile, re.MULTILINE)
    assert re.search(r"^FROM \S+ AS runtime$", dockerfile, re.MULTILINE)
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "/health" in dockerfile
    assert "create_app" in dockerfile and "--factory" in dockerfile
    assert re.search(r"^USER \S+$", dockerfile, re.MULTILINE)
