"""CityBlocks event contracts: one module per producing service, plus the envelope and the catalogue."""

from contracts.base import Event
from contracts.envelope import Envelope

__all__ = ["Envelope", "Event"]
