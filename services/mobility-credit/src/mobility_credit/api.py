"""HTTP API under /v1: citizens' wallet, providers' idempotent trip payments, the city's schemes."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from mobility_credit import domain
from mobility_credit.handlers import catalogue, expiry, payments, queries, settlement, trip_batches
from mobility_credit.models import (
    CaptureIn,
    GrantIn,
    GrantOut,
    HistoryItem,
    HoldIn,
    HoldOut,
    ProviderIn,
    ProviderOut,
    RefundIn,
    RefundOut,
    ReportOut,
    SchemeIn,
    SchemeOut,
    SettlementOut,
    SettlementRunIn,
    SettlementRunOut,
    StatementOut,
    SweepOut,
    TripIn,
    TripOut,
    WalletOut,
)
from servicekit.auth import Principal, require_roles
from servicekit.problems import Problem, problem_type
from servicekit.service import Context, CurrentSettings, UowFactory

ERROR_STATUSES: dict[type[Exception], int] = {
    domain.NotFound: 404,
    domain.InvalidScheme: 422,
    domain.InvalidAmount: 422,
    domain.NotEligible: 422,
    domain.InsufficientBudget: 409,
    domain.CaptureExceedsHold: 409,
    domain.HoldNotOpen: 409,
    domain.HoldExpired: 409,
    domain.RefundExceedsTrip: 409,
    domain.Conflict: 409,
    domain.IdempotencyConflict: 409,
    domain.LedgerRejected: 409,
}


class _CodedRoute(APIRoute):
    """Domain errors answer as problems that carry the stable `code` clients branch on."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except domain.MobilityCreditError as error:
                status = ERROR_STATUSES.get(type(error), 409)
                raise Problem(status, error.detail, type=problem_type(type(error)), code=error.code) from None

        return route


router = APIRouter(prefix="/v1", route_class=_CodedRoute)
Citizen = Annotated[Principal, Depends(require_roles("citizen"))]
Provider = Annotated[Principal, Depends(require_roles("provider"))]
ProviderOrAdmin = Annotated[Principal, Depends(require_roles("provider", "city_admin"))]
CityAdmin = Annotated[Principal, Depends(require_roles("city_admin"))]
IdempotencyKey = Annotated[
    str,
    Header(alias="Idempotency-Key", min_length=1, max_length=200, description="one key per intended payment"),
]


def _answer(answer: tuple[int, dict[str, Any]]) -> JSONResponse:
    status, body = answer
    return JSONResponse(body, status_code=status)


@router.get("/me/wallet", tags=["citizen"])
async def my_wallet(principal: Citizen, uow_factory: UowFactory) -> WalletOut:
    return await queries.wallet(uow_factory, principal)


@router.get("/me/history", tags=["citizen"])
async def my_history(principal: Citizen, uow_factory: UowFactory) -> list[HistoryItem]:
    return await queries.history(uow_factory, principal)


@router.get("/me/statements/{month}", tags=["citizen"])
async def my_statement(
    month: Annotated[str, Path(pattern=r"^\d{4}-\d{2}$")], principal: Citizen, uow_factory: UowFactory
) -> StatementOut:
    return await queries.statement(uow_factory, principal, month)


@router.get("/providers", tags=["provider"])
async def providers(principal: ProviderOrAdmin, uow_factory: UowFactory) -> list[ProviderOut]:
    return await catalogue.list_providers(uow_factory, principal)


@router.post("/providers/{provider_id}/trips", status_code=201, response_model=TripOut, tags=["provider"])
async def pay_trip(
    provider_id: UUID,
    body: TripIn,
    key: IdempotencyKey,
    principal: Provider,
    uow_factory: UowFactory,
    context: Context,
) -> JSONResponse:
    answer = await trip_batches.pay_trip_batched(context, uow_factory, principal, provider_id, body, key)
    return _answer(answer)


