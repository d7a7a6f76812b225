"""Group commit of trip payments: concurrent requests share one transaction and each gets its own answer.

A payment waits in a queue while the transactions in flight run; the next transaction takes every waiting
payment at once. It reads their grants and their cap counters in one statement each, writes all their ledger
transfers in one ledger batch and their trips, answers and TripPaid events in one statement each. A payment
the rules or the ledger refuse gets its own error and writes nothing; its neighbours commit. One transaction
holds at most one payment per citizen and per key, and a citizen or key stays out of the next transaction
while one is in flight: payments of one citizen run one after the other, exactly as if each had its own
transaction. A batch that fails for another reason is retried when the database says a retry helps (a
deadlock, a race on a key), and otherwise each of its payments runs alone, so one bad payment fails only
itself.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID
from weakref import WeakKeyDictionary

import sqlalchemy as sa

from eventbus import UnitOfWork, UnitOfWorkFactory
from ledger import CreateTransferResult, is_retryable
from mobility_credit import accounts, domain, store
from mobility_credit.handlers.budget import (
    Choice,
    available_balances,
    covering_grants,
    lock_usages,
    open_grants,
    pick_grant,
    trip_request,
    usage_keys,
)
from mobility_credit.handlers.catalogue import load_provider
from mobility_credit.handlers.payments import (
    INSERT_TRIP,
    Answer,
    PaidTrip,
    paid_trip,
    pay_trip,
    scope_of,
    trip_transfer,
)
from mobility_credit.models import TripIn
from mobility_credit.transaction import (
    INSERT_ANSWER,
    answer_row,
    ledger_error,
    ledger_session,
    replayed,
    request_hash,
    stored_answers,
)
from servicekit.auth import Principal
from servicekit.service import ADMIN_ROLES, ServiceContext

_ATTEMPTS = 8
_U = store.usage
_ADD_USAGE = (
    sa.update(_U)
    .where(
        _U.c.citizen_id == sa.bindparam("b_citizen"),
        _U.c.scheme_id == sa.bindparam("b_scheme"),
        _U.c.window == sa.bindparam("b_window"),
    )
    .values(used_cents=_U.c.used_cents + sa.bindparam("b_cents"))
)


@dataclass(eq=False)
class Payment:
    """One provider's request to pay a trip, waiting for the transaction that carries it."""

    principal: Principal
    provider_id: UUID
    body: TripIn
    key: str
    answer: asyncio.Future[Answer]
    scope: str = field(init=False)
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        self.scope = scope_of(self.principal, self.provider_id)
        self.digest = request_hash("pay", self.body.model_dump(mode="json"))

    @property
    def citizen(self) -> str:
        return self.body.citizen_id

    @property
    def slot(self) -> tuple[str, str]:
        return (self.scope, self.key)


@dataclass
class _Planned:
    """A payment the rules accept, before the ledger has its say."""

    payment: Payment
    trip_id: UUID
    choice: Choice
    paid: PaidTrip


Outcome = Answer | domain.MobilityCreditError
# The trip's transfer exists although its key had no answer: a request with the same key committed meanwhile.
_RACED = {CreateTransferResult.EXISTS, CreateTransferResult.EXISTS_WITH_DIFFERENT_FIELDS}


class _KeyRaced(Exception):
    """Retry the batch: its next attempt finds the concurrent request's stored answer and replays it."""


