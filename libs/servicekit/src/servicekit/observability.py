"""Request ids, trace context from `traceparent`, JSON logs and Prometheus metrics for every service."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventbus import tracing
from servicekit.problems import internal_error_response

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
service_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("service", default=None)

log = logging.getLogger(__name__)

# LogRecord attributes that are not user-supplied `extra` fields.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id, trace id and service of the current context."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        service = service_var.get()
        if service:
            entry["service"] = service
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        traceparent = tracing.current_traceparent()
        if traceparent:
            entry["trace_id"] = tracing.trace_id_of(traceparent)
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    """Send the root logger to stderr as JSON lines; idempotent, so services in one process share it."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in root.handlers:
        if getattr(handler, "_servicekit", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    handler._servicekit = True  # type: ignore[attr-defined]
    root.addHandler(handler)


@dataclass(frozen=True)
class HttpMetrics:
    requests: Counter
    latency: Histogram


@cache
def http_metrics() -> HttpMetrics:
    """The HTTP metrics, registered once per process (every service app in the process shares them)."""
    labels = ("service", "method", "route", "status")
    return HttpMetrics(
        requests=Counter("http_requests_total", "HTTP requests handled", labels),
        latency=Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ("service", "method", "route"),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        ),
    )


def metrics_response() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _route_template(scope: Scope) -> str:
    # The router stores the matched route in the scope; unmatched paths share one label to bound cardinality.
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


class ObservabilityMiddleware:
    """Pure ASGI middleware: request id in and out, trace context, metrics, last-resort 500 problem."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        tokens = (request_id_var.set(request_id), service_var.set(self.service))
        name = f"{self.service} {scope.get('method', 'GET')} {scope.get('path', '')}"
        try:
            with tracing.traced(_header(scope, b"traceparent"), name):
                await self._handle(scope, receive, send, request_id)
        finally:
            service_var.reset(tokens[1])
            request_id_var.reset(tokens[0])

    async def _handle(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if response_started:
                raise
            await internal_error_response(scope.get("path"))(scope, receive, send_with_request_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        metrics = http_metrics()
        method = str(scope.get("method", ""))
        route = _route_template(scope)
        metrics.requests.labels(self.service, method, route, str(status)).inc()
        metrics.latency.labels(self.service, method, route).observe(elapsed)
        log.debug("%s %s %s", method, scope.get("path"), status, extra={"status": status, "route": route})