@router.get("/providers/{provider_id}/trips", tags=["provider"])
async def provider_trips(
    provider_id: UUID,
    principal: ProviderOrAdmin,
    uow_factory: UowFactory,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[TripOut]:
    return await queries.provider_trips(uow_factory, principal, provider_id, limit)


@router.post("/providers/{provider_id}/holds", status_code=201, response_model=HoldOut, tags=["provider"])
async def place_hold(
    provider_id: UUID, body: HoldIn, key: IdempotencyKey, principal: Provider, uow_factory: UowFactory
) -> JSONResponse:
    return _answer(await payments.place_hold(uow_factory, principal, provider_id, body, key))


@router.get("/providers/{provider_id}/holds/{hold_id}", tags=["provider"])
async def get_hold(
    provider_id: UUID, hold_id: UUID, principal: ProviderOrAdmin, uow_factory: UowFactory
) -> HoldOut:
    return await queries.provider_hold(uow_factory, principal, provider_id, hold_id)


@router.post("/providers/{provider_id}/holds/{hold_id}/capture", response_model=TripOut, tags=["provider"])
async def capture_hold(
    provider_id: UUID,
    hold_id: UUID,
    body: CaptureIn,
    key: IdempotencyKey,
    principal: Provider,
    uow_factory: UowFactory,
) -> JSONResponse:
    return _answer(await payments.capture_hold(uow_factory, principal, provider_id, hold_id, body, key))


@router.post("/providers/{provider_id}/holds/{hold_id}/void", response_model=HoldOut, tags=["provider"])
async def void_hold(
    provider_id: UUID, hold_id: UUID, key: IdempotencyKey, principal: Provider, uow_factory: UowFactory
) -> JSONResponse:
    return _answer(await payments.void_hold(uow_factory, principal, provider_id, hold_id, key))


@router.post(
    "/providers/{provider_id}/trips/{trip_id}/refunds",
    status_code=201,
    response_model=RefundOut,
    tags=["provider"],
)
async def refund_trip(
    provider_id: UUID,
    trip_id: UUID,
    body: RefundIn,
    key: IdempotencyKey,
    principal: Provider,
    uow_factory: UowFactory,
) -> JSONResponse:
    return _answer(await payments.refund_trip(uow_factory, principal, provider_id, trip_id, body, key))


@router.get("/providers/{provider_id}/settlements", tags=["provider"])
async def provider_settlements(
    provider_id: UUID, principal: ProviderOrAdmin, uow_factory: UowFactory
) -> list[SettlementOut]:
    return await settlement.provider_settlements(uow_factory, principal, provider_id)


@router.post("/schemes", status_code=201, tags=["city admin"])
async def create_scheme(body: SchemeIn, principal: CityAdmin, uow_factory: UowFactory) -> SchemeOut:
    return await catalogue.create_scheme(uow_factory, principal, body)


@router.get("/schemes", tags=["city admin"])
async def list_schemes(principal: CityAdmin, uow_factory: UowFactory) -> list[SchemeOut]:
    return await catalogue.list_schemes(uow_factory, principal.tenant)


@router.post("/admin/providers", status_code=201, tags=["city admin"])
async def register_provider(body: ProviderIn, principal: CityAdmin, uow_factory: UowFactory) -> ProviderOut:
    return await catalogue.register_provider(uow_factory, principal, body)


@router.post("/schemes/{scheme_id}/grants", status_code=201, tags=["city admin"])
async def grant(scheme_id: UUID, body: GrantIn, principal: CityAdmin, uow_factory: UowFactory) -> GrantOut:
    return await catalogue.grant_budget(uow_factory, principal, scheme_id, body)


@router.get("/reports/summary", tags=["city admin"])
async def summary(principal: CityAdmin, uow_factory: UowFactory) -> ReportOut:
    return await queries.report(uow_factory, principal.tenant)


@router.post("/settlement-runs", status_code=201, tags=["city admin"])
async def run_settlement(
    body: SettlementRunIn, principal: CityAdmin, uow_factory: UowFactory, settings: CurrentSettings
) -> SettlementRunOut:
    city = getattr(settings, "city_account", None)
    if not callable(city):
        raise Problem(503, "the city's bank account is not configured")
    return await settlement.run_settlement(uow_factory, principal, body, city(principal.tenant))


@router.get("/settlement-runs/{run_id}", tags=["city admin"])
async def get_settlement_run(run_id: UUID, principal: CityAdmin, uow_factory: UowFactory) -> SettlementRunOut:
    return await settlement.get_run(uow_factory, principal, run_id)


@router.get(
    "/settlement-runs/{run_id}/pain001.xml",
    tags=["city admin"],
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
async def settlement_file(run_id: UUID, principal: CityAdmin, uow_factory: UowFactory) -> Response:
    xml = await settlement.run_file(uow_factory, principal, run_id)
    return Response(xml, media_type="application/xml")


@router.post("/admin/sweeps", tags=["city admin"])
async def run_sweep(
    principal: CityAdmin, uow_factory: UowFactory, on: Annotated[date | None, Query()] = None
) -> SweepOut:
    return await expiry.sweep(uow_factory, on)


@router.get("/admin/ledger/verification", tags=["city admin"])
async def verify_ledger(principal: CityAdmin, uow_factory: UowFactory) -> dict[str, Any]:
    return await queries.verify_ledger(uow_factory)
