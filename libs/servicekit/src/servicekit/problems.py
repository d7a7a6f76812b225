"""Every error as RFC 9457 problem details (`application/problem+json`), validation and domain errors too."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger(__name__)


class Problem(Exception):
    """Raise anywhere in a request to answer with this problem; extra keywords become extension members."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        type: str = "about:blank",
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title or _phrase(status))
        self.status = status
        self.detail = detail
        self.title = title or _phrase(status)
        self.type = type
        self.headers = dict(headers or {})
        self.extensions = extensions


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type: str = "about:blank",
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type, "title": title or _phrase(status), "status": status}
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    body.update(jsonable_encoder(extensions))
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def problem_type(error: type[Exception]) -> str:
    """A stable type URI for a domain error from its class name (`StallTaken` → `...:stall-taken`)."""
    kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", error.__name__).lower()
    return f"urn:cityblocks:problem:{kebab}"


def _title_of(error: type[Exception]) -> str:
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", error.__name__).lower()
    return words[:1].upper() + words[1:]


def install_problem_handlers(
    app: FastAPI, error_statuses: Mapping[type[Exception], int] | None = None
) -> None:
    """Make HTTP errors, validation errors and the service's domain errors answer as problems."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    for error, status in (error_statuses or {}).items():
        app.add_exception_handler(error, _domain_handler(status))
    app.add_exception_handler(Exception, _on_unhandled)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status,
        title=exc.title,
        detail=exc.detail,
        type=exc.type,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extensions,
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != _phrase(exc.status_code) else None
    return problem_response(exc.status_code, detail=detail, instance=request.url.path, headers=exc.headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type", "")}
        for error in exc.errors()
    ]
    fields = ", ".join(".".join(str(part) for part in error["loc"]) for error in errors)
    return problem_response(
        422,
        title="Invalid request",
        detail=f"invalid fields: {fields}" if fields else "the request is invalid",
        instance=request.url.path,
        errors=errors,
    )


def _domain_handler(status: int) -> Any:
    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(
            status,
            title=_title_of(type(exc)),
            detail=str(exc) or None,
            type=problem_type(type(exc)),
            instance=request.url.path,
        )

    return on_domain_error


async def _on_unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return internal_error_response(request.url.path)


def internal_error_response(instance: str | None = None) -> JSONResponse:
    # Never the exception text: it can carry SQL, paths or personal data.
    return problem_response(500, detail="an unexpected error occurred; it has been logged", instance=instance)
