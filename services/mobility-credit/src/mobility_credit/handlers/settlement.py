"""Provider settlement runs: what each provider is owed for a period, moved to payouts, as a pain.001 file."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from contracts import mobility_credit as events
from eventbus import UnitOfWork, UnitOfWorkFactory
from ledger import Transfer
from mobility_credit import accounts, domain, pain001, store
from mobility_credit.domain import LOCAL_TIME
from mobility_credit.handlers.catalogue import load_provider
from mobility_credit.models import ModeTotalOut, SettlementOut, SettlementRunIn, SettlementRunOut
from mobility_credit.transaction import now, run_command, transfer
from servicekit.auth import Principal


@dataclass
class Owed:
    """What a provider is owed for a period: net per payable shard (ledger) and per mode (statement)."""

    trip_ids: list[UUID] = field(default_factory=list)
    refund_ids: list[UUID] = field(default_factory=list)
    per_shard: dict[UUID, int] = field(default_factory=lambda: defaultdict(int))
    per_mode: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    @property
    def amount(self) -> int:
        return sum(self.per_shard.values())


@dataclass(frozen=True)
class CityAccount:
    """The city's own bank account, the debtor of settlement transfers."""

    name: str
    iban: str
    bic: str | None
    kbo: str | None


def local_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The UTC instants of a period of local days, end day included."""
    first = datetime.combine(start, time(0), LOCAL_TIME).astimezone(UTC)
    after = datetime.combine(end + timedelta(days=1), time(0), LOCAL_TIME).astimezone(UTC)
    return first, after


async def _owed(uow: UnitOfWork, tenant: str, start: datetime, end: datetime) -> dict[UUID, Owed]:
    t, r = store.trips, store.refunds
    owed: dict[UUID, Owed] = defaultdict(Owed)
    trips = await uow.session.execute(
        sa.select(t.c.id, t.c.provider_id, t.c.payable_account_id, t.c.mode, t.c.city_share_cents).where(
            t.c.tenant == tenant, t.c.settlement_id.is_(None), t.c.paid_at >= start, t.c.paid_at < end
        )
    )
    for row in trips:
        item = owed[row.provider_id]
        item.trip_ids.append(row.id)
        item.per_shard[row.payable_account_id] += row.city_share_cents
        item.per_mode[row.mode][0] += 1
        item.per_mode[row.mode][1] += row.city_share_cents
    refunds = await uow.session.execute(
        sa.select(r.c.id, r.c.provider_id, r.c.payable_account_id, r.c.mode, r.c.amount_cents).where(
            r.c.tenant == tenant, r.c.settlement_id.is_(None), r.c.created_at >= start, r.c.created_at < end
        )
    )
    for row in refunds:
        item = owed[row.provider_id]
        item.refund_ids.append(row.id)
        item.per_shard[row.payable_account_id] -= row.amount_cents
        item.per_mode[row.mode][1] -= row.amount_cents
    return owed


def _payout_transfers(settlement_id: UUID, tenant: str, owed: Owed) -> list[Transfer]:
    payouts = accounts.city_payouts(tenant)
    moves = []
    for shard, net in sorted(owed.per_shard.items()):
        if net == 0:
            continue
        debit, credit = (shard, payouts) if net > 0 else (payouts, shard)
        moves.append(
            Transfer(
                accounts.derived_id("settlement", settlement_id, shard),
                debit,
                credit,
                abs(net),
                accounts.EUR,
                accounts.TransferCode.SETTLEMENT,
            )
        )
    return moves


async def run_settlement(
    uow_factory: UnitOfWorkFactory, principal: Principal, body: SettlementRunIn, city: CityAccount
) -> SettlementRunOut:
    """Settle every provider owed money for the period; the same period again returns the same run."""
    tenant = principal.tenant
    run_id = accounts.derived_id("settlement-run", tenant, body.period_start, body.period_end)

    async def work(uow: UnitOfWork) -> SettlementRunOut:
        existing = await load_run(uow, tenant, run_id)
        if existing is not None:
            return existing
        start, end = local_bounds(body.period_start, body.period_end)
        owed = await _owed(uow, tenant, start, end)
        p = store.providers
        rows = (await uow.session.execute(sa.select(p).where(p.c.id.in_(list(owed))))).all()
        providers = {row.id: row for row in rows}
        lines: list[pain001.CreditTransfer] = []
        at = now()
        for provider_id, item in sorted(owed.items()):
            if item.amount <= 0:
                continue  # nothing to pay (refunds outweigh trips): carried to a later period
            line = await _settle_provider(uow, tenant, run_id, providers[provider_id], item, body, at)
            lines.append(line)
        message_id = f"MC-{body.period_start:%Y%m%d}-{body.period_end:%Y%m%d}-{run_id.hex[:8]}"
        xml = pain001.credit_transfer_initiation(
            message_id=message_id,
            created_at=at,
            execution_date=body.execution_date or at.astimezone(LOCAL_TIME).date(),
            debtor=pain001.Party(city.name, city.iban, city.bic, city.kbo),
            transfers=lines,
        )
        await uow.session.execute(
            sa.insert(store.settlement_runs).values(
                id=run_id,
                tenant=tenant,
                period_start=body.period_start,
                period_end=body.period_end,
                message_id=message_id,
                total_cents=sum(line.amount_cents for line in lines),
                transactions=len(lines),
                pain001=xml,
                created_at=at,
            )
        )
        run = await load_run(uow, tenant, run_id)
        assert run is not None
        return run

    return await run_command(uow_factory, work)


async def _settle_provider(
    uow: UnitOfWork, tenant: str, run_id: UUID, provider: Any, item: Owed, body: SettlementRunIn, at: datetime
) -> pain001.CreditTransfer:
    settlement_id = accounts.derived_id("settlement", run_id, provider.id)
    await transfer(uow, _payout_transfers(settlement_id, tenant, item))
    t, r = store.trips, store.refunds
    await uow.session.execute(
        sa.update(t).where(t.c.id.in_(item.trip_ids)).values(settlement_id=settlement_id)
    )
    if item.refund_ids:
        await uow.session.execute(
            sa.update(r).where(r.c.id.in_(item.refund_ids)).values(settlement_id=settlement_id)
        )
    per_mode = [
        {"mode": mode, "trips": count, "amount_cents": cents}
        for mode, (count, cents) in sorted(item.per_mode.items())
    ]
    end_to_end = f"MC-{settlement_id.hex[:24]}"
    await uow.session.execute(
        sa.insert(store.settlements).values(
            id=settlement_id,
            run_id=run_id,
            tenant=tenant,
            provider_id=provider.id,
            period_start=body.period_start,
            period_end=body.period_end,
            trips=len(item.trip_ids),
            amount_cents=item.amount,
            per_mode=per_mode,
            end_to_end_id=end_to_end,
            created_at=at,
        )
    )
    uow.emit(
        events.ProviderSettled(
            settlement_id=settlement_id,
            provider_id=provider.id,
            provider_name=provider.name,
            period_start=body.period_start,
            period_end=body.period_end,
            trips=len(item.trip_ids),
            amount_cents=item.amount,
            per_mode=[events.ModeTotal.model_validate(m) for m in per_mode],
            payment_information_id=end_to_end,
            settled_at=at,
        ),
        tenant=tenant,
        subject=str(settlement_id),
    )
    remittance = f"Mobiliteitsbudget {body.period_start.isoformat()} - {body.period_end.isoformat()}"
    creditor = pain001.Party(provider.name, provider.iban, provider.bic)
    return pain001.CreditTransfer(end_to_end, item.amount, creditor, remittance)


def settlement_out(row: Any, provider_name: str) -> SettlementOut:
    return SettlementOut(
        id=row.id,
        run_id=row.run_id,
        provider_id=row.provider_id,
        provider_name=provider_name,
        period_start=row.period_start,
        period_end=row.period_end,
        trips=row.trips,
        amount_cents=row.amount_cents,
        per_mode=[ModeTotalOut.model_validate(m) for m in row.per_mode],
        end_to_end_id=row.end_to_end_id,
        created_at=row.created_at,
    )


async def _settlements(uow: UnitOfWork, *conditions: Any) -> list[SettlementOut]:
    s, p = store.settlements, store.providers
    rows = (
        await uow.session.execute(
            sa.select(s, p.c.name.label("provider_name"))
            .join(p, p.c.id == s.c.provider_id)
            .where(*conditions)
            .order_by(s.c.period_start, p.c.name)
        )
    ).all()
    return [settlement_out(row, row.provider_name) for row in rows]


async def load_run(uow: UnitOfWork, tenant: str, run_id: UUID) -> SettlementRunOut | None:
    r = store.settlement_runs
    row = (await uow.session.execute(sa.select(r).where(r.c.id == run_id))).first()
    if row is None or row.tenant != tenant:
        return None
    return SettlementRunOut(
        id=row.id,
        tenant=row.tenant,
        period_start=row.period_start,
        period_end=row.period_end,
        message_id=row.message_id,
        total_cents=row.total_cents,
        transactions=row.transactions,
        settlements=await _settlements(uow, store.settlements.c.run_id == run_id),
    )


async def get_run(uow_factory: UnitOfWorkFactory, principal: Principal, run_id: UUID) -> SettlementRunOut:
    async with uow_factory() as uow:
        run = await load_run(uow, principal.tenant, run_id)
    if run is None:
        raise domain.NotFound("no such settlement run")
    return run


async def run_file(uow_factory: UnitOfWorkFactory, principal: Principal, run_id: UUID) -> str:
    r = store.settlement_runs
    async with uow_factory() as uow:
        row = (await uow.session.execute(sa.select(r.c.tenant, r.c.pain001).where(r.c.id == run_id))).first()
    if row is None or row.tenant != principal.tenant:
        raise domain.NotFound("no such settlement run")
    text: str = row.pain001
    return text


async def provider_settlements(
    uow_factory: UnitOfWorkFactory, principal: Principal, provider_id: UUID
) -> list[SettlementOut]:
    async with uow_factory() as uow:
        await load_provider(uow, principal, provider_id)
        return await _settlements(uow, store.settlements.c.provider_id == provider_id)
