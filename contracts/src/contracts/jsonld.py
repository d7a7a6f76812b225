"""JSON-LD contexts: every event field of a service mapped to an OSLO term, a standard vocabulary, or ours.

One context per producing service (`context_for("market")`), generated into
`contracts/jsonld/<service>.jsonld` and served by the open-data service.

A field is mapped deliberately: either to an IRI in `TERMS` (OSLO where the profile is recognised, W3C
and DCMI vocabularies for the generic parts), or listed in `LOCAL` when OSLO has not published a term for
it yet (the Slimme Stadsdistributie profile is a draft with placeholder IRIs), which puts it in the
project namespace `cb:`. A field in neither table makes `context_for` fail, so a new event field cannot
ship without a decision. Value types (xsd:date, xsd:dateTime, ...) come from the field annotations.

The OSLO IRIs follow the published vocabularies' namespaces
(`https://data.vlaanderen.be/ns/<vocabulary>#term`); they live in this one table so a correction is one
line.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import AwareDatetime, BaseModel

from contracts.base import Event

PROJECT_NAMESPACE = "https://w3id.org/cityblocks/ns#"

PREFIXES: dict[str, str] = {
    "cb": PROJECT_NAMESPACE,
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "geo": "http://www.w3.org/2003/01/geo/wgs84_pos#",
    "locn": "http://www.w3.org/ns/locn#",
    "schema": "https://schema.org/",
    "adms": "http://www.w3.org/ns/adms#",
    "regorg": "http://www.w3.org/ns/regorg#",
    "org": "http://www.w3.org/ns/org#",
    "time": "http://www.w3.org/2006/time#",
    "adres": "https://data.vlaanderen.be/ns/adres#",
    "generiek": "https://data.vlaanderen.be/ns/generiek#",
    "persoon": "https://data.vlaanderen.be/ns/persoon#",
    "mobiliteit": "https://data.vlaanderen.be/ns/mobiliteit#",
    "economie": "https://data.vlaanderen.be/ns/economie#",
    "incentive": "https://data.vlaanderen.be/ns/incentiveringsplatform#",
    "mobudget": "https://data.vlaanderen.be/ns/mobiliteitsbudget#",
}

# Terms shared by every service's context.
COMMON: dict[str, str] = {
    "name": "schema:name",
    "address": "locn:fullAddress",  # Adresvoorstelling, free-form
    "address_uri": "adres:Adres",  # an address-register URI
    "lat": "geo:lat",
    "lon": "geo:long",
    "place": "locn:location",
    "currency": "schema:currency",
    "reason": "cb:reason",
    "kbo_number": "adms:identifier",
    "period_start": "time:hasBeginning",
    "period_end": "time:hasEnd",
    "settled_at": "prov:generatedAtTime",
    "payment_information_id": "cb:paymentInformationId",
}

TERMS: dict[str, dict[str, str]] = {
    "market": {
        # OSLO Lokale Economie: a market day is a Gebeurtenis with a Tijdschema, traders are Handelszaken.
        "market_id": "economie:Markt.identificator",
        "market_name": "economie:Markt.naam",
        "market_day_id": "economie:Gebeurtenis.identificator",
        "market_date": "economie:Gebeurtenis.datum",
        "opens_at": "economie:Openingsurenspecificatie.opent",
        "closes_at": "economie:Openingsurenspecificatie.sluit",
        "trader_id": "economie:Handelszaak.identificator",
        "trader_name": "regorg:legalName",
        "products": "economie:Handelszaak.product",
        "specialisation": "economie:Handelszaak.activiteit",
        "registered_at": "dcterms:created",
        "invoice_id": "economie:Transactie.identificator",
        "total_cents": "economie:Transactie.bedrag",
        "amount_cents": "economie:Transactie.bedrag",
        "invoiced_at": "economie:Transactie.tijdstip",
        "description": "dcterms:description",
        "number": "cb:stallNumber",
        "cancelled_at": "prov:invalidatedAtTime",
    },
    "logistics": {
        # OSLO Mobiliteit: Trips en Aanbod (recognised) for routes and vehicles; the rest is a draft profile.
        "route_id": "mobiliteit:Route.identificator",
        "distance_m": "mobiliteit:Route.afstand",
        "duration_s": "mobiliteit:Route.reisduur",
        "departure": "mobiliteit:Route.vertrekpunt",
        "arrival": "mobiliteit:Route.aankomstpunt",
        "vehicle_id": "mobiliteit:Resource.identificator",
        "vehicle_kind": "mobiliteit:Resource.type",
        "weight_kg": "mobiliteit:Vrachtgoed.gewicht",
        "volume_m3": "mobiliteit:Vrachtgoed.afmetingen",
        "start": "time:hasBeginning",
        "end": "time:hasEnd",
        "market_day_id": "economie:Gebeurtenis.identificator",
        "trader_id": "economie:Handelszaak.identificator",
        "cancelled_at": "prov:invalidatedAtTime",
    },
    "mobility-credit": {
        # OSLO Mobiliteitsbudget (recognised): Mobiliteitsbudget, Consumptie, Mobiliteitsdienst.
        "grant_id": "mobudget:Mobiliteitsbudget.identificator",
        "scheme_id": "mobudget:Mobiliteitsbudget.voorwaarden",
        "scheme_name": "mobudget:Mobiliteitsbudget.naam",
        "valid_from": "mobudget:Mobiliteitsbudget.begindatum",
        "expires_on": "mobudget:Mobiliteitsbudget.vervaldatum",
        "amount_cents": "mobudget:Mobiliteitsbudget.waarde",
        "trip_id": "mobudget:Consumptie.identificator",
        "consumed_at": "mobudget:Consumptie.consumptieTijdstip",
        "mode": "mobudget:Consumptie.consumptieType",
        "total_cents": "mobudget:Consumptie.waarde",
        "provider_id": "mobudget:Mobiliteitsdienst.identificator",
        "provider_name": "mobudget:Mobiliteitsdienst.naam",
        "citizen_id": "mobudget:Mobiliteitsbudget.begunstigde",
        "trips": "cb:trips",
    },
    "incentives": {
        # OSLO Incentiveringsplatform (recognised): Stimulansaanbod, Stimulansconsumptie, Beloning, Bedrag.
        "campaign_id": "incentive:Stimulansaanbod.identificator",
        "name": "incentive:Stimulansaanbod.naam",
        "issuer_tenant": "incentive:Stimulansaanbod.aanbieder",
        "sponsor": "incentive:Stimulansaanbod.sponsor",
        "reward_kind": "incentive:Stimulansaanbod.beloningtype",
        "conditions": "incentive:Stimulansaanbod.criteriumvereiste",
        "valid_from": "incentive:Stimulansaanbod.geldigheidsperiode",
        "valid_until": "generiek:Periode.einde",
        "issuance_id": "incentive:Stimulansconsumptie.identificator",
        "beneficiary_id": "incentive:Stimulansconsumptie.consument",
        "citizen_id": "incentive:Stimulansconsumptie.consument",
        "trigger_event_id": "incentive:Stimulansconsumptie.bekrachtiging",
        "amount": "incentive:Bedrag.waarde",
        "amount_cents": "incentive:Bedrag.waarde",
        "coin_code": "incentive:Bedrag.valuta",
        "merchant_kbo": "adms:identifier",
    },
    "platform": {
        "actor": "prov:wasAssociatedWith",
        "recorded_at": "prov:generatedAtTime",
        "service": "cb:service",
    },
}

# Fields with no published OSLO term (yet): they are terms of the project namespace.
LOCAL: dict[str, set[str]] = {
    "market": {
        "allocated_at",
        "allocation_id",
        "anywhere",
        "application_id",
        "assignments",
        "checked_in_at",
        "due_on",
        "ended_at",
        "ends_on",
        "explanation",
        "features",
        "from_trader_id",
        "granted_at",
        "granted_on",
        "holder",
        "invoice_number",
        "length_cm",
        "lines",
        "locked_until",
        "max_stalls",
        "method",
        "min_stalls",
        "needs",
        "optimal",
        "preferred_stalls",
        "quantity_hundredths",
        "reason_code",
        "reason_text",
        "rejections",
        "release_at",
        "released_at",
        "round",
        "row",
        "scheduled_at",
        "seed",
        "setup_ends_at",
        "setup_starts_at",
        "solver",
        "stall_numbers",
        "stalls",
        "submitted_at",
        "subscription_id",
        "to_kbo_number",
        "to_trader_id",
        "transferred_at",
        "transferred_on",
        "unit",
        "unit_price_cents",
        "withdrawn_at",
        "open_data",
        "updated_at",
    },
    "logistics": {
        "completed_at",
        "decided_at",
        "deliveries",
        "delivery_date",
        "detail",
        "dispatched_at",
        "driver_id",
        "failed_at",
        "hub_id",
        "kind",
        "note",
        "order_id",
        "order_ids",
        "orders_left_out",
        "orders_planned",
        "pickup",
        "placed_at",
        "planned_at",
        "planning_run_id",
        "priority",
        "proof",
        "recipient",
        "reference",
        "replan_of",
        "routes",
        "shipper_id",
        "shop_id",
        "solver_seconds",
        "stall_numbers",
        "stop_kind",
        "stops",
        "wave",
        "windows",
        "zones",
    },
    "mobility-credit": {
        "captured_at",
        "captured_cents",
        "citizen_share_cents",
        "city_share_cents",
        "expired_at",
        "expired_on",
        "expires_at",
        "expiry_id",
        "granted_at",
        "hold_id",
        "paid_at",
        "per_mode",
        "refund_id",
        "refunded_at",
        "released_cents",
        "settlement_id",
        "voided_at",
    },
    "incentives": {
        "approved_at",
        "approved_by",
        "beneficiary_kind",
        "budget_coins",
        "budget_left_coins",
        "claim_id",
        "coin_type_id",
        "coins",
        "ended_at",
        "evidence",
        "expired_at",
        "expires_at",
        "expiry_id",
        "from_id",
        "issued_at",
        "launched_at",
        "merchant_id",
        "notice_id",
        "noticed_at",
        "redeemed_at",
        "redemption_id",
        "rejected_at",
        "rejected_by",
        "rule_id",
        "settlement_id",
        "submitted_at",
        "to_id",
        "transfer_id",
        "transferred_at",
        "trigger_event_type",
        "triggers",
        "wallet_id",
    },
    "platform": {"actor_name", "method", "path", "request_id", "roles", "route"},
}

# API field names (the services' OpenAPI schemas) shared by every service: ids, problems, dead letters.
API_COMMON: dict[str, str] = {
    "created_at": "dcterms:created",
    "date": "dcterms:date",
    "description": "dcterms:description",
    "end": "time:hasEnd",
    "ends": "time:hasEnd",
    "geometry": "locn:geometry",
    "id": "dcterms:identifier",
    "kbo": "adms:identifier",
    "location": "locn:location",
    "month": "dcterms:temporal",
    "start": "time:hasBeginning",
    "starts": "time:hasBeginning",
    "status": "adms:status",
    "type": "dcterms:type",
}
API_COMMON_LOCAL: set[str] = {
    "applied",
    "attempts",
    "checks",
    "consumer",
    "ctx",
    "detail",
    "envelope",
    "error",
    "event_id",
    "input",
    "loc",
    "msg",
    "replayed_at",
    "service",
    "tenant",
    "topic",
}
# API field names of each service with a published term.
API_TERMS: dict[str, dict[str, str]] = {
    "market": {"insurance_valid_until": "cb:insuranceValidUntil"},
    "mobility-credit": {
        "valid_until": "mobudget:Mobiliteitsbudget.vervaldatum",
        "modes": "mobudget:Mobiliteitsdienst.type",
    },
    "incentives": {
        "merchant_name": "regorg:legalName",
        "condition": "incentive:Stimulansaanbod.criteriumvereiste",
    },
    "logistics": {"gross_weight_kg": "mobiliteit:Resource.maximaalToegelatenMassa"},
}
# API field names of each service with no published term: the project namespace.
API_LOCAL: dict[str, set[str]] = {
    "market": {
        "allocated",
        "already_checked_in",
        "announced_on",
        "arrived_at",
        "assigned",
        "assigned_days",
        "assignment_id",
        "closes",
        "closures",
        "days",
        "electricity_cents",
        "expires_at",
        "final",
        "food_registration",
        "issued_at",
        "length_m",
        "max_stalls_per_trader",
        "no_show_days",
        "no_shows",
        "obstacles_after",
        "on",
        "opens",
        "per_metre_cents",
        "per_stall_cents",
        "plan",
        "png_path",
        "position",
        "pre_registration_order",
        "preference_score",
        "present",
        "present_days",
        "priority_group",
        "quotas",
        "registered_on",
        "regulation",
        "release_time",
        "released",
        "rows",
        "seconds",
        "setup_ends",
        "setup_starts",
        "staff",
        "stall_count",
        "stalls_given",
        "svg_path",
        "tariff",
        "time_limit_s",
        "timezone",
        "token",
        "traders",
        "walk_ins",
        "wants_move",
        "weekdays",
    },
    "logistics": {
        "active",
        "at",
        "broken_down",
        "capacity_kg",
        "capacity_m3",
        "code",
        "cold_chain",
        "cost_per_hour_cents",
        "cost_per_km_cents",
        "dispatched",
        "drivers",
        "end_hub_id",
        "features",
        "finished_at",
        "load_kg",
        "load_m3",
        "max_weight_kg",
        "objective",
        "opening_hours",
        "outcome_at",
        "progress",
        "properties",
        "refrigerated",
        "rules",
        "run_id",
        "seq",
        "service_s",
        "service_start",
        "shift",
        "speed_kmh",
        "start_hub_id",
        "start_load_kg",
        "start_load_m3",
        "started_at",
        "status_reason",
        "summary",
        "supplier",
        "time_limit_s",
        "unassigned",
        "vehicle_code",
    },
    "mobility-credit": {
        "advantage",
        "advantages",
        "area",
        "at",
        "available_cents",
        "balanced",
        "bic",
        "caps",
        "citizens_available_cents",
        "citizens_held_cents",
        "closing_cents",
        "definition",
        "end_to_end_id",
        "estimated_total_cents",
        "execution_date",
        "expired_cents",
        "expired_grants",
        "expired_holds",
        "expires_in_s",
        "expiry_months",
        "granted_cents",
        "grants",
        "held_cents",
        "iban",
        "items",
        "kind",
        "max_per_trip_cents",
        "message_id",
        "on",
        "opening_cents",
        "operator",
        "owed_to_providers_cents",
        "paid_out_cents",
        "percent",
        "period",
        "period_months",
        "place_names",
        "providers",
        "radius_m",
        "refunded_cents",
        "rule",
        "rules",
        "run_id",
        "schemes",
        "settlements",
        "spent_cents",
        "transactions",
        "trip",
        "weekdays",
    },
    "incentives": {
        "approve",
        "at",
        "audience_tenants",
        "balance",
        "balance_after",
        "base_field",
        "batch_id",
        "beneficiary_field",
        "budget_left",
        "code",
        "coin_name",
        "coin_type_ids",
        "euro_cents",
        "expired",
        "iban",
        "issuances",
        "issued",
        "kind",
        "limit_coins",
        "limit_window",
        "max_amount",
        "member_tenants",
        "owner_subject",
        "payload",
        "percent_bps",
        "place",
        "qr",
        "rate_cents",
        "rate_coins",
        "redeemed",
        "refunded",
        "reward_coins",
        "rules",
        "scope",
        "statements",
        "to_merchant_id",
        "trigger",
        "wallet_balance_after",
        "wallets",
    },
}

SERVICES: tuple[str, ...] = tuple(TERMS)
# Services whose API has a context though they publish no events of their own.
API_SERVICES: tuple[str, ...] = (*SERVICES, "console", "opendata")


class UnmappedField(LookupError):
    """An event field that has no decided term: add it to TERMS (a published IRI) or LOCAL (our namespace)."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional/Union/list/Annotated/Literal annotations."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        found: list[Any] = []
        for arg in typing.get_args(annotation):
            if arg is not type(None) and arg is not Ellipsis:
                found.extend(_unwrap(arg))
        return found
    if origin is typing.Literal:
        return [str]
    return [annotation]


