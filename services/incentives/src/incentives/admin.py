"""City admin commands: coin types, merchants, campaigns with their earning rules (checked when saved)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa

from contracts import incentives as events
from contracts import registry
from contracts.schemas import event_schema
from eventbus import UnitOfWork, UnitOfWorkFactory
from incentives import book, domain, engine, models, rules, store
from servicekit.auth import Principal


def trigger_schema(trigger: str) -> dict[str, Any]:
    """The JSON Schema a rule's condition is checked against: the trigger event's, or an approved claim's."""
    if trigger == domain.CLAIM_TRIGGER:
        return event_schema(events.ClaimApproved)
    cls = registry.catalogue().get(trigger)
    if cls is None or cls.event_service == "incentives":
        # Our own events would feed coins back into the rules that issued them.
        known = ", ".join(t for t, c in registry.catalogue().items() if c.event_service != "incentives")
        raise rules.RuleError(f"unknown trigger {trigger!r}; use 'claim' or one of: {known}")
    return event_schema(cls)


def check_rule(rule: models.RuleIn) -> None:
    """Refuse a rule whose condition, beneficiary or reward does not fit its trigger event."""
    schema = trigger_schema(rule.trigger)
    try:
        rules.compile_condition(rule.condition, schema)
    except rules.RuleError as exc:
        raise rules.RuleError(f"condition: {exc}") from None
    if rule.trigger != domain.CLAIM_TRIGGER:
        if not rule.beneficiary_field:
            raise rules.RuleError("beneficiary_field: name the field that says who earns the reward")
        _check_field(schema, rule.beneficiary_field, {"string"}, "beneficiary_field")
    if rule.reward_kind is domain.RewardKind.FIXED and rule.reward_coins <= 0:
        raise rules.RuleError("reward_coins: a fixed reward needs a positive number of coins")
    if rule.reward_kind is domain.RewardKind.PERCENTAGE:
        if not rule.base_field or rule.percent_bps <= 0:
            raise rules.RuleError("percent_bps/base_field: a percentage needs both")
        _check_field(schema, rule.base_field, {"integer"}, "base_field")
    if (rule.limit_window is None) != (rule.limit_coins is None):
        raise rules.RuleError("limit_window/limit_coins: give both or neither")


def _check_field(schema: dict[str, Any], dotted: str, types: set[str], name: str) -> None:
    try:
        node = rules.parse(dotted)
        if not isinstance(node, rules.Path):
            raise rules.RuleError("a field path is expected")
        field_schema = rules.resolve(schema, node)
    except rules.RuleError as exc:
        raise rules.RuleError(f"{name}: {exc}") from None
    if not rules.field_types(field_schema) & types:
        raise rules.RuleError(f"{name}: {dotted} is not a {'/'.join(sorted(types))} field")


async def create_coin_type(
    uow_factory: UnitOfWorkFactory, principal: Principal, body: models.CoinTypeIn
) -> domain.CoinType:
    async with uow_factory() as uow:
        session = uow.session
        top = (await session.execute(sa.select(sa.func.max(store.coin_types.c.ledger)))).scalar()
        coin = domain.CoinType(
            id=uuid4(),
            code=body.code,
            name=body.name,
            issuer_tenant=principal.tenant,
            scope=body.scope,
            member_tenants=frozenset(body.member_tenants) | {principal.tenant},
            ledger=(top or 1000) + 1,
            rate_coins=body.rate_coins,
            rate_cents=body.rate_cents,
            expires_at=body.expires_at,
        )
        await insert_coin_type(uow, coin)
        return coin


async def insert_coin_type(uow: UnitOfWork, coin: domain.CoinType) -> None:
    taken = await uow.session.execute(
        sa.select(store.coin_types.c.id).where(store.coin_types.c.code == coin.code)
    )
    if taken.first() is not None:
        raise domain.Conflict(f"the coin code {coin.code} is taken")
    await uow.session.execute(
        sa.insert(store.coin_types).values(
            id=coin.id,
            code=coin.code,
            name=coin.name,
            issuer_tenant=coin.issuer_tenant,
            scope=coin.scope.value,
            member_tenants=sorted(coin.member_tenants),
            ledger=coin.ledger,
            rate_coins=coin.rate_coins,
            rate_cents=coin.rate_cents,
            expires_at=coin.expires_at,
            created_at=datetime.now(UTC),
        )
    )
    await book.open_coin_type(await book.session_of(uow.session), coin)


async def create_merchant(
    uow_factory: UnitOfWorkFactory, principal: Principal, body: models.MerchantIn
) -> models.MerchantOut:
    kbo = domain.normalise_kbo(body.kbo)
    iban = domain.normalise_iban(body.iban)
    async with uow_factory() as uow:
        coins = [await store.load_coin_type(uow.session, cid) for cid in body.coin_type_ids]
        for coin in coins:
            if not coin.accepted_in(principal.tenant):
                raise domain.CoinNotAccepted(
                    f"{coin.code} is not accepted in municipality {principal.tenant}"
                )
        merchant_id = uuid4()
        await insert_merchant(
            uow, merchant_id, principal.tenant, body.model_copy(update={"kbo": kbo, "iban": iban})
        )
        return models.MerchantOut(
            id=merchant_id,
            tenant=principal.tenant,
            name=body.name,
            kbo=kbo,
            iban=iban,
            place=body.place,
            coin_type_ids=body.coin_type_ids,
        )


