"""Pytest plugin: the real Kafka and PostgreSQL tiers as fixtures, and the rule that CI may not skip them."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from cityblocks.kafka import KafkaBroker, KafkaUnavailable, metadata_available, missing_tools
from cityblocks.postgres import PostgresCluster, PostgresUnavailable, find_bin_dir

INFRA_MARKERS = ("kafka", "postgres")


def infra_required() -> bool:
    return os.environ.get("CITYBLOCKS_REQUIRE_INFRA", "") not in ("", "0", "false")


def unavailable(reason: str) -> NoReturn:
    if infra_required():
        pytest.fail(f"{reason} (CITYBLOCKS_REQUIRE_INFRA=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


def scratch_dir(prefix: str) -> Path:
    # Under /tmp rather than pytest's tmp_path: as root, PostgreSQL runs as another user who cannot enter
    # pytest's private base folder.
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real broker's bootstrap servers: `CITYBLOCKS_KAFKA_BOOTSTRAP`, else one started for this session."""
    external = os.environ.get("CITYBLOCKS_KAFKA_BOOTSTRAP")
    if external:
        # A wrong address would otherwise surface as a hang inside the first test that uses it.
        if not metadata_available(external, timeout=10):
            pytest.fail(f"no Kafka answers at CITYBLOCKS_KAFKA_BOOTSTRAP={external}", pytrace=False)
        yield external
        return
    missing = missing_tools()
    if missing:
        unavailable(f"Kafka tier needs {' and '.join(missing)} on PATH")
    data_dir = scratch_dir("cityblocks-kafka-")
    broker = KafkaBroker(data_dir=data_dir)
    try:
        broker.ensure_jars()
    except KafkaUnavailable as error:
        shutil.rmtree(data_dir, ignore_errors=True)
        unavailable(str(error))
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL server: `CITYBLOCKS_POSTGRES_DSN`, else a throwaway cluster started for this session."""
    external = os.environ.get("CITYBLOCKS_POSTGRES_DSN")
    if external:
        yield PostgresCluster.attach(external)
        return
    if find_bin_dir() is None:
        unavailable("PostgreSQL tier needs the server binaries (apt-get install -y postgresql)")
    data_dir = scratch_dir("cityblocks-pg-")
    cluster = PostgresCluster(data_dir=data_dir, durable=False)
    try:
        cluster.start()
    except PostgresUnavailable as error:
        unavailable(str(error))
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh, empty database for this test, as a `postgresql+asyncpg://` URL."""
    return postgres_cluster.create_database(f"test_{uuid.uuid4().hex[:20]}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """In CI a skipped Kafka or PostgreSQL test hides a missing tier, so it counts as a failure."""
    report = yield
    if not (report.skipped and infra_required()) or hasattr(report, "wasxfail"):
        return report
    markers = [name for name in INFRA_MARKERS if item.get_closest_marker(name) is not None]
    if not markers:
        return report
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = f"{'/'.join(markers)} test skipped while CITYBLOCKS_REQUIRE_INFRA=1: {reason}"
    return report
