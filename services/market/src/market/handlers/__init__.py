"""The market service's commands and queries, one module per area; it reacts to no other service's events."""

from __future__ import annotations

from collections.abc import Mapping

from contracts.base import Event
from servicekit.service import EventHandler

SUBSCRIPTIONS: Mapping[type[Event], EventHandler] = {}