class TripBatcher:
    """Coalesces concurrent trip payments of one service into shared transactions (at most `in_flight`)."""

    def __init__(self, uow_factory: UnitOfWorkFactory, *, max_batch: int = 200, in_flight: int = 2) -> None:
        self.uow_factory = uow_factory
        self.max_batch = max_batch
        self.in_flight = in_flight
        self._waiting: deque[Payment] = deque()
        self._running: set[asyncio.Task[None]] = set()
        self._busy_citizens: set[str] = set()
        self._busy_slots: set[tuple[str, str]] = set()
        self.batches = 0  # how many transactions carried payments (tests and tuning read it)

    async def pay(self, principal: Principal, provider_id: UUID, body: TripIn, key: str) -> Answer:
        payment = Payment(principal, provider_id, body, key, asyncio.get_running_loop().create_future())
        self._waiting.append(payment)
        self._dispatch()
        return await asyncio.shield(payment.answer)

    def _dispatch(self) -> None:
        while self._waiting and len(self._running) < self.in_flight:
            batch = self._take()
            if not batch:
                return
            task = asyncio.create_task(self._run(batch), name="trip-batch")
            self._running.add(task)

    def _take(self) -> list[Payment]:
        """The waiting payments, oldest first, skipping a citizen or key already taken or in flight."""
        batch: list[Payment] = []
        kept: deque[Payment] = deque()
        while self._waiting and len(batch) < self.max_batch:
            payment = self._waiting.popleft()
            if payment.citizen in self._busy_citizens or payment.slot in self._busy_slots:
                kept.append(payment)
                continue
            self._busy_citizens.add(payment.citizen)
            self._busy_slots.add(payment.slot)
            batch.append(payment)
        kept.extend(self._waiting)
        self._waiting = kept
        return batch

    async def _run(self, batch: list[Payment]) -> None:
        try:
            await self._settle(batch)
        except asyncio.CancelledError:
            for payment in batch:
                payment.answer.cancel()
            raise
        except Exception as error:
            for payment in batch:
                if not payment.answer.done():
                    payment.answer.set_exception(error)
        finally:
            for payment in batch:
                self._busy_citizens.discard(payment.citizen)
                self._busy_slots.discard(payment.slot)
            self._running.discard(asyncio.current_task())
            self._dispatch()

    async def _settle(self, batch: list[Payment]) -> None:
        outcomes: dict[Payment, Outcome] | None = None
        for attempt in range(_ATTEMPTS):
            try:
                outcomes = await self._attempt(batch, look_up=attempt > 0)
                break
            except Exception as error:
                if attempt + 1 < _ATTEMPTS and (is_retryable(error) or isinstance(error, _KeyRaced)):
                    await asyncio.sleep(random.uniform(0, 0.003 * (attempt + 1)))
                    continue
                if len(batch) == 1:
                    raise
                break
        if outcomes is None:
            # Something no retry cures: each payment alone, so that only the one at fault fails.
            await asyncio.gather(*(self._alone(payment) for payment in batch))
            return
        self.batches += 1
        for payment, outcome in outcomes.items():
            if isinstance(outcome, domain.MobilityCreditError):
                payment.answer.set_exception(outcome)
            else:
                payment.answer.set_result(outcome)

    async def _alone(self, payment: Payment) -> None:
        try:
            answer = await pay_trip(
                self.uow_factory, payment.principal, payment.provider_id, payment.body, payment.key
            )
        except Exception as error:
            payment.answer.set_exception(error)
        else:
            payment.answer.set_result(answer)

    async def _attempt(self, batch: list[Payment], *, look_up: bool) -> dict[Payment, Outcome]:
        """One transaction for the batch; `look_up` first replays the payments whose key has an answer.

        New keys are the common case, so the first attempt does not look them up: a used key shows as its
        trip's transfer already in the ledger (`_KeyRaced`) or as its trip or answer row already stored (a
        unique violation); either way the batch rolls back and the next attempt, which looks up, replays it.
        """
        outcomes: dict[Payment, Outcome] = {}
        async with self.uow_factory() as uow:
            fresh = await _replay(uow, batch, outcomes) if look_up else list(batch)
            planned = await _plan(uow, fresh, outcomes, random.getrandbits(64))
            await _write(uow, planned, outcomes)
            # A request with the same key may have committed meanwhile (in another process) and taken the
            # budget this one lacked: its answer, not this refusal, is the answer to the key.
            refused = [p for p in fresh if isinstance(outcomes[p], domain.MobilityCreditError)]
            if refused:
                await _replay(uow, refused, outcomes)
        return outcomes


async def _replay(
    uow: UnitOfWork, payments: list[Payment], outcomes: dict[Payment, Outcome]
) -> list[Payment]:
    """Answer the payments whose key has a stored answer; returns the others."""
    stored = await stored_answers(uow, [p.slot for p in payments])
    fresh: list[Payment] = []
    for payment in payments:
        earlier = stored.get(payment.slot)
        if earlier is None:
            fresh.append(payment)
            continue
        try:
            outcomes[payment] = replayed(earlier, payment.digest)
        except domain.MobilityCreditError as error:
            outcomes[payment] = error
    return fresh