async def insert_merchant(uow: UnitOfWork, merchant_id: UUID, tenant: str, body: models.MerchantIn) -> None:
    taken = await uow.session.execute(
        sa.select(store.merchants.c.id).where(store.merchants.c.kbo == body.kbo)
    )
    if taken.first() is not None:
        raise domain.Conflict(f"a merchant with KBO {body.kbo} exists")
    await uow.session.execute(
        sa.insert(store.merchants).values(
            id=merchant_id,
            tenant=tenant,
            name=body.name,
            kbo=body.kbo,
            iban=body.iban,
            place=body.place,
            owner_subject=body.owner_subject,
            coin_type_ids=[str(c) for c in body.coin_type_ids],
            created_at=datetime.now(UTC),
        )
    )
    ledger = await book.session_of(uow.session)
    for coin_type_id in body.coin_type_ids:
        coin = await store.load_coin_type(uow.session, coin_type_id)
        account_id = domain.merchant_account(merchant_id, coin.id)
        await book.open_accounts(ledger, [book.account(account_id, coin, book.AccountCode.MERCHANT, tenant)])


async def launch_campaign(
    uow_factory: UnitOfWorkFactory, principal: Principal, body: models.CampaignIn
) -> models.CampaignOut:
    for rule in body.rules:
        check_rule(rule)
    async with uow_factory() as uow:
        return await insert_campaign(uow, uuid4(), principal.tenant, body)


async def insert_campaign(
    uow: UnitOfWork, campaign_id: UUID, tenant: str, body: models.CampaignIn
) -> models.CampaignOut:
    coin = await store.load_coin_type(uow.session, body.coin_type_id)
    if not coin.administered_by(tenant):
        raise domain.NotFound("no such coin type")
    now = datetime.now(UTC)
    await uow.session.execute(
        sa.insert(store.campaigns).values(
            id=campaign_id,
            tenant=tenant,
            name=body.name,
            sponsor=body.sponsor,
            coin_type_id=coin.id,
            budget_coins=body.budget_coins,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            audience_tenants=sorted(set(body.audience_tenants)),
            status="active",
            created_at=now,
        )
    )
    saved = [models.RuleOut(id=uuid4(), **rule.model_dump()) for rule in body.rules]
    rows = [{**r.model_dump(), "campaign_id": campaign_id, "created_at": now} for r in saved]
    await uow.session.execute(sa.insert(store.rules), rows)
    ledger = await book.session_of(uow.session)
    await book.open_budget(ledger, campaign_id, coin, tenant)
    funding = await book.move(
        ledger,
        domain.stable_id("fund", campaign_id),
        coin,
        domain.issuer_account(coin.id),
        domain.budget_account(campaign_id),
        body.budget_coins,
        book.TransferCode.FUND,
    )
    if not funding.ok:
        raise RuntimeError(f"funding the budget failed: {funding.code}")
    uow.emit(_launched(campaign_id, tenant, body, coin, now), tenant=tenant)
    engine.forget_rules(uow)
    return campaign_out(campaign_id, tenant, "active", body, saved)


def _launched(
    campaign_id: UUID, tenant: str, body: models.CampaignIn, coin: domain.CoinType, now: datetime
) -> events.CampaignLaunched:
    return events.CampaignLaunched(
        campaign_id=campaign_id,
        name=body.name,
        issuer_tenant=tenant,
        sponsor=body.sponsor,
        coin_type_id=coin.id,
        coin_code=coin.code,
        budget_coins=body.budget_coins,
        triggers=[r.trigger for r in body.rules],
        conditions=[r.condition for r in body.rules],
        reward_kind=body.rules[0].reward_kind.value,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        launched_at=now,
    )


def campaign_out(
    campaign_id: UUID, tenant: str, status: str, body: models.CampaignIn, saved: list[models.RuleOut]
) -> models.CampaignOut:
    return models.CampaignOut(
        id=campaign_id,
        tenant=tenant,
        status=status,
        rules=saved,
        **body.model_dump(exclude={"rules"}),
    )


async def load_campaign(uow: UnitOfWork, principal: Principal, campaign_id: UUID) -> models.CampaignOut:
    row = await store.load_row(uow.session, store.campaigns, campaign_id, "campaign")
    if row.tenant != principal.tenant:
        raise domain.NotFound("no such campaign")
    rule_rows = (
        await uow.session.execute(sa.select(store.rules).where(store.rules.c.campaign_id == campaign_id))
    ).all()
    saved = [
        models.RuleOut.model_validate({k: r._mapping[k] for k in models.RuleOut.model_fields})
        for r in rule_rows
    ]
    return models.CampaignOut(rules=saved, **{k: v for k, v in row._mapping.items() if k != "created_at"})


async def end_campaign(uow_factory: UnitOfWorkFactory, principal: Principal, campaign_id: UUID) -> None:
    async with uow_factory() as uow:
        campaign = await load_campaign(uow, principal, campaign_id)
        if campaign.status != "active":
            raise domain.Conflict("the campaign has ended already")
        await uow.session.execute(
            sa.update(store.campaigns).where(store.campaigns.c.id == campaign_id).values(status="ended")
        )
        ledger = await book.session_of(uow.session)
        left = await book.available(ledger, domain.budget_account(campaign_id))
        event = events.CampaignEnded(
            campaign_id=campaign_id, reason="ended", budget_left_coins=left, ended_at=datetime.now(UTC)
        )
        uow.emit(event, tenant=principal.tenant)
        engine.forget_rules(uow)


async def list_campaigns(uow_factory: UnitOfWorkFactory, principal: Principal) -> list[models.CampaignOut]:
    async with uow_factory() as uow:
        query = sa.select(store.campaigns.c.id).where(store.campaigns.c.tenant == principal.tenant)
        ids = (await uow.session.execute(query.order_by(store.campaigns.c.created_at))).scalars().all()
        return [await load_campaign(uow, principal, cid) for cid in ids]
