"""Events every service produces about itself, such as the audit trail of administrative actions."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from contracts.base import Event


class AdminActionRecorded(Event, service="platform", topic="platform.audit", key="actor"):
    """A city admin or market master changed something; written in the same transaction as the change."""

    service: str = Field(min_length=1, max_length=100, description="the service that carried out the action")
    actor: str = Field(min_length=1, max_length=200, description="subject of the caller's token")
    actor_name: str | None = Field(default=None, max_length=200)
    roles: list[str] = Field(description="the caller's roles")
    method: str = Field(pattern=r"^(POST|PUT|PATCH|DELETE)$")
    route: str = Field(max_length=500, description="the route template, e.g. /v1/markets/{market_id}/plan")
    path: str = Field(max_length=2000, description="the path that was called")
    request_id: str | None = Field(default=None, max_length=128)
    recorded_at: AwareDatetime
