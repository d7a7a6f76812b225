"""The open datasets: what each one holds, its columns with their linked-data terms, and its rows.

Every dataset is a table of rows. Served as JSON-LD (rows are nodes of the dataset's type, the context maps
every column to an OSLO or project term) and as CSV with the same columns. Statistics about citizens have a
`suppressed` column: a row about fewer than the minimum group size of people has its measures left empty.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from opendata import domain, store


@dataclass(frozen=True)
class Column:
    name: str
    iri: str
    datatype: str | None
    description: str


@dataclass(frozen=True)
class Dataset:
    id: str
    title: str
    description: str
    keywords: tuple[str, ...]
    theme: str  # an EU data theme (publications.europa.eu/resource/authority/data-theme)
    frequency: str  # an EU frequency (publications.europa.eu/resource/authority/frequency)
    row_type: str
    columns: tuple[Column, ...]
    about_citizens: bool
    rows: Callable[[AsyncSession, str, int], Awaitable[list[dict[str, Any]]]]

    @property
    def measures(self) -> list[str]:
        return [c.name for c in self.columns if c.datatype in ("xsd:integer", "xsd:decimal")]


SUPPRESSED = Column(
    "suppressed",
    "cb:suppressed",
    "xsd:boolean",
    "true when the row is about fewer people than the minimum group size: its figures are left empty",
)


async def market_stalls(session: AsyncSession, tenant: str, min_group_size: int) -> list[dict[str, Any]]:
    """Every allocated stall of the tenant's market days; the trader only when they agreed to open data."""
    days, stalls, traders = store.market_days, store.stalls, store.traders
    query = (
        select(
            days.c.id,
            days.c.market_name,
            days.c.market_date,
            days.c.place,
            days.c.opens_at,
            days.c.closes_at,
            stalls.c.number,
            stalls.c.row,
            stalls.c.lat,
            stalls.c.lon,
            stalls.c.length_cm,
            traders.c.name,
            traders.c.products,
            traders.c.specialisation,
            traders.c.open_data,
        )
        .join(stalls, stalls.c.market_day_id == days.c.id)
        .join(traders, traders.c.id == stalls.c.trader_id, isouter=True)
        .where(days.c.tenant == tenant, days.c.cancelled.is_(False))
        .order_by(days.c.market_date, days.c.market_name, stalls.c.row, stalls.c.number)
    )
    rows = []
    for row in await session.execute(query):
        consented = bool(row.open_data)
        rows.append(
            {
                "market_day_id": str(row.id),
                "market_name": row.market_name,
                "market_date": row.market_date.isoformat(),
                "place_name": row.place.get("name"),
                "address": row.place.get("address"),
                "opens_at": row.opens_at.isoformat(),
                "closes_at": row.closes_at.isoformat(),
                "stall_number": row.number,
                "stall_row": row.row,
                "lat": row.lat,
                "lon": row.lon,
                "length_m": round(row.length_cm / 100, 2),
                "trader_name": row.name if consented else None,
                "products": "; ".join(row.products) if consented and row.products else None,
                "specialisation": row.specialisation if consented else None,
            }
        )
    return rows


async def deliveries_per_zone(
    session: AsyncSession, tenant: str, min_group_size: int
) -> list[dict[str, Any]]:
    """Per day and access zone (`*`: the whole municipality): deliveries, trips, km, cargo-bike share."""
    table = store.deliveries
    query = select(table).where(table.c.tenant == tenant).order_by(table.c.day)
    groups: dict[tuple[date, str], list[Any]] = defaultdict(list)
    for row in await session.execute(query):
        for zone in ["*", *row.zones]:
            groups[(row.day, zone)].append(row)
    result = []
    for (day, zone), rows in sorted(groups.items()):
        routes = {row.route_id: row.route_distance_m for row in rows}
        bike = sum(1 for row in rows if row.vehicle_kind == "cargo_bike")
        result.append(
            {
                "day": day.isoformat(),
                "zone": zone,
                "deliveries": len(rows),
                "trips": len(routes),
                "km": round(sum(routes.values()) / 1000, 1),
                "cargo_bike_share": round(bike / len(rows), 3),
            }
        )
    return result


