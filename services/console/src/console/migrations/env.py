"""Alembic environment of this service: the shared servicekit body with this service's tables."""

from console.feed import metadata
from servicekit.migrations import run_env

run_env(metadata)
