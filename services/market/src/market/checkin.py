"""Check-in codes: a signed, expiring token per assignment, and its QR code rendered on the server (segno)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import segno

TOKEN_PREFIX = "cbm1"  # noqa: S105 (a format marker, not a secret)


class InvalidCheckInCode(ValueError):
    """The scanned code is forged, damaged, expired or for another day."""


@dataclass(frozen=True)
class CheckInClaim:
    assignment_id: UUID
    market_day_id: UUID
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claim: CheckInClaim, secret: bytes) -> str:
    body = json.dumps(
        {
            "a": str(claim.assignment_id),
            "d": str(claim.market_day_id),
            "e": int(claim.expires_at.timestamp()),
        },
        separators=(",", ":"),
    ).encode()
    payload = f"{TOKEN_PREFIX}.{_b64(body)}"
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def verify(token: str, secret: bytes, *, now: datetime) -> CheckInClaim:
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise InvalidCheckInCode("this is not a market check-in code")
    payload = f"{parts[0]}.{parts[1]}"
    expected = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(parts[2])
        body = json.loads(_unb64(parts[1]))
        claim = CheckInClaim(UUID(body["a"]), UUID(body["d"]), datetime.fromtimestamp(int(body["e"]), tz=UTC))
    except (ValueError, KeyError, TypeError):
        raise InvalidCheckInCode("the check-in code is damaged") from None
    if not hmac.compare_digest(expected, given):
        raise InvalidCheckInCode("the check-in code's signature is invalid")
    if now >= claim.expires_at:
        raise InvalidCheckInCode("the check-in code has expired")
    return claim


def qr_svg(token: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(token, error="m").save(buffer, kind="svg", scale=6, border=2)
    return buffer.getvalue()


def qr_png(token: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(token, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()
