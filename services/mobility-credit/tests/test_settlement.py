"""Provider settlement: totals per mode, refunds netted, a pain.001 file valid against the ISO schema."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET

import xmlschema

from mobility_credit import pain001
from mobility_credit.domain import LOCAL_TIME
from mobility_credit.handlers.queries import report, verify_ledger
from mobility_credit.testing import BLUE_BIKE, DE_LIJN, World, new_key, trip

# The official ISO 20022 message definition (iso20022.org, Standards Editor 2019-02-14), unchanged.
SCHEMA = Path(__file__).parent / "pain.001.001.09.xsd"
NS = {"p": pain001.NAMESPACE}


def test_a_generated_file_is_valid_pain_001_001_09_with_matching_control_sums() -> None:
    xml = pain001.credit_transfer_initiation(
        message_id="MC-20261101-20261130-1",
        created_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
        execution_date=date(2026, 12, 2),
        debtor=pain001.Party("Stad Hasselt", "BE10735000001604", "KREDBEBB", "0207.005.027"),
        transfers=[
            pain001.CreditTransfer(
                "E2E-1", 12_345, pain001.Party("De Lijn", "BE41910000001110", "GKCCBEBB"), "nov"
            ),
            pain001.CreditTransfer("E2E-2", 5, pain001.Party("Blue-bike & Co", "BE22100000001347"), "nov"),
        ],
    )

    xmlschema.XMLSchema(SCHEMA).validate(xml)
    document = ET.fromstring(xml)  # noqa: S314 (our own output, not untrusted input)
    amounts = [Decimal(a.text or "") for a in document.iterfind(".//p:InstdAmt", NS)]
    assert amounts == [Decimal("123.45"), Decimal("0.05")]
    assert document.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == "123.50"
    assert document.findtext(".//p:PmtInf/p:NbOfTxs", namespaces=NS) == "2"
    assert "&" not in (document.findtext(".//p:Cdtr/p:Nm", namespaces=NS) or "")


async def test_a_settlement_run_pays_each_provider_its_trips_minus_refunds(world: World) -> None:
    provider = world.as_user("hasselt.provider")
    admin = world.as_user("hasselt.city_admin")
    first = (await provider.post(f"/v1/providers/{DE_LIJN}/trips", trip(total=300), key=new_key())).json()
    await provider.post(f"/v1/providers/{DE_LIJN}/trips", trip(total=250), key=new_key())
    await provider.post(
        f"/v1/providers/{BLUE_BIKE}/trips", trip(mode="shared_bike", total=400), key=new_key()
    )
    await provider.post(
        f"/v1/providers/{DE_LIJN}/trips/{first['id']}/refunds", {"amount_cents": 100}, key=new_key()
    )
    today = datetime.now(LOCAL_TIME).date().isoformat()

    run = await admin.post("/v1/settlement-runs", {"period_start": "2026-01-01", "period_end": today})
    again = await admin.post("/v1/settlement-runs", {"period_start": "2026-01-01", "period_end": today})
    xml = await admin.get(f"/v1/settlement-runs/{run.json()['id']}/pain001.xml")

    body = run.json()
    by_provider = {s["provider_name"]: s for s in body["settlements"]}
    assert by_provider["De Lijn"]["amount_cents"] == 450
    assert by_provider["De Lijn"]["per_mode"] == [{"mode": "bus", "trips": 2, "amount_cents": 450}]
    assert by_provider["Blue-bike Hasselt"]["amount_cents"] == 200
    assert body["total_cents"] == 650 and body["transactions"] == 2
    assert again.json() == body
    xmlschema.XMLSchema(SCHEMA).validate(xml.text)
    document = ET.fromstring(xml.text)  # noqa: S314 (our own output, not untrusted input)
    assert document.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == "6.50"
    summary = await report(world.uow_factory, "71022")
    assert summary.paid_out_cents == 650 and summary.owed_to_providers_cents == 0 and summary.balanced
    assert (await verify_ledger(world.uow_factory))["ok"]


async def test_another_citys_admin_cannot_read_a_settlement_run(world: World) -> None:
    admin = world.as_user("hasselt.city_admin")
    today = datetime.now(LOCAL_TIME).date().isoformat()
    run = (
        await admin.post("/v1/settlement-runs", {"period_start": "2026-01-01", "period_end": today})
    ).json()

    other = world.as_user("geel.city_admin")

    assert (await other.get(f"/v1/settlement-runs/{run['id']}")).status_code == 404
    assert (await other.get(f"/v1/settlement-runs/{run['id']}/pain001.xml")).status_code == 404
