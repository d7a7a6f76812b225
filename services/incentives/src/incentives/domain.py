"""Incentive rules without I/O: coin types and rates, windows and limits, rewards, QR payloads, ids."""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

LOCAL_TIME = ZoneInfo("Europe/Brussels")
_IDS = UUID("b7a3f0d2-4c1e-4f0a-9d7e-2a6c5e8f1b33")
CLAIM_TRIGGER = "claim"


class IncentiveError(Exception):
    """Base of the named domain errors; the message is safe to show."""


class NotFound(IncentiveError):
    """The coin type, campaign, merchant, wallet or claim does not exist (for this caller)."""


class Conflict(IncentiveError):
    """The request contradicts the current state (e.g. a claim decided already)."""


class InsufficientCoins(IncentiveError):
    """The wallet or merchant account holds fewer coins than asked for."""


class CoinNotAccepted(IncentiveError):
    """The merchant's municipality does not accept this coin type, or the merchant does not take it."""


class QrRejected(IncentiveError):
    """The QR payload is forged, malformed or expired."""


class QrAlreadyUsed(IncentiveError):
    """The one-time QR payload was redeemed before."""


class VelocityLimitExceeded(IncentiveError):
    """Too many or too large redemptions in a short time (fraud guard)."""


class InvalidParty(IncentiveError):
    """A KBO number or IBAN fails its check digits."""