async def mobility_credit_use(
    session: AsyncSession, tenant: str, min_group_size: int
) -> list[dict[str, Any]]:
    """Per month, mode and district: trips paid with mobility credit, citizens, euro paid by the city."""
    table = store.trips
    trips = [
        domain.Trip(row.month, row.mode, row.district, row.person, row.city_share_cents - row.refunded_cents)
        for row in await session.execute(select(table).where(table.c.tenant == tenant))
    ]
    return domain.trip_statistics(trips, min_group_size)


async def campaign_results(session: AsyncSession, tenant: str, min_group_size: int) -> list[dict[str, Any]]:
    """Per month: coins issued per campaign; coins redeemed and expired per coin (coins are not earmarked)."""
    movements, campaigns = store.coin_movements, store.campaigns
    names = {
        str(row.id): row
        for row in await session.execute(select(campaigns).where(campaigns.c.tenant == tenant))
    }
    rows = [
        domain.CoinMovement(
            row.month,
            row.kind,
            row.coin_code,
            str(row.campaign_id) if row.campaign_id else None,
            row.person,
            row.amount,
        )
        for row in await session.execute(select(movements).where(movements.c.tenant == tenant))
    ]
    result = []
    for row in domain.coin_statistics(rows, min_group_size):
        info = names.get(row["campaign_id"]) if row["campaign_id"] else None
        named = {"campaign_name": info.name if info else None, "sponsor": info.sponsor if info else None}
        result.append({**row, **named})
    return result


def _c(name: str, iri: str, datatype: str | None, description: str) -> Column:
    return Column(name, iri, datatype, description)


