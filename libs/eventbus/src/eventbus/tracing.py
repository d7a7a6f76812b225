"""W3C trace context (traceparent) helpers and the contextvar that carries the current one."""

from __future__ import annotations

import contextvars
import random
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent", default=None)


# Ids only need to be unique, not secret: the process-seeded PRNG saves a getrandom() call per event (as
# OpenTelemetry's own generator does). Zero is invalid in W3C trace context, hence the `or 1`.
def new_trace_id() -> str:
    return f"{random.getrandbits(128) or 1:032x}"


def new_span_id() -> str:
    return f"{random.getrandbits(64) or 1:016x}"


def is_valid(traceparent: str | None) -> bool:
    if traceparent is None:
        return False
    match = _TRACEPARENT.match(traceparent)
    return match is not None and set(match.group(1)) != {"0"} and set(match.group(2)) != {"0"}


def new_traceparent() -> str:
    """A traceparent that starts a new, sampled trace."""
    return f"00-{new_trace_id()}-{new_span_id()}-01"


def child_of(traceparent: str | None) -> str:
    """A traceparent for a new span in the same trace (a new trace when the parent is missing or invalid)."""
    if traceparent is None or not is_valid(traceparent):
        return new_traceparent()
    _, trace_id, _, flags = traceparent.split("-")
    return f"00-{trace_id}-{new_span_id()}-{flags}"


def trace_id_of(traceparent: str) -> str:
    return traceparent.split("-")[1]


def current_traceparent() -> str | None:
    return _current.get()


def set_traceparent(traceparent: str | None) -> contextvars.Token[str | None]:
    return _current.set(traceparent)


def reset_traceparent(token: contextvars.Token[str | None]) -> None:
    _current.reset(token)


# Records spans somewhere (OpenTelemetry, when a service configures an exporter): given the parent traceparent
# and a span name, it opens a span and yields that span's own traceparent.
SpanRecorder = Callable[[str | None, str], AbstractContextManager[str]]
_recorder: SpanRecorder | None = None


def install_span_recorder(recorder: SpanRecorder | None) -> None:
    """Record every traced block as a span (None: only propagate ids, the default)."""
    global _recorder
    _recorder = recorder


@contextmanager
def traced(parent: str | None, name: str = "span") -> Iterator[str]:
    """Run a block in a child span of `parent` (a request's or an event's traceparent)."""
    if _recorder is None:
        token = _current.set(child_of(parent))
        try:
            yield _current.get() or ""
        finally:
            _current.reset(token)
        return
    with _recorder(parent if is_valid(parent) else None, name) as own:
        token = _current.set(own)
        try:
            yield own
        finally:
            _current.reset(token)
