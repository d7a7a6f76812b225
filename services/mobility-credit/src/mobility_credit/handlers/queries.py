"""Reads: a citizen's wallet, history and monthly statement; a provider's trips; the city's report."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from eventbus import UnitOfWork, UnitOfWorkFactory
from ledger import Balance, verify
from mobility_credit import accounts, domain, store
from mobility_credit.domain import LOCAL_TIME
from mobility_credit.handlers.catalogue import grant_out, load_provider
from mobility_credit.handlers.payments import hold_out, trip_out
from mobility_credit.models import (
    HistoryItem,
    HoldOut,
    ModeTotalOut,
    ReportOut,
    SchemeReport,
    StatementOut,
    TripOut,
    WalletOut,
)
from mobility_credit.transaction import aware, ledger_session
from servicekit.auth import Principal


async def _grant_rows(uow: UnitOfWork, tenant: str, citizen_id: str) -> list[Any]:
    g, s = store.grants, store.schemes
    query = (
        sa.select(g, s.c.name.label("scheme_name"))
        .join(s, s.c.id == g.c.scheme_id)
        .where(g.c.tenant == tenant, g.c.citizen_id == citizen_id)
        .order_by(g.c.expires_on, g.c.created_at)
    )
    return list((await uow.session.execute(query)).all())


async def wallet(uow_factory: UnitOfWorkFactory, principal: Principal) -> WalletOut:
    async with uow_factory() as uow:
        rows = await _grant_rows(uow, principal.tenant, principal.subject)
        session = await ledger_session(uow)
        found = await session.lookup_accounts([accounts.grant_account(r.id) for r in rows])
    balances = {a.id: a.balance for a in found}
    grants = []
    for row in rows:
        balance = balances.get(accounts.grant_account(row.id), Balance())
        out = grant_out(row, row.scheme_name)
        grants.append(
            out.model_copy(
                update={"available_cents": balance.available, "held_cents": balance.debits_pending}
            )
        )
    live = [g for g in grants if g.expired_cents is None]
    return WalletOut(
        citizen_id=principal.subject,
        tenant=principal.tenant,
        available_cents=sum(g.available_cents or 0 for g in live),
        held_cents=sum(g.held_cents or 0 for g in live),
        grants=grants,
    )


async def _history(uow: UnitOfWork, tenant: str, citizen_id: str) -> list[HistoryItem]:
    items: list[HistoryItem] = []
    for row in await _grant_rows(uow, tenant, citizen_id):
        items.append(
            HistoryItem(
                kind="grant",
                at=aware(row.created_at),
                amount_cents=row.amount_cents,
                description=row.scheme_name,
            )
        )
        if row.expired_cents:
            end = datetime.combine(row.expires_on + timedelta(days=1), time(0), LOCAL_TIME)
            items.append(
                HistoryItem(
                    kind="expiry", at=end, amount_cents=-row.expired_cents, description=row.scheme_name
                )
            )
    t, r, p = store.trips, store.refunds, store.providers
    trips = await uow.session.execute(
        sa.select(t, p.c.name.label("provider_name"))
        .join(p, p.c.id == t.c.provider_id)
        .where(t.c.tenant == tenant, t.c.citizen_id == citizen_id)
    )
    for row in trips:
        description = f"{row.provider_name}: {row.mode}"
        trip = trip_out(row)
        items.append(
            HistoryItem(
                kind="trip",
                at=aware(row.paid_at),
                amount_cents=-row.city_share_cents,
                description=description,
                trip=trip,
            )
        )
    refunds = await uow.session.execute(
        sa.select(r).where(r.c.tenant == tenant, r.c.citizen_id == citizen_id)
    )
    for row in refunds:
        items.append(
            HistoryItem(
                kind="refund",
                at=aware(row.created_at),
                amount_cents=row.amount_cents,
                description=f"refund of trip {row.trip_id}",
            )
        )
    return sorted(items, key=lambda item: item.at)


async def history(uow_factory: UnitOfWorkFactory, principal: Principal) -> list[HistoryItem]:
    async with uow_factory() as uow:
        return await _history(uow, principal.tenant, principal.subject)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise domain.InvalidAmount("a month is written YYYY-MM") from None
    after = domain.add_months(first, 1)
    return datetime.combine(first, time(0), LOCAL_TIME), datetime.combine(after, time(0), LOCAL_TIME)


async def statement(uow_factory: UnitOfWorkFactory, principal: Principal, month: str) -> StatementOut:
    """The month's movements of the citizen's budget with opening and closing balance (posted amounts)."""
    start, end = month_bounds(month)
    async with uow_factory() as uow:
        items = await _history(uow, principal.tenant, principal.subject)
    before = [i for i in items if i.at < start]
    inside = [i for i in items if start <= i.at < end]
    opening = sum(i.amount_cents for i in before)

    def total(kind: str) -> int:
        return sum(i.amount_cents for i in inside if i.kind == kind)

    return StatementOut(
        citizen_id=principal.subject,
        month=month,
        opening_cents=opening,
        granted_cents=total("grant"),
        spent_cents=-total("trip"),
        refunded_cents=total("refund"),
        expired_cents=-total("expiry"),
        closing_cents=opening + sum(i.amount_cents for i in inside),
        items=inside,
    )


async def provider_trips(
    uow_factory: UnitOfWorkFactory, principal: Principal, provider_id: UUID, limit: int
) -> list[TripOut]:
    t = store.trips
    async with uow_factory() as uow:
        await load_provider(uow, principal, provider_id)
        rows = await uow.session.execute(
            sa.select(t).where(t.c.provider_id == provider_id).order_by(t.c.paid_at.desc()).limit(limit)
        )
        return [trip_out(row) for row in rows]


async def provider_hold(
    uow_factory: UnitOfWorkFactory, principal: Principal, provider_id: UUID, hold_id: UUID
) -> HoldOut:
    h = store.holds
    async with uow_factory() as uow:
        await load_provider(uow, principal, provider_id)
        row = (
            await uow.session.execute(sa.select(h).where(h.c.id == hold_id, h.c.provider_id == provider_id))
        ).first()
    if row is None:
        raise domain.NotFound("no such hold")
    return hold_out(row)


async def report(uow_factory: UnitOfWorkFactory, tenant: str) -> ReportOut:
    """Totals per scheme and mode, and the check that every euro granted is somewhere in the ledger."""
    async with uow_factory() as uow:
        schemes = await _scheme_reports(uow, tenant)
        per_mode = await _mode_totals(uow, tenant)
        session = await ledger_session(uow)
        funding = await session.get_balances(accounts.city_funding(tenant).shard_ids)
        expired = await session.get_balance(accounts.city_expired(tenant))
        payouts = await session.get_balance(accounts.city_payouts(tenant))
        p = store.providers
        provider_rows = (
            await uow.session.execute(sa.select(p.c.id, p.c.shards).where(p.c.tenant == tenant))
        ).all()
        owed = Balance()
        for row in provider_rows:
            owed = owed + await session.get_balances(accounts.provider_payable(row.id, row.shards).shard_ids)
    available = sum(s.available_cents for s in schemes)
    held = sum(s.held_cents for s in schemes)
    granted = funding.debits_posted
    owed_cents = owed.credits_posted - owed.debits_posted
    # Double entry: every cent taken from city funding sits in exactly one of these places.
    balanced = granted == available + held + owed_cents + payouts.net_posted + expired.net_posted
    return ReportOut(
        tenant=tenant,
        schemes=schemes,
        per_mode=per_mode,
        granted_cents=granted,
        spent_cents=sum(s.spent_cents for s in schemes),
        owed_to_providers_cents=owed_cents,
        paid_out_cents=payouts.net_posted,
        expired_cents=expired.net_posted,
        citizens_available_cents=available,
        citizens_held_cents=held,
        balanced=balanced and held == owed.credits_pending,
    )


async def _scheme_reports(uow: UnitOfWork, tenant: str) -> list[SchemeReport]:
    s, g = store.schemes, store.grants
    schemes = (await uow.session.execute(sa.select(s.c.id, s.c.name).where(s.c.tenant == tenant))).all()
    grants = (await uow.session.execute(sa.select(g).where(g.c.tenant == tenant))).all()
    session = await ledger_session(uow)
    found = await session.lookup_accounts([accounts.grant_account(row.id) for row in grants])
    balances = {a.id: a.balance for a in found}
    sums: dict[UUID, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for row in grants:
        balance = balances.get(accounts.grant_account(row.id), Balance())
        item = sums[row.scheme_id]
        item[0] += 1
        item[1] += row.amount_cents
        item[2] += balance.available
        item[3] += balance.debits_pending
        refunded = balance.credits_posted - row.amount_cents
        item[4] += balance.debits_posted - (row.expired_cents or 0) - refunded
        item[5] += row.expired_cents or 0
    return [
        SchemeReport(
            scheme_id=row.id,
            name=row.name,
            grants=sums[row.id][0],
            granted_cents=sums[row.id][1],
            available_cents=sums[row.id][2],
            held_cents=sums[row.id][3],
            spent_cents=sums[row.id][4],
            expired_cents=sums[row.id][5],
        )
        for row in schemes
    ]


async def _mode_totals(uow: UnitOfWork, tenant: str) -> list[ModeTotalOut]:
    t = store.trips
    rows = await uow.session.execute(
        sa.select(t.c.mode, sa.func.count(), sa.func.sum(t.c.city_share_cents - t.c.refunded_cents))
        .where(t.c.tenant == tenant)
        .group_by(t.c.mode)
        .order_by(t.c.mode)
    )
    return [ModeTotalOut(mode=domain.Mode(m), trips=n, amount_cents=int(c or 0)) for m, n, c in rows]


async def verify_ledger(uow_factory: UnitOfWorkFactory) -> dict[str, Any]:
    async with uow_factory() as uow:
        report = await verify(await uow.session.connection())
    return report.as_dict()
