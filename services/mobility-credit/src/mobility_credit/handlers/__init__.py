"""Commands and queries of the mobility-credit service; it reacts to no other service's events."""

from __future__ import annotations

from contracts.base import Event
from servicekit.service import EventHandler

SUBSCRIPTIONS: dict[type[Event], EventHandler] = {}
