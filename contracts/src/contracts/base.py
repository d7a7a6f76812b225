"""The event base class: each contract event is a frozen, closed pydantic model knowing its type and topic."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

TYPE_PREFIX = "be.cityblocks"


class Event(BaseModel):
    """A fact that happened in one service, published for the others.

    Subclasses declare where they travel in the class statement::

        class StallsAllocated(Event, service="market", topic="market.market-days", key="market_day_id"):
            ...

    `key` names the field whose value is the partition key (ordering is guaranteed per key only).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_service: ClassVar[str]
    event_name: ClassVar[str]
    event_version: ClassVar[int]
    event_type: ClassVar[str]
    topic: ClassVar[str]
    key_field: ClassVar[str]
    public: ClassVar[bool]

    def __init_subclass__(
        cls,
        *,
        service: str | None = None,
        topic: str | None = None,
        key: str | None = None,
        version: int = 1,
        public: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if service is None:
            return  # an intermediate base class, not a concrete event
        if topic is None or key is None:
            raise TypeError(f"{cls.__name__}: an event needs service, topic and key")
        cls.event_service = service
        cls.event_name = cls.__name__
        cls.event_version = version
        cls.event_type = f"{TYPE_PREFIX}.{service}.{cls.__name__}.v{version}"
        cls.topic = topic
        cls.key_field = key
        cls.public = public

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event_type" in cls.__dict__ and cls.key_field not in cls.model_fields:
            raise TypeError(f"{cls.__name__}: key field {cls.key_field!r} is not a field")

    def partition_key(self) -> str:
        return str(getattr(self, self.key_field))
