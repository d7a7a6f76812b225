"""Sweeps: holds past their timeout are released, grants past their end move what is left to `expired`."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from functools import partial
from uuid import UUID

import sqlalchemy as sa

from contracts import mobility_credit as events
from eventbus import UnitOfWork, UnitOfWorkFactory
from ledger import AMOUNT_MAX, CreateTransferResult, Transfer, TransferFlags
from mobility_credit import accounts, store
from mobility_credit.handlers.budget import add_usage, lock_usage
from mobility_credit.handlers.catalogue import today
from mobility_credit.models import SweepOut
from mobility_credit.transaction import ledger_error, ledger_session, now, run_command
from servicekit.service import ServiceContext

log = logging.getLogger(__name__)
_BATCH = 200


async def expire_holds(uow_factory: UnitOfWorkFactory) -> int:
    """Release every overdue hold exactly once (the expiry record's id is derived from the hold)."""
    total = 0
    while True:
        count = await run_command(uow_factory, _expire_hold_batch)
        total += count
        if count < _BATCH:
            return total


async def _expire_hold_batch(uow: UnitOfWork) -> int:
    session = await ledger_session(uow)
    results = await session.expire_pending_transfers(limit=_BATCH)
    h = store.holds
    for result in results:
        assert result.transfer is not None and result.transfer.pending_id is not None
        hold_id = result.transfer.pending_id
        hold = (await uow.session.execute(sa.select(h).where(h.c.id == hold_id))).first()
        if hold is None:
            continue
        await lock_usage(uow, hold.citizen_id, hold.scheme_id, hold.usage_keys)
        await add_usage(uow, hold.citizen_id, hold.scheme_id, hold.usage_keys, -hold.amount_cents)
        at = now()
        await uow.session.execute(
            sa.update(h).where(h.c.id == hold_id).values(status="expired", resolved_at=at)
        )
        uow.emit(
            events.HoldExpired(
                hold_id=hold_id,
                citizen_id=hold.citizen_id,
                provider_id=hold.provider_id,
                released_cents=hold.amount_cents,
                expired_at=at,
            ),
            tenant=hold.tenant,
            subject=str(hold_id),
        )
    return len(results)


async def expire_credits(uow_factory: UnitOfWorkFactory, on: date | None = None) -> tuple[int, int]:
    """Expire grants whose last day is before `on` and that have no open hold; returns (grants, cents)."""
    day = on or today()
    g, h = store.grants, store.holds
    open_hold = sa.exists().where(h.c.grant_id == g.c.id, h.c.status == "open")
    async with uow_factory() as uow:
        ids = (
            (
                await uow.session.execute(
                    sa.select(g.c.id).where(g.c.expires_on < day, g.c.expired_cents.is_(None), ~open_hold)
                )
            )
            .scalars()
            .all()
        )
    cents = 0
    for grant_id in ids:
        cents += await run_command(uow_factory, partial(_expire_grant, grant_id=grant_id, day=day))
    return len(ids), cents


async def _expire_grant(uow: UnitOfWork, grant_id: UUID, day: date) -> int:
    g = store.grants
    grant = (await uow.session.execute(sa.select(g).where(g.c.id == grant_id))).one()
    if grant.expired_cents is not None:
        return 0
    sweep = Transfer(
        accounts.derived_id("expiry", grant_id),
        accounts.grant_account(grant_id),
        accounts.city_expired(grant.tenant),
        AMOUNT_MAX,
        accounts.EUR,
        accounts.TransferCode.EXPIRY,
        flags=TransferFlags.BALANCING_DEBIT,
    )
    session = await ledger_session(uow)
    [result] = await session.create_transfers([sweep])
    if result.code is CreateTransferResult.BALANCING_AMOUNT_IS_ZERO:
        amount = 0
    elif result.ok and result.transfer is not None:
        amount = result.transfer.amount
    else:
        raise ledger_error(result)
    at = now()
    await uow.session.execute(sa.update(g).where(g.c.id == grant_id).values(expired_cents=amount))
    uow.emit(
        events.CreditExpired(
            expiry_id=sweep.id,
            citizen_id=grant.citizen_id,
            scheme_id=grant.scheme_id,
            amount_cents=amount,
            expired_on=day,
            expired_at=at,
        ),
        tenant=grant.tenant,
        subject=str(grant_id),
    )
    return amount


async def sweep(uow_factory: UnitOfWorkFactory, on: date | None = None) -> SweepOut:
    holds = await expire_holds(uow_factory)
    grants, cents = await expire_credits(uow_factory, on)
    return SweepOut(expired_holds=holds, expired_grants=grants, expired_cents=cents)


async def start_sweeper(context: ServiceContext) -> None:
    """Startup hook: sweep periodically in the background for as long as the service runs."""
    interval = float(getattr(context.settings, "sweep_interval_s", 30.0))
    if interval <= 0:
        return
    context.spawn(_sweep_forever(context, interval), name="mobility-credit-sweeper")


async def _sweep_forever(context: ServiceContext, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep(context.uow_factory)
        except Exception:
            log.exception("the expiry sweep failed; it runs again in %.0f s", interval)
