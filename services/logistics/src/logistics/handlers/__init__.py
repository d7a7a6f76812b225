"""Commands and event handlers of logistics; `SUBSCRIPTIONS` says which contract event goes where."""

from __future__ import annotations

from contracts import market
from logistics.handlers.orders import on_stalls_allocated
from servicekit.service import EventHandler

SUBSCRIPTIONS: dict[type, EventHandler] = {market.StallsAllocated: on_stalls_allocated}
