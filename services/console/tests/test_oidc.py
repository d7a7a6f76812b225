"""Production login through an OpenID Connect provider: authorization code flow with PKCE and state."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Form, HTTPException

from servicekit.devidp import DevIdentityProvider, demo_user
from servicekit.settings import ServiceSettings

ISSUER = "http://idp.test/realms/hasselt"


def fake_provider(identity: DevIdentityProvider, challenges: dict[str, str]) -> FastAPI:
    """A provider that knows one code per test; its tokens are signed with the key the services trust."""
    idp = FastAPI()

    @idp.get("/realms/hasselt/.well-known/openid-configuration")
    async def discovery() -> dict[str, str]:
        return {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/protocol/openid-connect/auth",
            "token_endpoint": f"{ISSUER}/protocol/openid-connect/token",
        }

    @idp.post("/realms/hasselt/protocol/openid-connect/token")
    async def token(
        grant_type: str = Form(), code: str = Form(), code_verifier: str = Form(), client_id: str = Form()
    ) -> dict[str, object]:
        digest = hashlib.sha256(code_verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if grant_type != "authorization_code" or challenges.get(code) != challenge or client_id != "console":
            raise HTTPException(400, "invalid_grant")
        return {"access_token": identity.issue(demo_user("hasselt.operator")), "expires_in": 600}

    return idp


class Routed(httpx.AsyncBaseTransport):
    """The provider's host goes to the fake provider, everything else to the platform."""

    def __init__(self, provider: FastAPI, platform: FastAPI) -> None:
        self.provider = httpx.ASGITransport(app=provider)
        self.platform = httpx.ASGITransport(app=platform)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = self.provider if request.url.host == "idp.test" else self.platform
        return await target.handle_async_request(request)


@pytest.fixture
def challenges(platform: FastAPI, tmp_path: Path) -> dict[str, str]:
    identity = DevIdentityProvider.from_settings(ServiceSettings(service_name="auth", data_dir=tmp_path))
    codes: dict[str, str] = {}
    for service in platform.state.services:
        if service.name == "console":
            service.app.state.settings.oidc_issuer = ISSUER
            service.app.state.settings.oidc_client_id = "console"
            service.app.state.service_transport = Routed(fake_provider(identity, codes), platform)
    return codes


async def test_a_user_logs_in_at_the_provider_and_lands_where_they_were_going(
    client: httpx.AsyncClient, challenges: dict[str, str]
) -> None:
    started = await client.get("/console/login", params={"next": "/console/ops"})
    authorize = urlsplit(started.headers["location"])
    query = {key: values[0] for key, values in parse_qs(authorize.query).items()}
    # What the provider does after the user typed a password: remember the challenge, send the browser back.
    challenges["the-code"] = query["code_challenge"]
    back = await client.get(
        urlsplit(query["redirect_uri"]).path, params={"code": "the-code", "state": query["state"]}
    )
    home = await client.get("/console/")

    assert started.status_code == 303
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}".startswith(ISSUER)
    assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
    assert query["client_id"] == "console"
    assert back.status_code == 303 and back.headers["location"] == "/console/ops"
    assert "Hasselt operator" in home.text


async def test_a_callback_with_another_state_opens_no_session(
    client: httpx.AsyncClient, challenges: dict[str, str]
) -> None:
    started = await client.get("/console/login")
    query = {key: values[0] for key, values in parse_qs(urlsplit(started.headers["location"]).query).items()}
    challenges["the-code"] = query["code_challenge"]

    forged_state = {"code": "the-code", "state": "someone-elses"}
    forged = await client.get("/console/login/callback", params=forged_state)

    assert forged.status_code == 400
    assert "cityblocks_session" not in forged.headers.get("set-cookie", "")


async def test_demo_logins_are_off_when_a_provider_is_configured(
    client: httpx.AsyncClient, challenges: dict[str, str]
) -> None:
    response = await client.post("/console/login", data={"username": "hasselt.city_admin"})

    assert response.status_code == 404
