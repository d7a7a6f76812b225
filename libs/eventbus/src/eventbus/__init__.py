"""The event bus: the Bus protocol and its adapters, the transactional outbox, the inbox and dead letters."""

from eventbus.bus import Bus, Deliver, DeliverBatch, Undecodable, dlq_topic
from eventbus.consumer import Consumer, Handler
from eventbus.dead_letters import DeadLetter, ReplayFailed, list_dead_letters, replay
from eventbus.inprocess import InProcessBus
from eventbus.kafka import KafkaBus
from eventbus.outbox import OutboxRelay
from eventbus.unit_of_work import UnitOfWork, UnitOfWorkFactory

__all__ = [
    "Bus",
    "Consumer",
    "DeadLetter",
    "Deliver",
    "DeliverBatch",
    "Handler",
    "InProcessBus",
    "KafkaBus",
    "OutboxRelay",
    "ReplayFailed",
    "Undecodable",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "dlq_topic",
    "list_dead_letters",
    "replay",
]
