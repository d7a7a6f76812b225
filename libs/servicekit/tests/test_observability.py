"""Structured logs carry the request id, the trace id and the service of the current context."""

from __future__ import annotations

import json
import logging
import sys

from eventbus import tracing
from servicekit.observability import JsonFormatter, request_id_var, service_var


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("market.handlers", logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_log_line_is_json_with_request_and_trace_ids() -> None:
    traceparent = tracing.new_traceparent()
    tokens = (request_id_var.set("req-1"), service_var.set("market"), tracing.set_traceparent(traceparent))
    try:
        line = JsonFormatter().format(record("stalls allocated", market_day_id="md-1"))
    finally:
        tracing.reset_traceparent(tokens[2])
        service_var.reset(tokens[1])
        request_id_var.reset(tokens[0])

    entry = json.loads(line)
    assert entry["message"] == "stalls allocated"
    assert entry["level"] == "INFO"
    assert entry["request_id"] == "req-1"
    assert entry["service"] == "market"
    assert entry["trace_id"] == tracing.trace_id_of(traceparent)
    assert entry["market_day_id"] == "md-1"


def test_an_exception_is_logged_as_one_json_line() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())

    entry = json.loads(JsonFormatter().format(failed))

    assert "ValueError: bad" in entry["exception"]
    assert "request_id" not in entry
