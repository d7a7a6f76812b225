"""The rule engine: any contract event (or an approved claim) is matched against active rules and rewarded."""

from __future__ import annotations

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
from incentives import book, domain, rules, store
from ledger import LedgerSession, TransferFlags


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


async def on_event(uow: UnitOfWork, event: Event, envelope: Envelope) -> None:
    """Reward whoever the active rules for this event type name; an event no rule wants records nothing."""
    candidates = await active_rules(uow.session, envelope.type)
    if not candidates:
        return
    data = event.model_dump(mode="json")
    for rule in candidates:
        if not rule.applies(envelope.tenant, envelope.time) or not rules.evaluate(rule.condition, data):
            continue
        beneficiary = await _beneficiary(uow.session, rule, data)
        if beneficiary is None:
            continue
        base = rules.lookup(data, rule.reward.base_field) if rule.reward.base_field else None
        amount = rule.reward.amount(rule.coin, base if isinstance(base, int) else None)
        await issue(uow, rule, beneficiary, amount, envelope.id, envelope.type, envelope.time)


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
    session = uow.session
    window_key = domain.window_key(rule.limit_window, at) if rule.limit_window else None
    used = await _lock_usage(session, rule.campaign_id, beneficiary, window_key)
    grant = domain.grantable(amount, used, rule.limit_coins)
    if grant <= 0:
        return 0
    ledger = await book.session_of(session)
    account_id = await _beneficiary_account(session, ledger, rule, beneficiary)
    if account_id is None:
        return 0
    transfer_id = domain.issuance_id(trigger_id, rule.id)
    # Balancing: the amount is clamped to what the budget has left, so a budget can never be overspent.
    result = await book.move(
        ledger,
        transfer_id,
        rule.coin,
        domain.budget_account(rule.campaign_id),
        account_id,
        grant,
        book.TransferCode.ISSUE,
        flags=TransferFlags.BALANCING_DEBIT,
    )
    if result.code != "ok" or result.transfer is None:
        return 0  # issued before (same trigger and rule), or the budget is spent
    granted = result.transfer.amount
    await _record(uow, rule, beneficiary, granted, trigger_id, trigger_type, window_key, transfer_id)
    return granted


async def _lock_usage(session: AsyncSession, campaign_id: UUID, member: str, window_key: str | None) -> int:
    if window_key is None:
        return 0
    u = store.limit_usage
    key = {"campaign_id": campaign_id, "member_id": member, "window_key": window_key}
    await store.insert_ignore(session, u, {**key, "coins": 0})
    query = sa.select(u.c.coins).where(*[u.c[k] == v for k, v in key.items()]).with_for_update()
    return int((await session.execute(query)).scalar_one())


async def _beneficiary_account(
    session: AsyncSession, ledger: LedgerSession, rule: ActiveRule, beneficiary: str
) -> UUID | None:
    coin = rule.coin
    if rule.beneficiary_kind == "merchant":
        merchant = await store.load_row(session, store.merchants, UUID(beneficiary), "merchant")
        if str(coin.id) not in merchant.coin_type_ids:
            return None  # the shop does not take this coin: nothing to reward it with
        return domain.merchant_account(merchant.id, coin.id)
    return await ensure_wallet(session, ledger, beneficiary, coin)


async def ensure_wallet(
    session: AsyncSession, ledger: LedgerSession, citizen_id: str, coin: domain.CoinType
) -> UUID:
    account_id = domain.wallet_account(citizen_id, coin.id)
    row = {"account_id": account_id, "citizen_id": citizen_id, "coin_type_id": coin.id, "created_at": _now()}
    if await store.insert_ignore(session, store.wallets, row):
        wallet = book.account(account_id, coin, book.AccountCode.WALLET, coin.issuer_tenant)
        await book.open_accounts(ledger, [wallet])
    return account_id


async def _record(
    uow: UnitOfWork,
    rule: ActiveRule,
    beneficiary: str,
    granted: int,
    trigger_id: str,
    trigger_type: str,
    window_key: str | None,
    transfer_id: UUID,
) -> None:
    now = _now()
    if window_key is not None:
        u = store.limit_usage
        await uow.session.execute(
            sa.update(u)
            .where(
                u.c.campaign_id == rule.campaign_id,
                u.c.member_id == beneficiary,
                u.c.window_key == window_key,
            )
            .values(coins=u.c.coins + granted)
        )
    await uow.session.execute(
        sa.insert(store.issuances).values(
            id=transfer_id,
            campaign_id=rule.campaign_id,
            rule_id=rule.id,
            trigger_id=trigger_id,
            beneficiary_kind=rule.beneficiary_kind,
            beneficiary_id=beneficiary,
            coin_type_id=rule.coin.id,
            amount=granted,
            issued_at=now,
        )
    )
    issued = events.CoinsIssued(
        issuance_id=transfer_id,
        campaign_id=rule.campaign_id,
        rule_id=rule.id,
        coin_type_id=rule.coin.id,
        coin_code=rule.coin.code,
        beneficiary_kind="merchant" if rule.beneficiary_kind == "merchant" else "citizen",
        beneficiary_id=beneficiary,
        amount=granted,
        trigger_event_id=trigger_id[:200],
        trigger_event_type=trigger_type[:200],
        issued_at=now,
    )
    uow.emit(issued, tenant=rule.coin.issuer_tenant)


def _now() -> datetime:
    return datetime.now(UTC)