async def _plan(
    uow: UnitOfWork, payments: list[Payment], outcomes: dict[Payment, Outcome], spread: int
) -> list[_Planned]:
    """Each payment's grant and split, from one read of grants and one locked read of cap counters."""
    trips: dict[Payment, tuple[Any, domain.TripRequest]] = {}
    for payment in payments:
        body = payment.body
        try:
            provider = await load_provider(uow, payment.principal, payment.provider_id)
            trip = trip_request(provider, body.mode, body.place, body.consumed_at, body.total_cents)
        except domain.MobilityCreditError as error:
            outcomes[payment] = error
            continue
        trips[payment] = (provider, trip)
    if not trips:
        return []
    citizens = [(p.principal.tenant, p.citizen) for p in trips]
    candidates = await open_grants(uow, citizens, [trip.consumed_at for _, trip in trips.values()])
    coverings: dict[Payment, list[Any]] = {}
    for payment, (_, trip) in trips.items():
        try:
            coverings[payment] = covering_grants(candidates, payment.principal.tenant, payment.citizen, trip)
        except domain.MobilityCreditError as error:
            outcomes[payment] = error
    balances = await available_balances(uow, coverings.values())
    used = await lock_usages(
        uow, [k for p, covering in coverings.items() for k in usage_keys(p.citizen, covering, trips[p][1])]
    )
    planned: list[_Planned] = []
    for payment, covering in coverings.items():
        provider, trip = trips[payment]
        try:
            choice = pick_grant(payment.citizen, covering, trip, used, balances)
        except domain.MobilityCreditError as error:
            outcomes[payment] = error
            continue
        trip_id = accounts.derived_id("trip", payment.provider_id, payment.key)
        # One payable shard per provider and transaction, a random one: concurrent transactions (of this
        # process or another) then rarely wait for each other's lock on a shard, and each shard's balance
        # is written once per transaction. Which shard a trip credits is recorded with the trip.
        payable = accounts.provider_payable(provider.id, provider.shards).pick(f"{spread}/{provider.id}")
        paid = paid_trip(payment.principal.tenant, provider, trip_id, payment.citizen, trip, choice, payable)
        planned.append(_Planned(payment, trip_id, choice, paid))
    return planned


async def _write(uow: UnitOfWork, planned: list[_Planned], outcomes: dict[Payment, Outcome]) -> None:
    """The ledger batch first; then trips, cap counters, answers and events of the payments it accepted."""
    paying = [p for p in planned if p.choice.split.city_cents > 0]
    if paying:
        session = await ledger_session(uow)
        transfers = [trip_transfer(p.trip_id, p.choice, p.paid.row["payable_account_id"]) for p in paying]
        results = await session.create_transfers(transfers)
        for p, result in zip(paying, results, strict=True):
            if result.code in _RACED:
                raise _KeyRaced(f"trip {p.trip_id} was written by a concurrent request with the same key")
            if not result.ok:
                outcomes[p.payment] = ledger_error(result)
    accepted = [p for p in planned if p.payment not in outcomes]
    if not accepted:
        return
    # Core statements on the transaction's connection: the ORM session's execute adds nothing here but time.
    connection = await uow.session.connection()
    await connection.execute(INSERT_TRIP, [p.paid.row for p in accepted])
    usage = list(_usage_increments(accepted))
    if usage:
        await connection.execute(_ADD_USAGE, usage)
    answers = []
    for p in accepted:
        answer: Answer = (201, p.paid.out.model_dump(mode="json"))
        outcomes[p.payment] = answer
        answers.append(answer_row(p.payment.scope, p.payment.key, p.payment.digest, *answer))
        uow.emit(p.paid.event, tenant=p.payment.principal.tenant, subject=str(p.trip_id))
    await connection.execute(INSERT_ANSWER, answers)


def _usage_increments(accepted: Iterable[_Planned]) -> Iterable[dict[str, Any]]:
    for p in accepted:
        cents = p.choice.split.city_cents
        if cents == 0:
            continue
        for window in sorted(set(p.choice.windows)):
            yield {
                "b_citizen": p.payment.citizen,
                "b_scheme": p.choice.scheme_id,
                "b_window": window,
                "b_cents": cents,
            }


_batchers: WeakKeyDictionary[UnitOfWorkFactory, TripBatcher] = WeakKeyDictionary()


def batcher_for(context: ServiceContext) -> TripBatcher:
    """The batcher of a running service (made on its first payment, sized by the service's settings)."""
    batcher = _batchers.get(context.uow_factory)
    if batcher is None:
        settings = context.settings
        batcher = TripBatcher(
            context.uow_factory,
            max_batch=getattr(settings, "trip_batch_max", 200),
            in_flight=getattr(settings, "trip_batches_in_flight", 2),
        )
        _batchers[context.uow_factory] = batcher
    return batcher


async def pay_trip_batched(
    context: ServiceContext,
    request_uow_factory: UnitOfWorkFactory,
    principal: Principal,
    provider_id: UUID,
    body: TripIn,
    key: str,
) -> Answer:
    """Pay a trip in a shared transaction; an admin's request runs alone, so its audit record goes with it."""
    if not principal.roles.isdisjoint(ADMIN_ROLES):
        return await pay_trip(request_uow_factory, principal, provider_id, body, key)
    return await batcher_for(context).pay(principal, provider_id, body, key)
