"""The dev identity provider: demo users of every role in Hasselt and Geel, tokens, JWKS, one key per dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI

from servicekit.auth import Role, build_verifier
from servicekit.devidp import DevIdentityProvider, create_app, devidp_app, load_or_create_key
from servicekit.settings import ServiceSettings


@pytest.fixture
async def idp_client(idp: DevIdentityProvider) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.mount("/auth", devidp_app(idp))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://idp") as client:
        yield client


async def test_there_is_a_demo_user_for_every_role_in_both_municipalities(
    idp_client: httpx.AsyncClient,
) -> None:
    users = (await idp_client.get("/auth/users")).json()

    pairs = {(role, user["tenant"]) for user in users for role in user["roles"]}
    assert pairs == {(role.value, tenant) for role in Role for tenant in ("71022", "13008")}


async def test_a_token_by_form_verifies_with_the_service_side_verifier(
    idp_client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    response = await idp_client.post("/auth/token", data={"username": "geel.market_master"})

    body = response.json()
    principal = await build_verifier(settings).verify(body["access_token"])
    assert body["token_type"] == "Bearer"
    assert principal.roles == frozenset({"market_master"})
    assert principal.tenant == "13008"


async def test_a_token_by_json_is_signed_with_the_published_key(idp_client: httpx.AsyncClient) -> None:
    token = (await idp_client.post("/auth/token", json={"username": "hasselt.citizen"})).json()[
        "access_token"
    ]
    jwks = (await idp_client.get("/auth/.well-known/jwks.json")).json()

    key = jwt.PyJWKSet.from_dict(jwks).keys[0]
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="cityblocks")
    assert jwt.get_unverified_header(token)["kid"] == key.key_id
    assert claims["citizen_id"] == claims["sub"]


async def test_an_unknown_user_gets_a_400_problem(idp_client: httpx.AsyncClient) -> None:
    response = await idp_client.post("/auth/token", data={"username": "mallory"})

    assert response.status_code == 400


async def test_the_login_page_lists_the_demo_users(idp_client: httpx.AsyncClient) -> None:
    page = (await idp_client.get("/auth/")).text

    assert "hasselt.market_master" in page
    assert "geel.school" in page


def test_the_key_is_made_once_per_data_dir(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path)
    second = load_or_create_key(tmp_path)

    assert first.private_numbers() == second.private_numbers()
    assert (tmp_path / "signing_key.pem").stat().st_mode & 0o077 == 0


def test_the_provider_is_refused_when_dev_identity_is_disabled(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="disabled"):
        DevIdentityProvider.from_settings(ServiceSettings(data_dir=tmp_path, dev_identity=False))


async def test_the_provider_runs_as_an_app_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVIDP_DATA_DIR", str(tmp_path))
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://idp") as client:
        response = await client.post("/token", json={"username": "geel.driver"})

    principal = await build_verifier(ServiceSettings(data_dir=tmp_path)).verify(
        response.json()["access_token"]
    )
    assert principal.claim("driver_id") == principal.subject
