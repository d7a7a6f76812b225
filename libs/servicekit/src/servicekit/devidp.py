"""The dev identity provider: one RSA key per data dir, demo users of every role, RS256 tokens."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict

from servicekit.auth import Role
from servicekit.problems import Problem, install_problem_handlers
from servicekit.ratelimit import RateLimitMiddleware
from servicekit.settings import ServiceSettings

KEY_FILE = "signing_key.pem"
TENANTS = {"71022": "Hasselt", "13008": "Geel"}
_USER_NAMESPACE = uuid.UUID("6f1c1b9e-3f52-4b7e-9a51-6d0c7ac1b001")
# Roles acting as a party in some service get an id claim named after the role (e.g. `trader_id`).
_PARTY_ROLES = frozenset(Role) - {Role.CITY_ADMIN, Role.MARKET_MASTER}


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: str
    roles: tuple[str, ...]
    tenant: str
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def subject(self) -> str:
        return demo_user_id(self.username)


def demo_user_id(username: str) -> str:
    """The stable subject of a demo user, so that demo data can refer to the same people across restarts."""
    return str(uuid.uuid5(_USER_NAMESPACE, username))


def _demo_users() -> tuple[DemoUser, ...]:
    users: list[DemoUser] = []
    for tenant, city in TENANTS.items():
        for role in Role:
            for suffix in ("", "2") if role is Role.TRADER else ("",):
                username = f"{city.lower()}.{role.value}{suffix}"
                extra = {f"{role.value}_id": demo_user_id(username)} if role in _PARTY_ROLES else {}
                label = role.value.replace("_", " ")
                users.append(DemoUser(username, f"{city} {label}{suffix}", (role.value,), tenant, extra))
    return tuple(users)


DEMO_USERS: tuple[DemoUser, ...] = _demo_users()


def demo_user(username: str) -> DemoUser:
    for user in DEMO_USERS:
        if user.username == username:
            return user
    raise KeyError(username)


def load_or_create_key(key_dir: Path) -> rsa.RSAPrivateKey:
    """The data dir's signing key, created once; concurrent first starts (one per service) agree on one."""
    path = key_dir / KEY_FILE
    if not path.exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = key_dir / f".{KEY_FILE}.{os.getpid()}.{uuid.uuid4().hex}"
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        # link() fails when another process won the race; then its key is the one.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise TypeError(f"{path} is not an RSA private key")
    return loaded


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    jwk = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    # RFC 7638 thumbprint as key id: stable for the key, changes when the key is rotated.
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