class Window(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    TOTAL = "total"


class Scope(enum.StrEnum):
    LOCAL = "local"
    REGIONAL = "regional"


@dataclass(frozen=True)
class CoinType:
    """A coin of one issuer; `rate_coins` coins are worth `rate_cents` euro cents (10 coins = 100 cents)."""

    id: UUID
    code: str
    name: str
    issuer_tenant: str
    scope: Scope
    member_tenants: frozenset[str]
    ledger: int
    rate_coins: int
    rate_cents: int
    expires_at: datetime | None = None

    def accepted_in(self, tenant: str) -> bool:
        """Local coins are spent in the issuer's municipality, regional ones in every member municipality."""
        if self.scope is Scope.LOCAL:
            return tenant == self.issuer_tenant
        return tenant == self.issuer_tenant or tenant in self.member_tenants

    def administered_by(self, tenant: str) -> bool:
        return tenant == self.issuer_tenant

    @property
    def settlement_step(self) -> int:
        """The smallest number of coins worth a whole number of cents."""
        return self.rate_coins // math.gcd(self.rate_coins, self.rate_cents)

    def settleable(self, coins: int) -> int:
        return coins - coins % self.settlement_step

    def to_cents(self, coins: int) -> int:
        """Euro cents for coins; exact for multiples of `settlement_step`, rounded down otherwise."""
        return coins * self.rate_cents // self.rate_coins

    def coins_for_cents(self, cents: int) -> int:
        return cents * self.rate_coins // self.rate_cents


def window_key(window: Window, at: datetime, zone: ZoneInfo = LOCAL_TIME) -> str:
    """The limit window holding `at`, named by its start in local time; edges are local midnights."""
    local = at.astimezone(zone)
    if window is Window.DAY:
        return f"day:{local.date().isoformat()}"
    if window is Window.WEEK:
        year, week, _ = local.isocalendar()
        return f"week:{year}-W{week:02d}"
    if window is Window.MONTH:
        return f"month:{local.year}-{local.month:02d}"
    if window is Window.YEAR:
        return f"year:{local.year}"
    return "total"


def window_start(window: Window, at: datetime, zone: ZoneInfo = LOCAL_TIME) -> datetime | None:
    """The UTC moment the window holding `at` began (None for the total window)."""
    local = at.astimezone(zone).date()
    starts = {
        Window.DAY: local,
        Window.WEEK: local - timedelta(days=local.weekday()),
        Window.MONTH: local.replace(day=1),
        Window.YEAR: local.replace(month=1, day=1),
    }
    start = starts.get(window)
    if start is None:
        return None
    return datetime(start.year, start.month, start.day, tzinfo=zone).astimezone(UTC)


def grantable(reward: int, used: int, limit: int | None) -> int:
    """How much of a reward still fits under a member's limit in the window (0 when it is reached)."""
    if limit is None:
        return max(reward, 0)
    return max(0, min(reward, limit - used))


class RewardKind(enum.StrEnum):
    FIXED = "fixed"
    PERCENTAGE = "percentage"


@dataclass(frozen=True)
class Reward:
    """Fixed coins, or `percent_bps` basis points of a euro-cent amount field converted at the coin's rate."""

    kind: RewardKind
    coins: int = 0
    percent_bps: int = 0
    base_field: str | None = None

    def amount(self, coin: CoinType, base_cents: int | None) -> int:
        if self.kind is RewardKind.FIXED:
            return self.coins
        if base_cents is None or base_cents <= 0:
            return 0
        return coin.coins_for_cents(base_cents * self.percent_bps // 10_000)


@dataclass(frozen=True)
class VelocityLimits:
    """Fraud guards: per wallet and per merchant, in a sliding window of `window_s` seconds."""

    window_s: int = 3_600
    wallet_max_redemptions: int = 20
    wallet_max_coins: int = 2_000
    merchant_max_coins: int = 100_000


def check_velocity(
    limits: VelocityLimits, wallet_count: int, wallet_coins: int, merchant_coins: int, amount: int
) -> None:
    """Raise when this redemption would push the wallet or merchant over its recent totals."""
    if wallet_count + 1 > limits.wallet_max_redemptions:
        raise VelocityLimitExceeded(
            f"at most {limits.wallet_max_redemptions} redemptions per wallet per hour"
        )
    if wallet_coins + amount > limits.wallet_max_coins:
        raise VelocityLimitExceeded(f"at most {limits.wallet_max_coins} coins per wallet per hour")
    if merchant_coins + amount > limits.merchant_max_coins:
        raise VelocityLimitExceeded(f"at most {limits.merchant_max_coins} coins per merchant per hour")


@dataclass(frozen=True)
class QrClaims:
    """What a wallet's QR code carries: whose wallet, which coin, a one-time nonce, until when."""

    wallet_id: UUID
    coin_type_id: UUID
    nonce: UUID
    expires_at: datetime
    max_amount: int | None = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_qr(secret: bytes, claims: QrClaims) -> str:
    body = {
        "w": str(claims.wallet_id),
        "c": str(claims.coin_type_id),
        "n": str(claims.nonce),
        "x": int(claims.expires_at.timestamp()),
        "m": claims.max_amount,
    }
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    return f"cbq1.{payload}.{signature}"


def read_qr(secret: bytes, token: str, now: datetime) -> QrClaims:
    """The claims of a genuine, unexpired payload, else QrRejected (replay is the caller's check)."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != "cbq1" or len(token) > 1_000:
        raise QrRejected("not a wallet QR code")
    expected = _b64(hmac.new(secret, parts[1].encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, parts[2]):
        raise QrRejected("the QR code's signature is invalid")
    try:
        body = json.loads(_unb64(parts[1]))
        claims = QrClaims(
            UUID(body["w"]),
            UUID(body["c"]),
            UUID(body["n"]),
            datetime.fromtimestamp(int(body["x"]), UTC),
            None if body.get("m") is None else int(body["m"]),
        )
    except (ValueError, KeyError, TypeError):
        raise QrRejected("the QR code is malformed") from None
    if now >= claims.expires_at:
        raise QrRejected("the QR code has expired; show a fresh one")
    return claims


def normalise_kbo(text: str) -> str:
    """A KBO number as `0xxx.xxx.xxx` after its mod-97 check."""
    digits = re.sub(r"\D", "", text)
    if len(digits) == 9:
        digits = "0" + digits
    if len(digits) != 10 or 97 - int(digits[:8]) % 97 != int(digits[8:]):
        raise InvalidParty(f"{text!r} is not a valid KBO number")
    return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"


def normalise_iban(text: str) -> str:
    iban = re.sub(r"\s", "", text).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", iban) or (iban.startswith("BE") and len(iban) != 16):
        raise InvalidParty(f"{text!r} is not a valid IBAN")
    rearranged = iban[4:] + iban[:4]
    if int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 != 1:
        raise InvalidParty(f"{text!r} fails the IBAN check digits")
    return iban


def stable_id(*parts: object) -> UUID:
    """A deterministic id from its parts, so accounts and idempotency keys need no lookup."""
    return uuid5(_IDS, "|".join(str(p) for p in parts))


# Remembered: the rule engine names the same wallets and budgets for every grant of a batch.
@functools.lru_cache(maxsize=65_536)
def wallet_account(citizen_id: str, coin_type_id: UUID) -> UUID:
    return stable_id("wallet", citizen_id, coin_type_id)


def merchant_account(merchant_id: UUID, coin_type_id: UUID) -> UUID:
    return stable_id("merchant", merchant_id, coin_type_id)


@functools.lru_cache(maxsize=4_096)
def budget_account(campaign_id: UUID) -> UUID:
    return stable_id("budget", campaign_id)


def issuer_account(coin_type_id: UUID) -> UUID:
    return stable_id("issuer", coin_type_id)


def settled_account(coin_type_id: UUID) -> UUID:
    return stable_id("settled", coin_type_id)


def breakage_account(coin_type_id: UUID) -> UUID:
    return stable_id("breakage", coin_type_id)


def issuance_id(trigger_id: str, rule_id: UUID) -> UUID:
    """Issuance is idempotent per (trigger event or claim, rule): the same pair always names one transfer."""
    return stable_id("issue", trigger_id, rule_id)


def settlement_period(period_end: date, days: int) -> tuple[date, date]:
    return period_end - timedelta(days=days - 1), period_end
