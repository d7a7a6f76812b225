"""Check-in codes: signed, expiring, bound to one assignment and day; QR rendering."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from market import checkin
from market.settings import Settings

SECRET = b"k" * 32
NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def _claim(expires_in: timedelta = timedelta(hours=6)) -> checkin.CheckInClaim:
    return checkin.CheckInClaim(uuid.uuid4(), uuid.uuid4(), NOW + expires_in)


def test_a_signed_code_verifies_to_its_claim() -> None:
    claim = _claim()
    found = checkin.verify(checkin.sign(claim, SECRET), SECRET, now=NOW)
    assert (found.assignment_id, found.market_day_id) == (claim.assignment_id, claim.market_day_id)


def test_an_expired_code_is_refused() -> None:
    token = checkin.sign(_claim(timedelta(minutes=-1)), SECRET)
    with pytest.raises(checkin.InvalidCheckInCode, match="expired"):
        checkin.verify(token, SECRET, now=NOW)


def test_a_code_signed_with_another_key_is_refused() -> None:
    token = checkin.sign(_claim(), b"x" * 32)
    with pytest.raises(checkin.InvalidCheckInCode, match="signature"):
        checkin.verify(token, SECRET, now=NOW)


def test_a_code_with_an_edited_payload_is_refused() -> None:
    prefix, _, mac = checkin.sign(_claim(), SECRET).split(".")
    other = checkin.sign(_claim(), SECRET).split(".")[1]
    with pytest.raises(checkin.InvalidCheckInCode):
        checkin.verify(f"{prefix}.{other}.{mac}", SECRET, now=NOW)


@pytest.mark.parametrize("token", ["", "hello", "cbm1.!!.??", "other.a.b"])
def test_garbage_is_not_a_code(token: str) -> None:
    with pytest.raises(checkin.InvalidCheckInCode):
        checkin.verify(token, SECRET, now=NOW)


def test_the_qr_code_renders_as_svg_and_png() -> None:
    token = checkin.sign(_claim(), SECRET)
    assert b"<svg" in checkin.qr_svg(token)
    assert checkin.qr_png(token).startswith(b"\x89PNG")


def test_the_signing_key_is_created_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.checkin_key()
    assert Settings(data_dir=tmp_path).checkin_key() == first and len(first) == 32
    assert Settings(data_dir=tmp_path, checkin_secret="configured").checkin_key() == b"configured"
