"""JWT bearer authentication (RS256, JWKS URL or local key), the caller's roles and tenant, and guards."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from servicekit.problems import Problem
from servicekit.settings import ServiceSettings

ALGORITHMS = ["RS256"]

log = logging.getLogger(__name__)


class Role(StrEnum):
    CITY_ADMIN = "city_admin"
    MARKET_MASTER = "market_master"
    TRADER = "trader"
    OPERATOR = "operator"
    DRIVER = "driver"
    SHIPPER = "shipper"
    CITIZEN = "citizen"
    PROVIDER = "provider"
    MERCHANT = "merchant"
    SCHOOL = "school"


@dataclass(frozen=True)
class Principal:
    """The verified caller: who (`subject`), what they may do (`roles`), for which municipality (`tenant`)."""

    subject: str
    roles: frozenset[str]
    tenant: str
    name: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def has_role(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)

    def claim(self, name: str) -> str | None:
        """A free extra claim such as `trader_id` or `provider_id`, as a string when present."""
        value = self.claims.get(name)
        return None if value is None else str(value)


class InvalidToken(Exception):
    """The bearer token cannot be trusted; the message says why (safe to show to the caller)."""


class KeyUnavailable(Exception):
    """The verification keys could not be fetched."""


class KeySource(Protocol):
    async def key_for(self, kid: str | None) -> Any: ...


class StaticKeySource:
    """One public key known locally (embedded mode, or a key mounted into the container)."""

    def __init__(self, public_key_pem: str) -> None:
        self._key = load_pem_public_key(public_key_pem.encode())

    async def key_for(self, kid: str | None) -> Any:
        return self._key


class JwksKeySource:
    """Keys from the identity provider's JWKS URL, cached; an unknown `kid` triggers a refetch (rotation)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        cache_s: float = 300.0,
        refetch_cooldown_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.cache_s = cache_s
        self.refetch_cooldown_s = refetch_cooldown_s
        self._transport = transport
        self._keys: dict[str | None, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> Any:
        if self._needs_fetch(kid):
            async with self._lock:
                if self._needs_fetch(kid):  # another request may have fetched while this one waited
                    await self._fetch()
        try:
            return self._keys[kid]
        except KeyError:
            raise InvalidToken("the token's signing key is unknown") from None

    def _needs_fetch(self, kid: str | None) -> bool:
        age = time.monotonic() - self._fetched_at
        return age > self.cache_s or (kid not in self._keys and age > self.refetch_cooldown_s)

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, transport=self._transport) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                jwk_set = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWKError) as exc:
            if not self._keys:
                raise KeyUnavailable(f"cannot fetch {self.url}: {exc}") from exc
            return  # keep serving the keys we have; the next call tries again after the cooldown
        keys: dict[str | None, Any] = {jwk.key_id: jwk.key for jwk in jwk_set.keys}
        if len(jwk_set.keys) == 1:
            keys[None] = jwk_set.keys[0].key  # a token without kid is fine when there is only one key
        self._keys = keys
        self._fetched_at = time.monotonic()


class TokenVerifier:
    """Checks signature (RS256 only), expiry, issuer and audience, and reads the platform's claims.

    A token that passed is remembered for at most `cache_s` seconds (and never past its expiry), because a
    client sends the same token with every request and checking it again costs more than most requests.
    Signature, issuer and audience are fixed by the token's text, so the memory only has to recheck expiry;
    a rotated-out signing key stops being trusted for its tokens `cache_s` seconds later at most.
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway_s: int = 10,
        cache_s: float = 60.0,
        cache_size: int = 10_000,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.cache_s = cache_s
        self.cache_size = cache_size
        # token -> (principal, expiry as a Unix time, monotonic time it was checked); oldest first.
        self._verified: dict[str, tuple[Principal, float, float]] = {}

    async def verify(self, token: str) -> Principal:
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, expires, checked = remembered
            if time.time() < expires + self.leeway_s and time.monotonic() - checked < self.cache_s:
                return principal
            del self._verified[token]
        principal, expires = await self._check(token)
        if self.cache_size > 0 and self.cache_s > 0:
            if len(self._verified) >= self.cache_size:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = (principal, expires, time.monotonic())
        return principal

    async def _check(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the token is malformed") from None
        key = await self.keys.key_for(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is not meant for this audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token's issuer is not trusted") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token's signature is invalid") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token is invalid: {exc}") from None
        return principal_of(claims), float(claims["exp"])


def principal_of(claims: Mapping[str, Any]) -> Principal:
    tenant = claims.get("tenant")
    if not isinstance(tenant, str) or not tenant:
        raise InvalidToken("the token names no tenant")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidToken("the token's roles are not a list of strings")
    name = claims.get("name")
    return Principal(
        subject=str(claims["sub"]),
        roles=frozenset(roles),
        tenant=tenant,
        name=name if isinstance(name, str) else None,
        claims=dict(claims),
    )


def build_verifier(
    settings: ServiceSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> TokenVerifier:
    """JWKS URL when configured (production), else a local public key, else the dev identity key."""
    keys: KeySource
    if settings.jwks_url:
        keys = JwksKeySource(
            settings.jwks_url,
            timeout_s=settings.jwks_timeout_s,
            cache_s=settings.jwks_cache_s,
            transport=transport,
        )
    elif settings.jwt_public_key:
        keys = StaticKeySource(_read_pem(settings.jwt_public_key))
    elif settings.dev_identity:
        from servicekit.devidp import load_or_create_key, public_pem

        log.warning(
            "%s trusts the dev identity provider's key in %s", settings.service_name, settings.devidp_dir
        )
        keys = StaticKeySource(public_pem(load_or_create_key(settings.devidp_dir)))
    else:
        raise RuntimeError("no way to verify tokens: set jwks_url or jwt_public_key, or enable dev_identity")
    return TokenVerifier(
        keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience, leeway_s=settings.jwt_leeway_s
    )


def _read_pem(value: str) -> str:
    # The setting holds either the PEM text itself or the path of a PEM file.
    return value if value.lstrip().startswith("-----BEGIN") else Path(value).read_text()


_bearer = HTTPBearer(auto_error=False, description="A JWT from the identity provider (dev: POST /auth/token)")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the verified caller, or a 401 problem."""
    if credentials is None:
        raise Problem(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = await verifier.verify(credentials.credentials)
    except InvalidToken as exc:
        raise Problem(401, str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    except KeyUnavailable:
        raise Problem(503, "the identity provider's keys are unavailable") from None
    request.state.principal = principal  # the audit trail of the request's units of work names the caller
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """FastAPI dependency factory: the caller must hold at least one of `roles`, else a 403 problem."""
    wanted = frozenset(roles)

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.roles.isdisjoint(wanted):
            raise Problem(403, f"this needs one of the roles: {', '.join(sorted(wanted))}")
        return principal

    return dependency


def ensure_tenant(principal: Principal, tenant: str, *, hide_existence: bool = True) -> None:
    """Refuse access to another municipality's data.

    A resource of another tenant answers 404 so that its existence does not leak; pass `hide_existence=False`
    when the tenant was named by the caller (e.g. in the path of a collection) to answer 403 instead.
    """
    if principal.tenant == tenant:
        return
    if hide_existence:
        raise Problem(404, "not found")
    raise Problem(403, "this belongs to another municipality")


principal = current_principal
require_role = require_roles
