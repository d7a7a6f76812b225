"""A probe event used to prove the event machinery (bus conformance, benchmarks) end to end."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from contracts.base import Event


class ProbeRecorded(Event, service="probe", topic="probe.records", key="stream"):
    """A numbered record on a stream; consumers can check order and exactly-once effects per stream."""

    stream: str = Field(min_length=1, max_length=200)
    seq: int = Field(ge=0)
    payload: str = Field(default="", max_length=10_000)
    recorded_at: AwareDatetime | None = None
