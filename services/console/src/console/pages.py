"""Routes every visitor needs: login through the identity provider, logout, language, home, static files."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from console import oidc
from console.clients import ServiceProblem, Services, ServicesClient, platform_url, problem_detail
from console.i18n import LANGUAGES, translator
from console.session import (
    LANGUAGE_COOKIE,
    MaybeUser,
    base_path,
    end_session,
    safe_next,
    start_session,
)
from console.web import language_of, leaflet_file, navigation, render, static_file
from servicekit.problems import Problem

router = APIRouter(include_in_schema=False)
YEAR_S = 365 * 24 * 3600


@router.get("/")
async def home(request: Request, user: MaybeUser) -> Response:
    return render(request, "home.html", user, items=navigation(user))


@router.get("/login")
async def login_page(request: Request, user: MaybeUser, services: ServicesClient, next: str = "") -> Response:
    if request.app.state.settings.oidc_issuer:
        return await oidc.start_login(request, services, next)
    users, error = await _demo_users(services, request)
    return render(request, "login.html", user, users=users, next=next, error=error)


@router.post("/login")
async def login(
    request: Request,
    services: ServicesClient,
    username: Annotated[str, Form(max_length=100)],
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    if request.app.state.settings.oidc_issuer:
        raise Problem(404, "demo logins are off: this console logs in through the city's identity provider")
    try:
        response = await services.raw_post_form(auth_url(request) + "/token", {"username": username})
    except ServiceProblem as exc:
        return await _login_failed(request, services, next, exc.detail)
    if response.status_code != 200:
        return await _login_failed(request, services, next, problem_detail(response))
    body = response.json()
    redirect = RedirectResponse(safe_next(request, next), status_code=303)
    start_session(redirect, request, body["access_token"], int(body.get("expires_in", 3600)))
    return redirect


async def _login_failed(request: Request, services: Services, next: str, detail: str) -> Response:
    users, _ = await _demo_users(services, request)
    error = translator(language_of(request))("login_failed", detail=detail)
    return render(request, "login.html", None, users=users, next=next, error=error, status=400)


@router.post("/logout")
async def logout(request: Request) -> Response:
    redirect = RedirectResponse(f"{base_path(request)}/", status_code=303)
    end_session(redirect, request)
    return redirect


@router.get("/language/{code}")
async def language(request: Request, code: str, next: str = "") -> Response:
    if code not in LANGUAGES:
        raise Problem(404, "unknown language")
    redirect = RedirectResponse(safe_next(request, next), status_code=303)
    redirect.set_cookie(
        LANGUAGE_COOKIE, code, max_age=YEAR_S, path=base_path(request) or "/", samesite="lax", httponly=True
    )
    return redirect


@router.get("/static/leaflet/{name:path}")
async def leaflet(name: str) -> Response:
    path = leaflet_file(name)
    if path is None:
        raise Problem(404, "no such file")
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/static/{name:path}")
async def static(name: str) -> Response:
    path = static_file(name)
    if path is None:
        raise Problem(404, "no such file")
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


def auth_url(request: Request) -> str:
    configured: str | None = request.app.state.settings.auth_url
    return (configured or f"{platform_url(request)}/auth").rstrip("/")


async def _demo_users(services: Services, request: Request) -> tuple[list[dict[str, Any]], str | None]:
    try:
        response = await services.raw_get(auth_url(request) + "/users")
    except ServiceProblem as exc:
        return [], exc.detail
    if response.status_code != 200:
        return [], f"HTTP {response.status_code}"
    users: list[dict[str, Any]] = response.json()
    return users, None
