"""City admin commands on the catalogue: schemes, providers and grants (idempotent per citizen and scheme)."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa

from contracts import mobility_credit as events
from eventbus import UnitOfWork, UnitOfWorkFactory
from ledger import Transfer
from mobility_credit import accounts, domain, store
from mobility_credit.domain import LOCAL_TIME
from mobility_credit.models import GrantIn, GrantOut, ProviderIn, ProviderOut, SchemeIn, SchemeOut
from mobility_credit.transaction import ledger_session, now, run_command, transfer
from servicekit.auth import Principal

# Schemes and providers never change once created (there is no update command), so they are kept per id.
_parsed: dict[UUID, domain.Scheme] = {}
_known_providers: dict[UUID, Any] = {}


def parse_scheme(scheme_id: UUID, definition: dict[str, Any]) -> domain.Scheme:
    scheme = _parsed.get(scheme_id)
    if scheme is None:
        scheme = SchemeIn.model_validate(definition).to_domain()
        _parsed[scheme_id] = scheme
    return scheme


def today() -> date:
    return now().astimezone(LOCAL_TIME).date()


async def ensure_city_accounts(uow: UnitOfWork, tenant: str) -> None:
    session = await ledger_session(uow)
    await session.create_accounts(accounts.city_accounts(tenant))


async def create_scheme(
    uow_factory: UnitOfWorkFactory, principal: Principal, body: SchemeIn, scheme_id: UUID | None = None
) -> SchemeOut:
    body.to_domain()  # the domain's checks, before anything is written

    async def work(uow: UnitOfWork) -> SchemeOut:
        s = store.schemes
        found = (
            await uow.session.execute(
                sa.select(s.c.id, s.c.definition).where(s.c.tenant == principal.tenant, s.c.name == body.name)
            )
        ).first()
        if found is not None:
            if SchemeIn.model_validate(found.definition) != body:
                raise domain.Conflict(f"a different scheme named {body.name!r} exists")
            return SchemeOut(id=found.id, tenant=principal.tenant, definition=body)
        new_id = scheme_id or uuid4()
        await ensure_city_accounts(uow, principal.tenant)
        await uow.session.execute(
            sa.insert(s).values(
                id=new_id,
                tenant=principal.tenant,
                name=body.name,
                definition=body.model_dump(mode="json"),
                created_at=now(),
            )
        )
        return SchemeOut(id=new_id, tenant=principal.tenant, definition=body)

    return await run_command(uow_factory, work)


async def load_scheme(uow: UnitOfWork, tenant: str, scheme_id: UUID) -> tuple[str, domain.Scheme]:
    s = store.schemes
    row = (await uow.session.execute(sa.select(s).where(s.c.id == scheme_id))).first()
    if row is None or row.tenant != tenant:
        raise domain.NotFound("no such scheme")
    return row.name, parse_scheme(row.id, row.definition)


async def list_schemes(uow_factory: UnitOfWorkFactory, tenant: str) -> list[SchemeOut]:
    async with uow_factory() as uow:
        s = store.schemes
        rows = (await uow.session.execute(sa.select(s).where(s.c.tenant == tenant).order_by(s.c.name))).all()
    return [
        SchemeOut(id=r.id, tenant=r.tenant, definition=SchemeIn.model_validate(r.definition)) for r in rows
    ]


def provider_out(row: Any) -> ProviderOut:
    return ProviderOut(
        id=row.id, tenant=row.tenant, name=row.name, kbo=row.kbo, iban=row.iban, bic=row.bic, modes=row.modes
    )


async def register_provider(
    uow_factory: UnitOfWorkFactory, principal: Principal, body: ProviderIn, provider_id: UUID | None = None
) -> ProviderOut:
    new_id = provider_id or uuid4()
    iban = body.iban.replace(" ", "").upper()

    async def work(uow: UnitOfWork) -> ProviderOut:
        p = store.providers
        found = (await uow.session.execute(sa.select(p).where(p.c.id == new_id))).first()
        if found is not None:
            return provider_out(found)
        session = await ledger_session(uow)
        await session.create_accounts(
            accounts.provider_accounts(new_id, principal.tenant, accounts.PROVIDER_SHARDS)
        )
        values = {
            "id": new_id,
            "tenant": principal.tenant,
            "name": body.name,
            "kbo": body.kbo,
            "iban": iban,
            "bic": body.bic,
            "modes": [m.value for m in body.modes],
            "operator": body.operator,
            "shards": accounts.PROVIDER_SHARDS,
            "created_at": now(),
        }
        await uow.session.execute(sa.insert(p).values(**values))
        return ProviderOut(**{k: v for k, v in values.items() if k in ProviderOut.model_fields})

    return await run_command(uow_factory, work)


def acts_for(principal: Principal, operator: str) -> bool:
    return operator in (principal.subject, principal.claim("provider_id"))


async def load_provider(uow: UnitOfWork, principal: Principal, provider_id: UUID) -> Any:
    """The provider the caller acts for; anyone else's (or another city's) answers 404."""
    row = _known_providers.get(provider_id)
    if row is None:
        p = store.providers
        row = (await uow.session.execute(sa.select(p).where(p.c.id == provider_id))).first()
        if row is not None:
            _known_providers[provider_id] = row
    if row is None or row.tenant != principal.tenant:
        raise domain.NotFound("no such provider")
    if not principal.has_role("city_admin") and not acts_for(principal, row.operator):
        raise domain.NotFound("no such provider")
    return row


async def list_providers(uow_factory: UnitOfWorkFactory, principal: Principal) -> list[ProviderOut]:
    p = store.providers
    query = sa.select(p).where(p.c.tenant == principal.tenant).order_by(p.c.name)
    if not principal.has_role("city_admin"):
        query = query.where(p.c.operator.in_([principal.subject, principal.claim("provider_id") or ""]))
    async with uow_factory() as uow:
        rows = (await uow.session.execute(query)).all()
    return [provider_out(r) for r in rows]


async def grant_budget(
    uow_factory: UnitOfWorkFactory, principal: Principal, scheme_id: UUID, body: GrantIn
) -> GrantOut:
    """Grant a citizen a scheme's budget for the current period; granting again returns the same grant."""

    async def work(uow: UnitOfWork) -> GrantOut:
        name, scheme = await load_scheme(uow, principal.tenant, scheme_id)
        terms = domain.grant_terms(scheme, body.on or today())
        grant_id = accounts.derived_id("grant", scheme_id, body.citizen_id, terms.period_start)
        g = store.grants
        found = (await uow.session.execute(sa.select(g).where(g.c.id == grant_id))).first()
        if found is not None:
            return grant_out(found, name)
        await record_grant(uow, principal.tenant, scheme_id, name, body.citizen_id, grant_id, terms)
        row = (await uow.session.execute(sa.select(g).where(g.c.id == grant_id))).one()
        return grant_out(row, name)

    return await run_command(uow_factory, work)


