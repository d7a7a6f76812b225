"""HTTP API under /v1 for citizens, merchants, schools (claim scanning) and city admins."""

from __future__ import annotations

from typing import Annotated, Any, cast
from uuid import UUID

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, Response

from contracts import registry
from incentives import admin, claims, domain, models, redemption, settlement, spending, store
from incentives.settings import Settings
from servicekit.auth import CurrentPrincipal, Principal, require_roles
from servicekit.service import ADMIN_ROLES, UowFactory, context_of, get_uow_factory

router = APIRouter(prefix="/v1", tags=["incentives"])
Citizen = Annotated[Principal, Depends(require_roles("citizen"))]
Merchant = Annotated[Principal, Depends(require_roles("merchant"))]
Reviewer = Annotated[Principal, Depends(require_roles("school", "city_admin"))]
Admin = Annotated[Principal, Depends(require_roles("city_admin"))]


def settings_of(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


# Dependencies are coroutines: FastAPI runs a plain function in a worker thread, a hop per request.
async def current_settings(request: Request) -> Settings:
    return settings_of(request)


async def qr_secret(request: Request) -> bytes:
    """The key signing wallet QR codes: from the settings, else one kept in the data dir (made once)."""
    cached: bytes | None = getattr(request.app.state, "qr_secret", None)
    if cached is None:
        settings = settings_of(request)
        cached = settings.signing_key(settings.qr_secret, "incentives-qr.key")
        request.app.state.qr_secret = cached
    return cached


async def redemption_desk(request: Request) -> redemption.RedemptionDesk:
    """The process's desk deciding concurrent scans together (made on the first scan)."""
    desk: redemption.RedemptionDesk | None = getattr(request.app.state, "redemption_desk", None)
    context = context_of(request)
    if desk is None or desk.uow_factory is not context.uow_factory:
        desk = redemption.RedemptionDesk(context.uow_factory, settings_of(request).velocity_limits())
        request.app.state.redemption_desk = desk
    return desk


CurrentSettings = Annotated[Settings, Depends(current_settings)]
QrSecret = Annotated[bytes, Depends(qr_secret)]
Desk = Annotated[redemption.RedemptionDesk, Depends(redemption_desk)]


@router.get("/triggers")
async def triggers(principal: CurrentPrincipal) -> list[str]:
    """Event types a rule can be triggered by: every contract event of the other services, and `claim`."""
    return [
        domain.CLAIM_TRIGGER,
        *(t for t, cls in registry.catalogue().items() if cls.event_service != "incentives"),
    ]


@router.get("/coin-types")
async def list_coin_types(principal: CurrentPrincipal, uow_factory: UowFactory) -> list[models.CoinTypeOut]:
    """Coin types usable in the caller's municipality (issued there or regional with it as a member)."""
    async with uow_factory() as uow:
        rows = (
            await uow.session.execute(sa.select(store.coin_types).order_by(store.coin_types.c.code))
        ).all()
    coins = [store.coin_type_of(row) for row in rows]
    return [
        _coin_out(c) for c in coins if c.accepted_in(principal.tenant) or c.administered_by(principal.tenant)
    ]


def _coin_out(coin: domain.CoinType) -> models.CoinTypeOut:
    return models.CoinTypeOut(
        id=coin.id,
        code=coin.code,
        name=coin.name,
        issuer_tenant=coin.issuer_tenant,
        scope=coin.scope.value,
        member_tenants=sorted(coin.member_tenants),
        rate_coins=coin.rate_coins,
        rate_cents=coin.rate_cents,
        expires_at=coin.expires_at,
    )


@router.post("/coin-types", status_code=201)
async def create_coin_type(
    body: models.CoinTypeIn, principal: Admin, uow_factory: UowFactory
) -> models.CoinTypeOut:
    return _coin_out(await admin.create_coin_type(uow_factory, principal, body))


@router.get("/coin-types/{coin_type_id}/lifecycle")
async def coin_lifecycle(coin_type_id: UUID, principal: Admin, uow_factory: UowFactory) -> dict[str, int]:
    """Issued = held by citizens + held by merchants + settled + expired, from the ledger."""
    async with uow_factory() as uow:
        coin = await store.load_coin_type(uow.session, coin_type_id)
        if not coin.administered_by(principal.tenant):
            raise domain.NotFound("no such coin type")
        totals = await settlement.lifecycle(uow.session, coin)
    return dict(vars(totals))


@router.post("/coin-types/{coin_type_id}/expiry-notices")
async def notice_expiry(coin_type_id: UUID, principal: Admin, uow_factory: UowFactory) -> models.ExpiryOut:
    return await settlement.notice_expiry(uow_factory, principal, coin_type_id)


@router.post("/coin-types/{coin_type_id}/expiry")
async def expire(coin_type_id: UUID, principal: Admin, uow_factory: UowFactory) -> models.ExpiryOut:
    return await settlement.expire(uow_factory, principal, coin_type_id)


@router.post("/merchants", status_code=201)
async def create_merchant(
    body: models.MerchantIn, principal: Admin, uow_factory: UowFactory
) -> models.MerchantOut:
    return await admin.create_merchant(uow_factory, principal, body)


@router.get("/merchants")
async def list_merchants(principal: CurrentPrincipal, uow_factory: UowFactory) -> list[models.MerchantOut]:
    """City admins see their municipality's merchants; a merchant sees its own shops."""
    m = store.merchants
    query = sa.select(m).where(m.c.tenant == principal.tenant).order_by(m.c.name)
    if not principal.has_role("city_admin"):
        query = query.where(m.c.owner_subject == principal.subject)
    async with uow_factory() as uow:
        rows = (await uow.session.execute(query)).all()
    return [
        models.MerchantOut(
            id=r.id,
            tenant=r.tenant,
            name=r.name,
            kbo=r.kbo,
            iban=r.iban,
            place=r.place,
            coin_type_ids=r.coin_type_ids,
        )
        for r in rows
    ]


@router.post("/rules/check")
async def check_rule(body: models.RuleIn, principal: Admin) -> dict[str, bool]:
    """Validate a rule against its trigger event's schema without saving it (422 names what is wrong)."""
    admin.check_rule(body)
    return {"valid": True}


@router.post("/campaigns", status_code=201)
async def launch_campaign(
    body: models.CampaignIn, principal: Admin, uow_factory: UowFactory
) -> models.CampaignOut:
    return await admin.launch_campaign(uow_factory, principal, body)


@router.get("/campaigns")
async def list_campaigns(principal: Admin, uow_factory: UowFactory) -> list[models.CampaignOut]:
    return await admin.list_campaigns(uow_factory, principal)


@router.get("/campaigns/{campaign_id}")
async def get_campaign(campaign_id: UUID, principal: Admin, uow_factory: UowFactory) -> models.CampaignOut:
    async with uow_factory() as uow:
        return await admin.load_campaign(uow, principal, campaign_id)


@router.post("/campaigns/{campaign_id}/end", status_code=204)
async def end_campaign(campaign_id: UUID, principal: Admin, uow_factory: UowFactory) -> None:
    await admin.end_campaign(uow_factory, principal, campaign_id)


@router.get("/reports/campaigns")
async def campaign_reports(principal: Admin, uow_factory: UowFactory) -> list[models.CampaignReport]:
    return await settlement.campaign_reports(uow_factory, principal)


@router.get("/wallet")
async def wallet(principal: Citizen, uow_factory: UowFactory) -> list[models.WalletBalance]:
    return await spending.wallet(uow_factory, principal)


@router.get("/wallet/{coin_type_id}/history")
async def history(
    coin_type_id: UUID, principal: Citizen, uow_factory: UowFactory
) -> list[models.HistoryEntry]:
    return await spending.history(uow_factory, principal, coin_type_id)


@router.post("/wallet/qr")
async def wallet_qr(
    body: models.QrRequest,
    principal: Citizen,
    uow_factory: UowFactory,
    secret: QrSecret,
    settings: CurrentSettings,
) -> models.QrOut:
    """A one-time, signed payload for a QR code, valid for a short time."""
    return await spending.make_qr(uow_factory, principal, body, secret, settings.qr_ttl_s)


@router.post("/claims", status_code=201)
async def submit_claim(body: models.ClaimIn, principal: Citizen, uow_factory: UowFactory) -> models.ClaimOut:
    return await claims.submit_claim(uow_factory, principal, body)


@router.get("/claims/mine")
async def my_claims(principal: Citizen, uow_factory: UowFactory) -> list[models.ClaimOut]:
    return await claims.list_claims(uow_factory, principal, mine=True, status=None)


@router.get("/claims")
async def claims_to_review(
    principal: Reviewer, uow_factory: UowFactory, status: str | None = "submitted"
) -> list[models.ClaimOut]:
    return await claims.list_claims(uow_factory, principal, mine=False, status=status)


@router.post("/claims/{claim_id}/decision")
async def decide_claim(
    claim_id: UUID, body: models.ClaimDecision, principal: Reviewer, uow_factory: UowFactory
) -> models.ClaimOut:
    return await claims.decide_claim(uow_factory, principal, claim_id, body)


@router.get("/merchant/balances")
async def merchant_balances(principal: Merchant, uow_factory: UowFactory) -> list[dict[str, Any]]:
    return await spending.merchant_balances(uow_factory, principal)


@router.post("/redemptions", status_code=201)
async def redeem(
    request: Request,
    body: models.RedeemIn,
    principal: Merchant,
    secret: QrSecret,
    settings: CurrentSettings,
    desk: Desk,
) -> models.RedemptionOut:
    """The merchant scanned a citizen's QR code and takes `amount` coins from the wallet."""
    scan = redemption.read_scan(principal, body, secret)
    if principal.has_role(*ADMIN_ROLES):
        # An admin's change carries its audit record in its own transaction.
        audited = await get_uow_factory(request)
        return await redemption.redeem_alone(audited, scan, settings.velocity_limits())
    return await desk.redeem(scan)


@router.post("/redemptions/{redemption_id}/refunds")
async def refund(
    redemption_id: UUID, body: models.RefundIn, principal: Merchant, uow_factory: UowFactory
) -> models.RedemptionOut:
    return await spending.refund(uow_factory, principal, redemption_id, body)


@router.post("/merchants/{merchant_id}/transfers")
async def transfer(
    merchant_id: UUID, body: models.MerchantTransferIn, principal: Merchant, uow_factory: UowFactory
) -> models.TransferOut:
    return await spending.transfer_to_merchant(uow_factory, principal, merchant_id, body)


@router.get("/merchant/statements")
async def merchant_statements(principal: Merchant, uow_factory: UowFactory) -> list[models.StatementLine]:
    return await settlement.statements(uow_factory, principal, merchant_owner=True)


@router.post("/settlements", status_code=201)
async def settle(
    body: models.SettlementIn, principal: Admin, uow_factory: UowFactory, settings: CurrentSettings
) -> models.SettlementBatchOut:
    """Settle the municipality's merchants for a period: statements, events, a pain.001 file."""
    return await settlement.settle(uow_factory, principal, body, settings.payer(principal.tenant))


@router.get("/settlements/statements")
async def settlement_statements(principal: Admin, uow_factory: UowFactory) -> list[models.StatementLine]:
    return await settlement.statements(uow_factory, principal, merchant_owner=False)


@router.get("/settlements/{batch_id}/pain001")
async def pain001(batch_id: UUID, principal: Admin, uow_factory: UowFactory) -> Response:
    document = await settlement.payout_file(uow_factory, principal, batch_id)
    return Response(document, media_type="application/xml")
