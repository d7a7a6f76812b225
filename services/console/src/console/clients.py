"""HTTP calls from the console to the services, each with a timeout and the user's token passed on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request

from console.session import COOKIE, base_path


class ServiceProblem(Exception):
    """A service could not be reached or refused the request; `detail` is safe to show."""

    def __init__(self, service: str, status: int | None, detail: str) -> None:
        super().__init__(f"{service}: {detail}")
        self.service = service
        self.status = status
        self.detail = detail

    @property
    def missing(self) -> bool:
        """The service (or this route of it) does not exist yet."""
        return self.status in (404, 405) or self.status is None


class Services:
    """The services as the console sees them: `<base>/<name>` unless a URL is configured for the name."""

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, urls: Mapping[str, str], token: str | None
    ) -> None:
        self._client = client
        self.base_url = base_url.rstrip("/")
        self._urls = urls
        self._token = token

    def url(self, service: str) -> str:
        return self._urls.get(service, f"{self.base_url}/{service}").rstrip("/")

    async def request(
        self,
        method: str,
        service: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        headers = {"Accept": "application/json", **(headers or {})}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            return await self._client.request(
                method, f"{self.url(service)}{path}", json=json, params=params, headers=headers
            )
        except httpx.HTTPError as exc:
            raise ServiceProblem(service, None, f"no answer ({type(exc).__name__})") from None

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The JSON answer of a successful call, else ServiceProblem with the problem's detail."""
        response = await self.request(method, service, path, json=json, params=params, headers=headers)
        if response.status_code >= 400:
            raise ServiceProblem(service, response.status_code, problem_detail(response))
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    async def get(self, service: str, path: str, **params: Any) -> Any:
        return await self.call("GET", service, path, params=params or None)

    async def post(
        self, service: str, path: str, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        return await self.call("POST", service, path, json=json, headers=headers)

    async def raw_get(self, url: str) -> httpx.Response:
        """GET an absolute URL without the token (`/services` of the platform, its identity provider)."""
        try:
            return await self._client.get(url)
        except httpx.HTTPError as exc:
            raise ServiceProblem(url, None, f"no answer ({type(exc).__name__})") from None

    async def raw_post_form(self, url: str, form: Mapping[str, str]) -> httpx.Response:
        try:
            return await self._client.post(url, data=dict(form))
        except httpx.HTTPError as exc:
            raise ServiceProblem(url, None, f"no answer ({type(exc).__name__})") from None


def problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title")
        if isinstance(detail, str):
            return detail
        if detail is not None:
            return str(detail)
    return f"HTTP {response.status_code}"


def platform_url(request: Request) -> str:
    """The configured base URL, else this request's own origin and the path the console is mounted under."""
    configured: str | None = getattr(request.app.state.settings, "services_url", None)
    if configured:
        return configured.rstrip("/")
    origin = f"{request.url.scheme}://{request.url.netloc}"
    mount = base_path(request)
    parent = mount.rsplit("/", 1)[0] if mount else ""
    return f"{origin}{parent}"


async def services_for(request: Request) -> AsyncIterator[Services]:
    settings = request.app.state.settings
    transport: httpx.AsyncBaseTransport | None = getattr(request.app.state, "service_transport", None)
    timeout = httpx.Timeout(settings.service_timeout_s, connect=settings.service_connect_timeout_s)
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        yield Services(client, platform_url(request), settings.service_urls, request.cookies.get(COOKIE))


ServicesClient = Annotated[Services, Depends(services_for)]
