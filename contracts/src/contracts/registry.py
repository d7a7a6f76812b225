"""The catalogue of every contract event: find an event class by its CloudEvents type, decode envelopes."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from contracts.base import Event
from contracts.envelope import Envelope

# Modules of this package that hold no events of a producing service.
_INFRASTRUCTURE_MODULES = frozenset(
    {"base", "envelope", "registry", "schemas", "asyncapi", "compat", "tools"}
)


class UnknownEventType(LookupError):
    """The envelope's type is not in the catalogue."""


def event_modules() -> list[str]:
    """Names of the modules that define events, one per producing service."""
    import contracts

    return sorted(
        m.name
        for m in pkgutil.iter_modules(contracts.__path__)
        if m.name not in _INFRASTRUCTURE_MODULES and not m.name.startswith("_")
    )


@cache
def catalogue() -> dict[str, type[Event]]:
    """Every concrete event class by its CloudEvents type."""
    found: dict[str, type[Event]] = {}
    for name in event_modules():
        module = importlib.import_module(f"contracts.{name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Event) and "event_type" in obj.__dict__:
                if obj.event_type in found and found[obj.event_type] is not obj:
                    raise TypeError(f"two events claim the type {obj.event_type}")
                found[obj.event_type] = obj
    return dict(sorted(found.items()))


def event_class(event_type: str) -> type[Event]:
    try:
        return catalogue()[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def decode(envelope: Envelope) -> Event:
    """Validate an envelope's data against its event class; raises pydantic.ValidationError on a misfit.

    Consumers are tolerant readers: fields added by a newer producer are dropped before validation.
    """
    cls = event_class(envelope.type)
    known = {k: v for k, v in envelope.data.items() if k in cls.model_fields}
    return cls.model_validate(known)


def topics() -> list[str]:
    return sorted({cls.topic for cls in catalogue().values()})
