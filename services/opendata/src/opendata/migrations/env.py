"""Alembic environment of this service: the shared servicekit body with this service's tables."""

from opendata.store import metadata
from servicekit.migrations import run_env

run_env(metadata)
