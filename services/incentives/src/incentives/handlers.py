"""Who reacts to what: every contract event of the other services goes through the rule engine."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property

from contracts import registry
from contracts.base import Event
from incentives import engine
from servicekit.service import EventHandler


class CatalogueSubscriptions(Mapping[type[Event], EventHandler]):
    """The rule engine for each event type of the catalogue that another service publishes.

    Built on first use, not at import: a campaign needs no code, so any event may become a trigger; an event
    that no active rule wants records nothing (its inbox row only).
    """

    @cached_property
    def _table(self) -> dict[type[Event], EventHandler]:
        return {
            cls: engine.on_event for cls in registry.catalogue().values() if cls.event_service != "incentives"
        }

    def __getitem__(self, key: type[Event]) -> EventHandler:
        return self._table[key]

    def __iter__(self) -> Iterator[type[Event]]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


SUBSCRIPTIONS = CatalogueSubscriptions()