class DevIdentityProvider:
    """Issues tokens for the demo users, signed with the data dir's key."""

    def __init__(self, key_dir: Path, *, issuer: str, audience: str, token_ttl_s: int = 3_600) -> None:
        self._key = load_or_create_key(key_dir)
        self.jwk = public_jwk(self._key)
        self.issuer = issuer
        self.audience = audience
        self.token_ttl_s = token_ttl_s

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> DevIdentityProvider:
        if not settings.dev_identity:
            raise RuntimeError("the dev identity provider is disabled (dev_identity is false)")
        return cls(
            settings.devidp_dir,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            token_ttl_s=settings.dev_token_ttl_s,
        )

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.jwk]}

    def issue(self, user: DemoUser, *, ttl_s: int | None = None, **overrides: Any) -> str:
        """A signed token for `user`; `overrides` replace claims (tests make expired or foreign tokens)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user.subject,
            "iat": now,
            "exp": now + (self.token_ttl_s if ttl_s is None else ttl_s),
            "name": user.name,
            "preferred_username": user.username,
            "roles": list(user.roles),
            "tenant": user.tenant,
            **user.extra,
        }
        claims.update(overrides)
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.jwk["kid"]})


class TokenRequest(BaseModel):
    username: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105
    expires_in: int


class UserView(BaseModel):
    username: str
    name: str
    roles: list[str]
    tenant: str
    tenant_name: str
    subject: str
    claims: dict[str, str]


def devidp_router(provider: DevIdentityProvider) -> APIRouter:
    """Routes of the dev identity provider; mount it under a prefix such as `/auth`."""
    router = APIRouter(tags=["dev identity provider"])

    @router.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, list[dict[str, str]]]:
        return provider.jwks()

    @router.get("/users")
    async def users() -> list[UserView]:
        return [_user_view(user) for user in DEMO_USERS]

    @router.post("/token")
    async def token(request: Request) -> TokenResponse:
        username = await _username_of(request)
        try:
            user = demo_user(username)
        except KeyError:
            raise Problem(400, f"unknown demo user {username!r}; see GET users") from None
        return TokenResponse(access_token=provider.issue(user), expires_in=provider.token_ttl_s)

    @router.get("/", response_class=HTMLResponse)
    async def login_page() -> HTMLResponse:
        return HTMLResponse(_login_page())

    return router


def devidp_app(provider: DevIdentityProvider, *, logins_per_minute: int = 60) -> FastAPI:
    """The provider as an app of its own (errors as problems), to mount under `/auth`."""
    app = FastAPI(
        title="CityBlocks dev identity provider", description="Development only: tokens for demo users."
    )
    install_problem_handlers(app)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "auth"}

    # Half a minute's worth may come at once (a class logging in together); beyond that, a steady rate.
    burst = max(1, logins_per_minute // 2)
    app.add_middleware(RateLimitMiddleware, prefixes=["/token"], per_minute=logins_per_minute, burst=burst)
    app.include_router(devidp_router(provider))
    return app


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The provider on its own, for a distributed dev run: `uvicorn servicekit.devidp:create_app --factory`.

    Settings come from `DEVIDP_*` (e.g. `DEVIDP_DATA_DIR`); services verify with the key in the same data dir.
    """
    settings = settings or DevIdpSettings()
    provider = DevIdentityProvider.from_settings(settings)
    return devidp_app(provider, logins_per_minute=settings.rate_limit_login_per_minute)


class DevIdpSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEVIDP_", extra="ignore")

    service_name: str = "auth"


def _user_view(user: DemoUser) -> UserView:
    return UserView(
        username=user.username,
        name=user.name,
        roles=list(user.roles),
        tenant=user.tenant,
        tenant_name=TENANTS[user.tenant],
        subject=user.subject,
        claims=user.extra,
    )


async def _username_of(request: Request) -> str:
    # JSON or an HTML form; parsed by hand so the service needs no multipart dependency.
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            return TokenRequest.model_validate_json(body).username
        except ValueError:
            raise Problem(400, 'expected a JSON body {"username": ...}') from None
    values = parse_qs(body.decode(errors="replace")).get("username", [])
    if not values:
        raise Problem(400, "the username field is missing")
    return values[0]


def _login_page() -> str:
    options = "\n".join(
        f'<option value="{u.username}">{u.name} ({TENANTS[u.tenant]} {u.tenant})</option>' for u in DEMO_USERS
    )
    return _LOGIN_PAGE.replace("{options}", options)


_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CityBlocks dev login</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
textarea{width:100%;height:9rem;font-family:monospace}</style></head>
<body><h1>CityBlocks dev login</h1>
<p>Development only: pick a demo user to get a bearer token (paste it in a service's <code>/docs</code>,
button <em>Authorize</em>).</p>
<form id="login"><label>User <select name="username">{options}</select></label>
<button type="submit">Get token</button></form>
<p><textarea id="token" readonly aria-label="token"></textarea></p>
<script>
document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = new URLSearchParams(new FormData(e.target));
  const r = await fetch("token", {method: "POST", body});
  const j = await r.json();
  document.getElementById("token").value = j.access_token || JSON.stringify(j);
  if (j.access_token) localStorage.setItem("cityblocks.token", j.access_token);
});
</script></body></html>
"""