_XSD: list[tuple[Any, str]] = [
    (bool, "xsd:boolean"),
    (int, "xsd:integer"),
    (float, "xsd:decimal"),
    (dt.datetime, "xsd:dateTime"),
    (dt.date, "xsd:date"),
]


def _value_type(annotation: Any) -> str | None:
    kinds = set()
    for concrete in _unwrap(annotation):
        if concrete is AwareDatetime:
            kinds.add("xsd:dateTime")
            continue
        if isinstance(concrete, type) and issubclass(concrete, BaseModel):
            kinds.add("@object")
            continue
        for python_type, xsd in _XSD:
            if isinstance(concrete, type) and issubclass(concrete, python_type):
                kinds.add(xsd)
                break
        else:
            kinds.add("@string" if concrete in (str, uuid.UUID) else "@other")
    if len(kinds) == 1:
        kind = kinds.pop()
        return kind if kind.startswith("xsd:") else None
    return None


def _fields(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[tuple[str, Any]]:
    for name, field in model.model_fields.items():
        yield name, field.annotation
        for concrete in _unwrap(field.annotation):
            if isinstance(concrete, type) and issubclass(concrete, BaseModel) and concrete not in seen:
                seen.add(concrete)
                yield from _fields(concrete, seen)


def term_iri(service: str, field: str) -> str:
    """The compact IRI of `field` in `service`'s context."""
    if field in TERMS.get(service, {}):
        return TERMS[service][field]
    if field in LOCAL.get(service, set()):
        return f"cb:{_camel(field)}"
    if field in COMMON:
        return COMMON[field]
    if field in API_TERMS.get(service, {}):
        return API_TERMS[service][field]
    if field in API_COMMON:
        return API_COMMON[field]
    if field in API_LOCAL.get(service, set()) or field in API_COMMON_LOCAL:
        return f"cb:{_camel(field)}"
    raise UnmappedField(f"{service}: field {field!r} has no term; add it to contracts.jsonld TERMS or LOCAL")


def api_fields(service: str) -> set[str]:
    """The API field names of `service` with a decided term (beyond its event fields)."""
    return (
        set(API_TERMS.get(service, {})) | API_LOCAL.get(service, set()) | set(API_COMMON) | API_COMMON_LOCAL
    )


def context_for(service: str, events: Iterable[type[Event]] | None = None, **extra: Any) -> dict[str, Any]:
    """The JSON-LD context of `service`: prefixes, one term per event type, event field and API field.

    `extra` adds terms (field name -> compact IRI or term definition).
    """
    from contracts.registry import catalogue

    chosen = list(events) if events is not None else list(catalogue().values())
    chosen = [event for event in chosen if event.event_service == service]
    if not chosen and service not in API_SERVICES:
        raise KeyError(f"no events or API of service {service!r}")
    types_seen: dict[str, set[str | None]] = {}
    for event in chosen:
        for name, annotation in _fields(event, set()):
            types_seen.setdefault(name, set()).add(_value_type(annotation))
    context: dict[str, Any] = {"@version": 1.1, **PREFIXES}
    for event in sorted(chosen, key=lambda e: e.event_name):
        context[event.event_name] = f"cb:{event.event_name}"
    for name in sorted(types_seen):
        iri = term_iri(service, name)
        value_types = types_seen[name]
        value_type = next(iter(value_types)) if len(value_types) == 1 else None
        context[name] = {"@id": iri, "@type": value_type} if value_type else iri
    for name in sorted(api_fields(service) - set(types_seen)):
        context[name] = term_iri(service, name)
    for name, definition in extra.items():
        context[name] = definition
    return {"@context": context}
