"""The rule engine: any contract event (or an approved claim) is matched against active rules and rewarded."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from uuid import UUID
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import incentives as events
from contracts.base import Event
from contracts.envelope import Envelope
from eventbus import UnitOfWork, tracing
from incentives import book, caches, domain, limits, rules, store
from ledger import Transfer, TransferFlags


@dataclass(frozen=True)
class ActiveRule:
    """A rule of an active campaign, with what issuing needs (its campaign's coin and validity)."""

    id: UUID
    campaign_id: UUID
    condition: rules.Node
    matches: rules.Predicate
    beneficiary_kind: str
    beneficiary_field: str | None
    reward: domain.Reward
    limit_window: domain.Window | None
    limit_coins: int | None
    valid_from: datetime
    valid_until: datetime | None
    audience: frozenset[str]
    coin: domain.CoinType

    def applies(self, tenant: str, at: datetime) -> bool:
        """The event happened in the campaign's period and in a municipality whose events count."""
        in_period = self.valid_from <= at and (self.valid_until is None or at < self.valid_until)
        return in_period and (tenant in self.audience if self.audience else self.coin.accepted_in(tenant))


async def active_rules(
    session: AsyncSession, trigger: str, campaign_id: UUID | None = None
) -> list[ActiveRule]:
    r, c, t = store.rules, store.campaigns, store.coin_types
    query = (
        sa.select(
            r,
            c.c.valid_from,
            c.c.valid_until,
            c.c.audience_tenants,
            *[col.label(f"coin_{col.name}") for col in t.c],
        )
        .join(c, c.c.id == r.c.campaign_id)
        .join(t, t.c.id == c.c.coin_type_id)
        .where(r.c.trigger == trigger, c.c.status == "active")
        .order_by(r.c.created_at, r.c.id)
    )
    if campaign_id is not None:
        query = query.where(c.c.id == campaign_id)
    return [_active_rule(row) for row in (await session.execute(query)).all()]


def _active_rule(row: Any) -> ActiveRule:
    m = row._mapping
    coin = store.coin_type_of(_Prefixed(m, "coin_"))
    return ActiveRule(
        id=m["id"],
        campaign_id=m["campaign_id"],
        condition=rules.compiled(m["condition"]),
        matches=rules.predicate(m["condition"]),
        beneficiary_kind=m["beneficiary_kind"],
        beneficiary_field=m["beneficiary_field"],
        reward=domain.Reward(
            domain.RewardKind(m["reward_kind"]), m["reward_coins"], m["percent_bps"], m["base_field"]
        ),
        limit_window=None if m["limit_window"] is None else domain.Window(m["limit_window"]),
        limit_coins=m["limit_coins"],
        valid_from=m["valid_from"],
        valid_until=m["valid_until"],
        audience=frozenset(m["audience_tenants"]),
        coin=coin,
    )


class _Prefixed:
    def __init__(self, mapping: Any, prefix: str) -> None:
        self._mapping = mapping
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return self._mapping[self._prefix + name]


async def rules_for(uow: UnitOfWork, trigger: str) -> list[ActiveRule]:
    """The active rules of a trigger, re-read from the database at most every `RULES_TTL_S` seconds."""
    cache = caches.of(uow.session).rules
    now = time.monotonic()
    hit = cache.get(trigger)
    if hit is not None and hit[0] > now:
        return hit[1]
    found = await active_rules(uow.session, trigger)
    cache[trigger] = (now + caches.RULES_TTL_S, found)
    return found


def forget_rules(uow: UnitOfWork) -> None:
    """After this transaction commits, re-read rules on the next event (a campaign started or ended)."""
    uow.after_commit(caches.of(uow.session).rules.clear)


async def on_event(uow: UnitOfWork, event: Event, envelope: Envelope) -> None:
    """Reward whoever the active rules for this event type name; an event no rule wants records nothing."""
    candidates = await rules_for(uow, envelope.type)
    if not candidates:
        return
    data = event.model_dump(mode="json")
    grants: list[Grant] = []
    for rule in candidates:
        if not rule.applies(envelope.tenant, envelope.time) or not rule.matches(data):
            continue
        beneficiary = await _beneficiary(uow.session, rule, data)
        if beneficiary is None:
            continue
        base = rules.lookup(data, rule.reward.base_field) if rule.reward.base_field else None
        amount = rule.reward.amount(rule.coin, base if isinstance(base, int) else None)
        grants.append(Grant(rule, beneficiary, amount))
    if grants:
        trace = tracing.current_traceparent()
        _defer(uow, [Pending(grant, envelope.id, envelope.type, envelope.time, trace) for grant in grants])


async def _beneficiary(session: AsyncSession, rule: ActiveRule, data: dict[str, Any]) -> str | None:
    """Who earns: a citizen's pseudonymous id as is, a merchant found by KBO number or id."""
    value = rules.lookup(data, rule.beneficiary_field or "")
    if not isinstance(value, str) or not value:
        return None
    if rule.beneficiary_kind == "citizen":
        return value
    return await merchant_by_reference(session, value)


async def merchant_by_reference(session: AsyncSession, reference: str) -> str | None:
    m = store.merchants
    try:
        condition = m.c.kbo == domain.normalise_kbo(reference)
    except domain.InvalidParty:
        try:
            condition = m.c.id == UUID(reference)
        except ValueError:
            return None
    found = (await session.execute(sa.select(m.c.id).where(condition))).scalar()
    return None if found is None else str(found)


@dataclass(frozen=True)
class Grant:
    """A reward a rule wants to give; limits and the budget decide how much of it is issued."""

    rule: ActiveRule
    beneficiary: str
    amount: int


@dataclass(frozen=True)
class Pending:
    """A grant with the trigger (event or claim) that earned it and when that happened."""

    grant: Grant
    trigger_id: str
    trigger_type: str
    at: datetime
    # The trace of the handler that found the grant: issuance runs at commit, after that span ended.
    traceparent: str | None = None

    @cached_property  # read three times per grant; the window key needs a time zone conversion
    def usage_key(self) -> UsageKey | None:
        rule = self.grant.rule
        if rule.limit_window is None:
            return None
        return (rule.campaign_id, self.grant.beneficiary, domain.window_key(rule.limit_window, self.at))


@dataclass(frozen=True)
class _Planned:
    pending: Pending
    amount: int
    account_id: UUID
    transfer_id: UUID


UsageKey = limits.UsageKey
# Grants of events handled in a transaction still open, issued together just before it commits.
_DEFERRED: WeakKeyDictionary[UnitOfWork, list[Pending]] = WeakKeyDictionary()


def _defer(uow: UnitOfWork, pending: list[Pending]) -> None:
    """Queue grants until the unit of work flushes: all events of a consumer batch share one ledger batch."""
    queue = _DEFERRED.get(uow)
    if queue is None:
        queue = _DEFERRED[uow] = []
        flush_outbox = uow.flush

        async def flush() -> None:
            # The unit of work offers no before-commit hook; its commit flushes first, so issuance runs there.
            await issue_many(uow, list(queue))
            queue.clear()
            await flush_outbox()

        uow.flush = flush  # type: ignore[method-assign]
    queue.extend(pending)


async def issue(
    uow: UnitOfWork,
    rule: ActiveRule,
    beneficiary: str,
    amount: int,
    trigger_id: str,
    trigger_type: str,
    at: datetime,
) -> int:
    """Move coins from the campaign budget to the beneficiary, once per (trigger, rule); returns the coins."""
    return await issue_many(uow, [Pending(Grant(rule, beneficiary, amount), trigger_id, trigger_type, at)])


async def issue_many(uow: UnitOfWork, pending: list[Pending]) -> int:
    """Issue grants in one ledger batch, each once per (trigger, rule); returns the coins issued."""
    if not pending:
        return 0
    used = await limits.lock(uow, [key for p in pending if (key := p.usage_key) is not None])
    wallets = await _ensure_wallets(
        uow, [p.grant for p in pending if p.grant.rule.beneficiary_kind != "merchant"]
    )
    planned: list[_Planned] = []
    for item in pending:
        grant, key = item.grant, item.usage_key
        amount = domain.grantable(grant.amount, used.get(key, 0) if key else 0, grant.rule.limit_coins)
        account_id = await _beneficiary_account(uow, grant, wallets) if amount > 0 else None
        if amount <= 0 or account_id is None:
            continue
        if key is not None:
            used[key] += amount  # a later grant on the same limit row sees this one
        planned.append(_Planned(item, amount, account_id, domain.issuance_id(item.trigger_id, grant.rule.id)))
    if not planned:
        return 0
    # Balancing: each amount is clamped to what its budget has left, so a budget can never be overspent.
    transfers = [
        Transfer(
            p.transfer_id,
            debit_account_id=domain.budget_account(p.pending.grant.rule.campaign_id),
            credit_account_id=p.account_id,
            amount=p.amount,
            ledger=p.pending.grant.rule.coin.ledger,
            code=int(book.TransferCode.ISSUE),
            flags=TransferFlags.BALANCING_DEBIT,
        )
        for p in planned
    ]
    results = await (await book.session_of(uow.session)).create_transfers(transfers)
    # Not `ok`: issued before (the same trigger and rule: `exists`), or the budget is spent.
    issued = [
        (p, r.transfer.amount) for p, r in zip(planned, results, strict=True) if r.code == "ok" and r.transfer
    ]
    await _record(uow, issued)
    return sum(amount for _, amount in issued)


async def _ensure_wallets(uow: UnitOfWork, grants: list[Grant]) -> set[UUID]:
    """The wallets of these citizens, opened (row and ledger account) where missing."""
    known = caches.of(uow.session).wallets
    wanted = {domain.wallet_account(g.beneficiary, g.rule.coin.id): g for g in grants}
    # In account order: transactions of other partitions (or processes) opening some of the same wallets then
    # wait for each other's rows in one order and never deadlock.
    new = {account_id: wanted[account_id] for account_id in sorted(wanted) if account_id not in known}
    if new:
        w, now = store.wallets, _now()
        rows = [
            {"account_id": a, "citizen_id": g.beneficiary, "coin_type_id": g.rule.coin.id, "created_at": now}
            for a, g in new.items()
        ]
        stmt = store.upsert(uow.session)(w).on_conflict_do_nothing().returning(w.c.account_id)
        opened = set((await uow.session.execute(stmt, rows)).scalars())
        accounts = [
            book.account(a, new[a].rule.coin, book.AccountCode.WALLET, new[a].rule.coin.issuer_tenant)
            for a in sorted(opened)
        ]
        if accounts:
            await book.open_accounts(await book.session_of(uow.session), accounts)
        uow.after_commit(lambda: known.update(new))
    return set(wanted)


async def _beneficiary_account(uow: UnitOfWork, grant: Grant, wallets: set[UUID]) -> UUID | None:
    coin = grant.rule.coin
    if grant.rule.beneficiary_kind == "merchant":
        merchant_id = UUID(grant.beneficiary)
        merchant = (await store.load_merchants(uow.session, [merchant_id])).get(merchant_id)
        if merchant is None or str(coin.id) not in merchant.coin_type_ids:
            return None  # the shop does not take this coin: nothing to reward it with
        return domain.merchant_account(merchant.id, coin.id)
    account_id = domain.wallet_account(grant.beneficiary, coin.id)
    return account_id if account_id in wallets else None


async def _record(uow: UnitOfWork, issued: list[tuple[_Planned, int]]) -> None:
    if not issued:
        return
    now = _now()
    await limits.add(uow, [(key, amount) for p, amount in issued if (key := p.pending.usage_key) is not None])
    rows = [
        {
            "id": p.transfer_id,
            "campaign_id": p.pending.grant.rule.campaign_id,
            "rule_id": p.pending.grant.rule.id,
            "trigger_id": p.pending.trigger_id,
            "beneficiary_kind": p.pending.grant.rule.beneficiary_kind,
            "beneficiary_id": p.pending.grant.beneficiary,
            "coin_type_id": p.pending.grant.rule.coin.id,
            "amount": amount,
            "issued_at": now,
        }
        for p, amount in issued
    ]
    await store.insert_many(uow.session, store.issuances, rows)
    for p, amount in issued:
        tenant = p.pending.grant.rule.coin.issuer_tenant
        uow.emit(_issued_event(p, amount, now), tenant=tenant, traceparent=p.pending.traceparent)


def _issued_event(p: _Planned, amount: int, now: datetime) -> events.CoinsIssued:
    rule = p.pending.grant.rule
    return events.CoinsIssued(
        issuance_id=p.transfer_id,
        campaign_id=rule.campaign_id,
        rule_id=rule.id,
        coin_type_id=rule.coin.id,
        coin_code=rule.coin.code,
        beneficiary_kind="merchant" if rule.beneficiary_kind == "merchant" else "citizen",
        beneficiary_id=p.pending.grant.beneficiary,
        amount=amount,
        trigger_event_id=p.pending.trigger_id[:200],
        trigger_event_type=p.pending.trigger_type[:200],
        issued_at=now,
    )


def _now() -> datetime:
    return datetime.now(UTC)
