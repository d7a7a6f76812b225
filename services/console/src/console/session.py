"""Who uses the console: the identity provider's token in an HttpOnly cookie, verified on every request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response

from servicekit.auth import InvalidToken, KeyUnavailable, Principal, TokenVerifier
from servicekit.devidp import TENANTS
from servicekit.problems import Problem

COOKIE = "cityblocks_session"
LANGUAGE_COOKIE = "cityblocks_lang"


@dataclass(frozen=True)
class User:
    """The logged-in person: the verified principal and the token passed on to the services."""

    principal: Principal
    token: str

    @property
    def name(self) -> str:
        return self.principal.name or self.principal.subject

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    @property
    def city(self) -> str:
        return TENANTS.get(self.principal.tenant, self.principal.tenant)

    @property
    def roles(self) -> frozenset[str]:
        return self.principal.roles

    @property
    def username(self) -> str | None:
        return self.principal.claim("preferred_username")

    def has_role(self, *roles: str) -> bool:
        return self.principal.has_role(*roles)


def base_path(request: Request) -> str:
    """Where the console is mounted (`/console` embedded, empty when it runs on its own)."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


async def optional_user(request: Request) -> User | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = await verifier.verify(token)
    except (InvalidToken, KeyUnavailable):
        return None
    return User(principal, token)


async def required_user(user: Annotated[User | None, Depends(optional_user)], request: Request) -> User:
    """The logged-in user, else a redirect to the login page that comes back here afterwards."""
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise Problem(
            303,
            "log in first",
            headers={"Location": f"{base_path(request)}/login?next={quote(target, safe='')}"},
        )
    return user


def requires(*roles: str) -> Any:
    """Dependency: a logged-in user holding one of `roles`, else 403."""

    async def dependency(user: Annotated[User, Depends(required_user)]) -> User:
        if not user.has_role(*roles):
            raise Problem(403, f"this page needs one of the roles: {', '.join(sorted(roles))}")
        return user

    return Depends(dependency)


def start_session(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        path=base_path(request) or "/",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",
    )


def end_session(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path=base_path(request) or "/")


def safe_next(request: Request, target: str | None) -> str:
    """Only paths inside the console are followed after login, never another site."""
    base = base_path(request)
    # Browsers read `//host` and `/\\host` as another site; a backslash has no place in our paths anyway.
    if target and target.startswith(f"{base}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{base}/"


CurrentUser = Annotated[User, Depends(required_user)]
MaybeUser = Annotated[User | None, Depends(optional_user)]
