"""Root fixtures `kafka_bootstrap`, `postgres_cluster`, `postgres_url`: see plugin `cityblocks.testing`."""

pytest_plugins = ["cityblocks.testing", "pytester"]