async def record_grant(
    uow: UnitOfWork,
    tenant: str,
    scheme_id: UUID,
    scheme_name: str,
    citizen_id: str,
    grant_id: UUID,
    terms: domain.GrantTerms,
) -> None:
    session = await ledger_session(uow)
    await session.create_accounts([accounts.grant_account_record(grant_id, tenant)])
    await ensure_city_accounts(uow, tenant)
    money = Transfer(
        grant_id,
        accounts.city_funding(tenant).pick(grant_id),
        accounts.grant_account(grant_id),
        terms.amount_cents,
        accounts.EUR,
        accounts.TransferCode.GRANT,
        metadata={"scheme": str(scheme_id)},
    )
    await transfer(uow, [money])
    at = now()
    await uow.session.execute(
        sa.insert(store.grants).values(
            id=grant_id,
            tenant=tenant,
            scheme_id=scheme_id,
            citizen_id=citizen_id,
            period_start=terms.period_start,
            valid_from=terms.valid_from,
            expires_on=terms.expires_on,
            amount_cents=terms.amount_cents,
            created_at=at,
        )
    )
    uow.emit(
        events.BudgetGranted(
            grant_id=grant_id,
            citizen_id=citizen_id,
            scheme_id=scheme_id,
            scheme_name=scheme_name,
            amount_cents=terms.amount_cents,
            valid_from=terms.valid_from,
            expires_on=terms.expires_on,
            granted_at=at,
        ),
        tenant=tenant,
        subject=str(grant_id),
    )


def grant_out(row: Any, scheme_name: str) -> GrantOut:
    return GrantOut(
        id=row.id,
        scheme_id=row.scheme_id,
        scheme_name=scheme_name,
        citizen_id=row.citizen_id,
        period_start=row.period_start,
        valid_from=row.valid_from,
        expires_on=row.expires_on,
        amount_cents=row.amount_cents,
        expired_cents=row.expired_cents,
    )
