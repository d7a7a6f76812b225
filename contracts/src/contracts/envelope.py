"""The CloudEvents 1.0 envelope of every event, with the extensions tenant, partitionkey and traceparent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import Event

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"


class Envelope(BaseModel):
    """One CloudEvent: context attributes plus the event's JSON data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    specversion: str = SPECVERSION
    time: AwareDatetime
    subject: str | None = None
    datacontenttype: str = CONTENT_TYPE
    tenant: str = Field(min_length=1, description="NIS code of the municipality (or a region id)")
    partitionkey: str = Field(min_length=1)
    traceparent: str | None = None
    topic: str = Field(min_length=1, description="Kafka topic; not a CloudEvents attribute, kept for routing")
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        event: Event,
        *,
        source: str,
        tenant: str,
        subject: str | None = None,
        traceparent: str | None = None,
        event_id: str | None = None,
        time: datetime | None = None,
        data: dict[str, Any] | None = None,
    ) -> Envelope:
        """Put an event in an envelope; the id is a fresh UUID unless given (it is the idempotency key).

        `data` is the event's JSON form (`model_dump(mode="json")`) when the caller has it already.
        """
        return cls(
            id=event_id or str(uuid.uuid4()),
            source=source,
            type=event.event_type,
            time=time or datetime.now(UTC),
            subject=subject,
            tenant=tenant,
            partitionkey=event.partition_key(),
            traceparent=traceparent,
            topic=event.topic,
            data=event.model_dump(mode="json") if data is None else data,
        )

    def attributes(self) -> dict[str, str]:
        """The context attributes as strings (for Kafka headers `ce_<name>`)."""
        attrs = {
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "specversion": self.specversion,
            "time": self.time.isoformat(),
            "datacontenttype": self.datacontenttype,
            "tenant": self.tenant,
            "partitionkey": self.partitionkey,
        }
        if self.subject is not None:
            attrs["subject"] = self.subject
        if self.traceparent is not None:
            attrs["traceparent"] = self.traceparent
        return attrs

    @classmethod
    def from_attributes(cls, attrs: dict[str, str], *, topic: str, data: dict[str, Any]) -> Envelope:
        """Rebuild an envelope from context attributes (Kafka binary mode) and the decoded data."""
        return cls.model_validate({**attrs, "topic": topic, "data": data})
