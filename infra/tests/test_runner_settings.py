"""Runner details that need no broker or server: ids, addresses, ports, database names."""

import base64
import socket

import pytest

from cityblocks.distributed import choose_port
from cityblocks.kafka import random_cluster_id
from cityblocks.postgres import PostgresCluster


def test_cluster_ids_have_the_shape_kafka_storage_tool_accepts() -> None:
    for _ in range(200):
        cluster_id = random_cluster_id()
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
        assert not cluster_id.startswith("-")


def test_an_attached_server_hands_out_asyncpg_urls_with_its_credentials() -> None:
    cluster = PostgresCluster.attach("postgresql://ci:p%40ss@db.example:6543/postgres")

    assert cluster.url("market") == "postgresql+asyncpg://ci:p%40ss@db.example:6543/market"
    assert cluster.dsn == "postgresql://ci:p%40ss@db.example:6543/postgres"


def test_database_names_must_be_plain_identifiers() -> None:
    cluster = PostgresCluster.attach("postgresql://ci@127.0.0.1:1/postgres")

    with pytest.raises(ValueError, match="identifiers"):
        cluster.create_database('x"; DROP DATABASE postgres; --')


def test_a_busy_default_port_gives_way_to_a_free_one() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]

        assert choose_port(None, taken) != taken
        assert choose_port(4321, taken) == 4321
        assert choose_port(0, taken) not in (0, taken)