DATASETS: Sequence[Dataset] = (
    Dataset(
        id="market-stalls",
        title="Marktdagen en standplaatsen",
        description=(
            "Who sells what where: every allocated stall of the municipality's market days with its place "
            "and size; the trader's name and products only when the trader agreed to appear in open data."
        ),
        keywords=("markt", "standplaats", "ambulante handel", "lokale economie"),
        theme="ECON",
        frequency="DAILY",
        row_type="cb:MarketStallAllocation",
        columns=(
            _c("market_day_id", "economie:Gebeurtenis.identificator", None, "the market day"),
            _c("market_name", "economie:Markt.naam", None, "name of the market"),
            _c("market_date", "economie:Gebeurtenis.datum", "xsd:date", "the day"),
            _c("place_name", "schema:name", None, "the square or street"),
            _c("address", "locn:fullAddress", None, "address of the market place (Adresvoorstelling)"),
            _c("opens_at", "economie:Openingsurenspecificatie.opent", "xsd:dateTime", "opening time"),
            _c("closes_at", "economie:Openingsurenspecificatie.sluit", "xsd:dateTime", "closing time"),
            _c("stall_number", "cb:stallNumber", None, "number of the stall on the market plan"),
            _c("stall_row", "cb:row", None, "row of the stall on the market plan"),
            _c("lat", "geo:lat", "xsd:decimal", "latitude of the stall (WGS84)"),
            _c("lon", "geo:long", "xsd:decimal", "longitude of the stall (WGS84)"),
            _c("length_m", "cb:lengthMetres", "xsd:decimal", "frontage of the stall in metres"),
            _c("trader_name", "regorg:legalName", None, "the trader (only with the trader's consent)"),
            _c("products", "economie:Handelszaak.product", None, "what the trader sells, `; `-separated"),
            _c("specialisation", "economie:Handelszaak.activiteit", None, "the trader's specialisation"),
        ),
        about_citizens=False,
        rows=market_stalls,
    ),
    Dataset(
        id="deliveries",
        title="Stadsdistributie per zone en dag",
        description=(
            "Deliveries completed in the municipality per day and access zone (`*` is the whole "
            "municipality): deliveries, vehicle trips that served the zone, their kilometres, and the share "
            "delivered by cargo bike."
        ),
        keywords=("stadsdistributie", "leveringen", "cargofiets", "mobiliteit"),
        theme="TRAN",
        frequency="DAILY",
        row_type="cb:DeliveryStatistic",
        columns=(
            _c("day", "dcterms:date", "xsd:date", "the day (Brussels time)"),
            _c("zone", "cb:zone", None, "name of the access zone, `*` for the whole municipality"),
            _c("deliveries", "cb:deliveries", "xsd:integer", "deliveries completed"),
            _c("trips", "cb:trips", "xsd:integer", "vehicle routes with a delivery in the zone"),
            _c("km", "mobiliteit:Route.afstand", "xsd:decimal", "kilometres of those routes"),
            _c(
                "cargo_bike_share",
                "cb:cargoBikeShare",
                "xsd:decimal",
                "share of deliveries by cargo bike (0-1)",
            ),
        ),
        about_citizens=False,
        rows=deliveries_per_zone,
    ),
    Dataset(
        id="mobility-credit-use",
        title="Gebruik van het mobiliteitsbudget",
        description=(
            "Trips paid with the mobility budget per month, mode and district, with the number "
            "of citizens and the euro paid by the city. Groups of fewer than 10 citizens are suppressed."
        ),
        keywords=("mobiliteitsbudget", "mobiliteitskrediet", "deelmobiliteit", "openbaar vervoer"),
        theme="TRAN",
        frequency="MONTHLY",
        row_type="mobudget:Consumptie",
        columns=(
            _c("month", "dcterms:temporal", None, "the month (YYYY-MM, Brussels time)"),
            _c("mode", "mobudget:Consumptie.consumptieType", None, "bus, train, shared bike, ..."),
            _c("district", "cb:district", None, "district where the trip started (`onbekend`: unknown)"),
            _c("trips", "cb:trips", "xsd:integer", "trips paid"),
            _c("citizens", "cb:citizens", "xsd:integer", "distinct citizens who travelled"),
            _c(
                "city_share_eur",
                "mobudget:Consumptie.waarde",
                "xsd:decimal",
                "paid by the city, after refunds",
            ),
            SUPPRESSED,
        ),
        about_citizens=True,
        rows=mobility_credit_use,
    ),
    Dataset(
        id="campaign-results",
        title="Resultaten van de stimulanscampagnes",
        description=(
            "Coins issued per campaign and month; coins redeemed at merchants and coins expired per coin and "
            "month (coins are not earmarked per campaign once issued). Groups of fewer than 10 citizens are "
            "suppressed."
        ),
        keywords=("incentives", "stimulansen", "lokale munt", "beloning"),
        theme="ECON",
        frequency="MONTHLY",
        row_type="incentive:Stimulansconsumptie",
        columns=(
            _c("month", "dcterms:temporal", None, "the month (YYYY-MM, Brussels time)"),
            _c("measure", "cb:measure", None, "issued, redeemed or expired"),
            _c("coin_code", "incentive:Bedrag.valuta", None, "the coin"),
            _c("campaign_id", "incentive:Stimulansaanbod.identificator", None, "the campaign (issued rows)"),
            _c("campaign_name", "incentive:Stimulansaanbod.naam", None, "name of the campaign"),
            _c("sponsor", "incentive:Stimulansaanbod.sponsor", None, "who pays for the campaign"),
            _c("coins", "incentive:Bedrag.waarde", "xsd:integer", "coins"),
            _c("movements", "cb:movements", "xsd:integer", "issuances, redemptions or expiries"),
            _c(
                "citizens", "cb:citizens", "xsd:integer", "distinct citizens involved (merchants not counted)"
            ),
            SUPPRESSED,
        ),
        about_citizens=True,
        rows=campaign_results,
    ),
)

BY_ID = {dataset.id: dataset for dataset in DATASETS}
