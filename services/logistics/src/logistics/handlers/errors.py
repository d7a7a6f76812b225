"""Domain input errors answered as 422 problems naming the offending field, like request validation does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from logistics import domain
from servicekit.problems import Problem


def location(field: str) -> list[str | int]:
    """`windows[0].start` → ["body", "windows", 0, "start"]."""
    parts: list[str | int] = ["body"]
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field):
        parts.append(int(index) if index else name)
    return parts


def unprocessable(error: domain.InvalidField, prefix: str = "") -> Problem:
    field = f"{prefix}.{error.field}" if prefix else error.field
    return Problem(
        422,
        f"invalid fields: {field}: {error.message}",
        title="Invalid request",
        errors=[{"loc": location(field), "msg": error.message, "type": error.code}],
    )


@contextmanager
def field_errors(prefix: str = "") -> Iterator[None]:
    """Turn a domain InvalidField raised inside into a 422 problem; `prefix` places it in the body."""
    try:
        yield
    except domain.InvalidField as error:
        raise unprocessable(error, prefix) from error


class NotFound(domain.LogisticsError):
    """The resource does not exist in the caller's municipality."""


class Conflict(domain.LogisticsError):
    """The request clashes with the resource's current state."""
