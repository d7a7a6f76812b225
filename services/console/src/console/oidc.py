"""Login through the city's OpenID Connect provider: the authorization code flow with PKCE.

Configured by `CONSOLE_OIDC_ISSUER` (and `CONSOLE_OIDC_CLIENT_ID`, `CONSOLE_OIDC_CLIENT_SECRET` for a
confidential client). The provider's access token is what the services verify (JWKS), so it must carry the
`roles` and `tenant` claims; the console keeps it in its HttpOnly session cookie like a dev provider's token.
Without an issuer the console logs in through the dev identity provider (embedded and development runs).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from console.clients import ServiceProblem, Services, ServicesClient, problem_detail
from console.session import base_path, safe_next, start_session
from servicekit.problems import Problem

router = APIRouter(include_in_schema=False)
# The round trip through the provider's login page: long enough to type a password, short enough to expire.
FLOW_COOKIE = "cityblocks_oidc"
FLOW_MAX_AGE_S = 600


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str


async def endpoints(services: Services, issuer: str) -> Endpoints:
    """The provider's endpoints from its discovery document."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = await services.raw_get(url)
    except ServiceProblem as exc:
        raise Problem(502, f"the identity provider did not answer: {exc.detail}") from None
    if response.status_code != 200:
        raise Problem(502, f"the identity provider's discovery failed: HTTP {response.status_code}")
    document = response.json()
    return Endpoints(document["authorization_endpoint"], document["token_endpoint"])


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def callback_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{base_path(request)}/login/callback"


async def start_login(request: Request, services: Services, next: str) -> Response:
    """Send the browser to the provider's login, remembering state, verifier and where to go after."""
    settings = request.app.state.settings
    found = await endpoints(services, settings.oidc_issuer)
    state = secrets.token_urlsafe(24)
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": settings.oidc_client_id,
        "redirect_uri": callback_url(request),
        "scope": settings.oidc_scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    redirect = RedirectResponse(f"{found.authorization}?{urlencode(query)}", status_code=303)
    flow = json.dumps({"state": state, "verifier": verifier, "next": safe_next(request, next)})
    redirect.set_cookie(
        FLOW_COOKIE,
        base64.urlsafe_b64encode(flow.encode()).decode(),
        max_age=FLOW_MAX_AGE_S,
        path=base_path(request) or "/",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",  # the provider sends the browser back with a top-level GET: Lax cookies come along
    )
    return redirect


@router.get("/login/callback")
async def callback(request: Request, services: ServicesClient, code: str = "", state: str = "") -> Response:
    """The provider sent the browser back: check the state, trade the code for the token, open the session."""
    settings = request.app.state.settings
    if not settings.oidc_issuer:
        raise Problem(404, "no OpenID Connect provider is configured")
    flow = _flow(request)
    if flow is None or not code or not secrets.compare_digest(state, flow["state"]):
        raise Problem(400, "this login was not started here or has expired; start again")
    found = await endpoints(services, settings.oidc_issuer)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": callback_url(request),
        "client_id": settings.oidc_client_id,
        "code_verifier": flow["verifier"],
    }
    if settings.oidc_client_secret:
        form["client_secret"] = settings.oidc_client_secret
    try:
        response = await services.raw_post_form(found.token, form)
    except ServiceProblem as exc:
        raise Problem(502, f"the identity provider did not answer: {exc.detail}") from None
    if response.status_code != 200:
        raise Problem(401, f"the identity provider refused the login: {problem_detail(response)}")
    body = response.json()
    redirect = RedirectResponse(flow["next"], status_code=303)
    start_session(redirect, request, body["access_token"], int(body.get("expires_in", 3600)))
    redirect.delete_cookie(FLOW_COOKIE, path=base_path(request) or "/")
    return redirect


def _flow(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLOW_COOKIE)
    if not raw:
        return None
    try:
        flow = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        return None
    if not isinstance(flow, dict) or not all(
        isinstance(flow.get(k), str) for k in ("state", "verifier", "next")
    ):
        return None
    return {key: flow[key] for key in ("state", "verifier", "next")}
