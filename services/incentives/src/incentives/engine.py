"""The rule engine: any contract event (or an approved claim) is matched against active rules and rewarded."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import incentives as events
from contracts.base import Event
from contracts.envelope import Envelope
from eventbus import UnitOfWork
from incentives import book, caches, domain, rules, store
from ledger import LedgerSession, Transfer, TransferFlags


@dataclass(frozen=True)
class ActiveRule:
    """A rule of an active campaign, with what issuing needs (its campaign's coin and validity)."""

    id: UUID
    campaign_id: UUID
    condition: rules.Node
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
        if not rule.applies(envelope.tenant, envelope.time) or not rules.evaluate(rule.condition, data):
            continue
        beneficiary = await _beneficiary(uow.session, rule, data)
        if beneficiary is None:
            continue
        base = rules.lookup(data, rule.reward.base_field) if rule.reward.base_field else None
        amount = rule.reward.amount(rule.coin, base if isinstance(base, int) else None)
        grants.append(Grant(rule, beneficiary, amount))
    await issue_many(uow, grants, envelope.id, envelope.type, envelope.time)


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
class _Planned:
    grant: Grant
    usage_key: tuple[UUID, str, str] | None
    account_id: UUID
    transfer_id: UUID


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
    return await issue_many(uow, [Grant(rule, beneficiary, amount)], trigger_id, trigger_type, at)


async def issue_many(
    uow: UnitOfWork, grants: list[Grant], trigger_id: str, trigger_type: str, at: datetime
) -> int:
    """Issue the grants of one trigger in one ledger batch, once per (trigger, rule); returns the coins."""
    ledger = await book.session_of(uow.session)
    keys = [_usage_key(grant, at) for grant in grants]
    used = await _lock_usage(uow, [key for key in keys if key is not None])
    planned: list[_Planned] = []
    for grant, key in zip(grants, keys, strict=True):
        amount = domain.grantable(grant.amount, used.get(key, 0) if key else 0, grant.rule.limit_coins)
        account_id = (
            await _beneficiary_account(uow, ledger, grant.rule, grant.beneficiary) if amount > 0 else None
        )
        if amount <= 0 or account_id is None:
            continue
        if key is not None:
            used[key] += amount  # a second rule of the same campaign in this event sees the first's grant
        transfer_id = domain.issuance_id(trigger_id, grant.rule.id)
        planned.append(_Planned(Grant(grant.rule, grant.beneficiary, amount), key, account_id, transfer_id))
    if not planned:
        return 0
    # Balancing: each amount is clamped to what its budget has left, so a budget can never be overspent.
    transfers = [
        Transfer(
            p.transfer_id,
            debit_account_id=domain.budget_account(p.grant.rule.campaign_id),
            credit_account_id=p.account_id,
            amount=p.grant.amount,
            ledger=p.grant.rule.coin.ledger,
            code=int(book.TransferCode.ISSUE),
            flags=TransferFlags.BALANCING_DEBIT,
        )
        for p in planned
    ]
    results = await ledger.create_transfers(transfers)
    # Not `ok`: issued before (the same trigger and rule: `exists`), or the budget is spent.
    issued = [
        (p, r.transfer.amount) for p, r in zip(planned, results, strict=True) if r.code == "ok" and r.transfer
    ]
    await _record(uow, issued, trigger_id, trigger_type)
    return sum(amount for _, amount in issued)


UsageKey = tuple[UUID, str, str]


def _usage_key(grant: Grant, at: datetime) -> UsageKey | None:
    window = grant.rule.limit_window
    return (
        None if window is None else (grant.rule.campaign_id, grant.beneficiary, domain.window_key(window, at))
    )


async def _lock_usage(uow: UnitOfWork, keys: list[UsageKey]) -> dict[UsageKey, int]:
    """Members' coins per campaign and window, rows locked until commit (read once per transaction)."""
    seen = caches.usage_in(uow)
    missing = sorted({key for key in keys if key not in seen})
    if missing:
        u = store.limit_usage
        rows = [{"campaign_id": c, "member_id": m, "window_key": w, "coins": 0} for c, m, w in missing]
        await uow.session.execute(store.upsert(uow.session)(u).on_conflict_do_nothing(), rows)
        key_columns = sa.tuple_(u.c.campaign_id, u.c.member_id, u.c.window_key)
        # Locked in key order, so that concurrent transactions cannot deadlock on these rows.
        query = (
            sa.select(u.c.campaign_id, u.c.member_id, u.c.window_key, u.c.coins)
            .where(key_columns.in_(missing))
            .order_by(u.c.campaign_id, u.c.member_id, u.c.window_key)
            .with_for_update()
        )
        for campaign_id, member, window_key, coins in (await uow.session.execute(query)).all():
            seen[(campaign_id, member, window_key)] = int(coins)
    return {key: seen[key] for key in keys}


async def _beneficiary_account(
    uow: UnitOfWork, ledger: LedgerSession, rule: ActiveRule, beneficiary: str
) -> UUID | None:
    coin = rule.coin
    if rule.beneficiary_kind == "merchant":
        merchant = await store.load_row(uow.session, store.merchants, UUID(beneficiary), "merchant")
        if str(coin.id) not in merchant.coin_type_ids:
            return None  # the shop does not take this coin: nothing to reward it with
        return domain.merchant_account(merchant.id, coin.id)
    return await ensure_wallet(uow, ledger, beneficiary, coin)


async def ensure_wallet(
    uow: UnitOfWork, ledger: LedgerSession, citizen_id: str, coin: domain.CoinType
) -> UUID:
    account_id = domain.wallet_account(citizen_id, coin.id)
    known = caches.of(uow.session).wallets
    if account_id in known:
        return account_id
    row = {"account_id": account_id, "citizen_id": citizen_id, "coin_type_id": coin.id, "created_at": _now()}
    if await store.insert_ignore(uow.session, store.wallets, row):
        wallet = book.account(account_id, coin, book.AccountCode.WALLET, coin.issuer_tenant)
        await book.open_accounts(ledger, [wallet])
    uow.after_commit(lambda: known.add(account_id))
    return account_id


async def _record(
    uow: UnitOfWork, issued: list[tuple[_Planned, int]], trigger_id: str, trigger_type: str
) -> None:
    if not issued:
        return
    now = _now()
    u = store.limit_usage
    usage = [
        {"c": p.usage_key[0], "m": p.usage_key[1], "w": p.usage_key[2], "g": amount}
        for p, amount in issued
        if p.usage_key is not None
    ]
    if usage:
        stmt = (
            sa.update(u)
            .where(
                u.c.campaign_id == sa.bindparam("c"),
                u.c.member_id == sa.bindparam("m"),
                u.c.window_key == sa.bindparam("w"),
            )
            .values(coins=u.c.coins + sa.bindparam("g"))
        )
        # Core executemany of one UPDATE; the ORM's bulk path would want primary-key names as parameters.
        connection = await uow.session.connection()
        await connection.execute(stmt, usage)
        seen = caches.usage_in(uow)
        for p, amount in issued:
            if p.usage_key is not None:
                seen[p.usage_key] += amount
    rows = [
        {
            "id": p.transfer_id,
            "campaign_id": p.grant.rule.campaign_id,
            "rule_id": p.grant.rule.id,
            "trigger_id": trigger_id,
            "beneficiary_kind": p.grant.rule.beneficiary_kind,
            "beneficiary_id": p.grant.beneficiary,
            "coin_type_id": p.grant.rule.coin.id,
            "amount": amount,
            "issued_at": now,
        }
        for p, amount in issued
    ]
    await uow.session.execute(sa.insert(store.issuances), rows)
    for p, amount in issued:
        uow.emit(
            _issued_event(p, amount, trigger_id, trigger_type, now), tenant=p.grant.rule.coin.issuer_tenant
        )


def _issued_event(
    p: _Planned, amount: int, trigger_id: str, trigger_type: str, now: datetime
) -> events.CoinsIssued:
    rule = p.grant.rule
    return events.CoinsIssued(
        issuance_id=p.transfer_id,
        campaign_id=rule.campaign_id,
        rule_id=rule.id,
        coin_type_id=rule.coin.id,
        coin_code=rule.coin.code,
        beneficiary_kind="merchant" if rule.beneficiary_kind == "merchant" else "citizen",
        beneficiary_id=p.grant.beneficiary,
        amount=amount,
        trigger_event_id=trigger_id[:200],
        trigger_event_type=trigger_type[:200],
        issued_at=now,
    )


def _now() -> datetime:
    return datetime.now(UTC)
