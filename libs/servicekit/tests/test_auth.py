"""Bearer tokens: who gets in, who is refused and why, roles and tenants."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from servicekit.auth import (
    InvalidToken,
    JwksKeySource,
    Principal,
    StaticKeySource,
    TokenVerifier,
    build_verifier,
    ensure_tenant,
)
from servicekit.devidp import DevIdentityProvider, demo_user, devidp_router, load_or_create_key, public_pem
from servicekit.problems import PROBLEM_JSON, Problem
from servicekit.settings import ServiceSettings


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def refusal(client: httpx.AsyncClient, token: str) -> str:
    response = await client.get("/v1/seen", headers=auth(token))
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"].startswith("Bearer")
    detail: str = response.json()["detail"]
    return detail


async def test_a_valid_token_lets_the_caller_in(client: httpx.AsyncClient, token: str) -> None:
    assert (await client.get("/v1/seen", headers=auth(token))).status_code == 200


async def test_a_missing_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/seen")

    assert response.status_code == 401
    assert response.json()["detail"] == "a bearer token is required"


async def test_an_expired_token_is_refused(client: httpx.AsyncClient, idp: DevIdentityProvider) -> None:
    expired = idp.issue(demo_user("hasselt.trader"), exp=int(time.time()) - 3600)

    assert await refusal(client, expired) == "the token has expired"


async def test_a_token_signed_by_another_key_is_refused(tmp_path_factory: pytest.TempPathFactory) -> None:
    other = DevIdentityProvider(
        tmp_path_factory.mktemp("other"), issuer="cityblocks-dev", audience="cityblocks"
    )
    settings = ServiceSettings(data_dir=tmp_path_factory.mktemp("mine"))

    with pytest.raises(InvalidToken, match="signature"):
        await build_verifier(settings).verify(other.issue(demo_user("hasselt.trader")))


async def test_a_token_for_another_audience_is_refused(
    client: httpx.AsyncClient, idp: DevIdentityProvider
) -> None:
    foreign = idp.issue(demo_user("hasselt.trader"), aud="some-other-platform")

    assert await refusal(client, foreign) == "the token is not meant for this audience"


async def test_a_token_from_another_issuer_is_refused(
    client: httpx.AsyncClient, idp: DevIdentityProvider
) -> None:
    foreign = idp.issue(demo_user("hasselt.trader"), iss="https://evil.example")

    assert await refusal(client, foreign) == "the token's issuer is not trusted"


async def test_a_token_without_tenant_is_refused(client: httpx.AsyncClient, idp: DevIdentityProvider) -> None:
    homeless = idp.issue(demo_user("hasselt.trader"), tenant=None)

    assert await refusal(client, homeless) == "the token names no tenant"


async def test_a_garbage_token_is_refused(client: httpx.AsyncClient) -> None:
    assert await refusal(client, "not-a-jwt") == "the token is malformed"


async def test_an_hs256_token_is_refused_even_with_the_public_key_as_secret(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    import jwt

    from servicekit.devidp import load_or_create_key

    secret = public_pem(load_or_create_key(settings.devidp_dir))
    claims = {
        "sub": "x",
        "tenant": "71022",
        "roles": ["city_admin"],
        "iss": "cityblocks-dev",
        "aud": "cityblocks",
    }
    forged = jwt.encode({**claims, "exp": int(time.time()) + 60}, secret.encode()[:64], algorithm="HS256")

    assert (await client.get("/v1/seen", headers=auth(forged))).status_code == 401


async def test_a_caller_without_the_role_gets_403(
    client: httpx.AsyncClient, idp: DevIdentityProvider
) -> None:
    trader = idp.issue(demo_user("hasselt.trader"))

    response = await client.post("/v1/records", json={"stream": "s", "seq": 1}, headers=auth(trader))

    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON


async def test_another_municipalitys_resource_is_not_found(client: httpx.AsyncClient, token: str) -> None:
    own = await client.get("/v1/tenants/71022/thing", headers=auth(token))
    other = await client.get("/v1/tenants/13008/thing", headers=auth(token))

    assert own.status_code == 200
    assert other.status_code == 404


def test_ensure_tenant_can_answer_403_when_the_caller_named_the_tenant() -> None:
    principal = Principal(subject="u", roles=frozenset({"city_admin"}), tenant="71022")

    with pytest.raises(Problem) as refused:
        ensure_tenant(principal, "13008", hide_existence=False)

    assert refused.value.status == 403


async def test_the_principal_carries_roles_tenant_and_extra_claims(idp: DevIdentityProvider) -> None:
    user = demo_user("geel.trader")
    verifier = TokenVerifier(_jwks_source(idp), issuer="cityblocks-dev", audience="cityblocks")

    principal = await verifier.verify(idp.issue(user))

    assert principal.subject == user.subject
    assert principal.roles == frozenset({"trader"})
    assert principal.tenant == "13008"
    assert principal.claim("trader_id") == user.subject
    assert principal.has_role("trader", "market_master")


async def test_jwks_keys_are_fetched_once_and_cached(idp: DevIdentityProvider) -> None:
    calls: list[str] = []
    app = _idp_app(idp)

    async def counting(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        transport = httpx.ASGITransport(app=app)
        return await transport.handle_async_request(request)

    source = JwksKeySource("http://idp/.well-known/jwks.json", transport=httpx.MockTransport(counting))
    verifier = TokenVerifier(source, issuer="cityblocks-dev", audience="cityblocks")
    for _ in range(3):
        await verifier.verify(idp.issue(demo_user("hasselt.driver")))

    assert calls == ["http://idp/.well-known/jwks.json"]


async def test_a_token_with_an_unknown_key_id_is_refused(idp: DevIdentityProvider) -> None:
    import jwt

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {
        "sub": "x",
        "tenant": "71022",
        "iss": "cityblocks-dev",
        "aud": "cityblocks",
        "exp": time.time() + 60,
    }
    token = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "unknown"})
    verifier = TokenVerifier(_jwks_source(idp), issuer="cityblocks-dev", audience="cityblocks")

    with pytest.raises(InvalidToken, match="signing key is unknown"):
        await verifier.verify(token)


def _idp_app(idp: DevIdentityProvider) -> FastAPI:
    app = FastAPI()
    app.include_router(devidp_router(idp))
    return app


def _jwks_source(idp: DevIdentityProvider) -> JwksKeySource:
    transport = httpx.ASGITransport(app=_idp_app(idp))
    return JwksKeySource("http://idp/.well-known/jwks.json", transport=transport)


class _RotatingKeys:
    """A key source whose one trusted key the test can replace (a rotation)."""

    def __init__(self, pem: str) -> None:
        self.key = StaticKeySource(pem)

    async def key_for(self, kid: str | None) -> Any:
        return await self.key.key_for(kid)


async def test_a_verified_token_is_trusted_until_the_cache_time_ends(
    idp: DevIdentityProvider, settings: ServiceSettings
) -> None:
    keys = _RotatingKeys(public_pem(load_or_create_key(settings.devidp_dir)))
    verifier = TokenVerifier(keys, issuer="cityblocks-dev", audience="cityblocks", cache_s=0.2)
    token = idp.issue(demo_user("hasselt.provider"))
    first = await verifier.verify(token)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys.key = StaticKeySource(public_pem(stranger))

    remembered = await verifier.verify(token)
    await asyncio.sleep(0.25)

    assert remembered == first
    with pytest.raises(InvalidToken, match="signature is invalid"):
        await verifier.verify(token)


async def test_a_remembered_token_is_refused_once_it_expires(idp: DevIdentityProvider) -> None:
    verifier = TokenVerifier(_jwks_source(idp), issuer="cityblocks-dev", audience="cityblocks", leeway_s=0)
    token = idp.issue(demo_user("hasselt.provider"), exp=int(time.time()) + 1)
    await verifier.verify(token)

    await asyncio.sleep(max(0.0, int(time.time()) + 1.05 - time.time()))

    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(token)


async def test_a_tampered_copy_of_a_remembered_token_is_refused(idp: DevIdentityProvider) -> None:
    verifier = TokenVerifier(_jwks_source(idp), issuer="cityblocks-dev", audience="cityblocks")
    genuine = idp.issue(demo_user("geel.merchant"))
    await verifier.verify(genuine)
    header, payload, signature = genuine.split(".")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await verifier.verify(f"{header}.{payload}.{signature[::-1]}")
