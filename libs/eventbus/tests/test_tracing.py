"""W3C trace context helpers."""

from __future__ import annotations

from eventbus import tracing

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_child_span_keeps_the_trace_and_gets_a_new_span_id() -> None:
    child = tracing.child_of(PARENT)

    assert tracing.is_valid(child)
    assert tracing.trace_id_of(child) == tracing.trace_id_of(PARENT)
    assert child != PARENT
    assert child.endswith("-01")


def test_a_missing_or_malformed_parent_starts_a_new_trace() -> None:
    for parent in (None, "garbage", "00-00000000000000000000000000000000-b7ad6b7169203331-01"):
        child = tracing.child_of(parent)
        assert tracing.is_valid(child)


def test_the_current_traceparent_is_set_only_inside_a_traced_block() -> None:
    assert tracing.current_traceparent() is None

    with tracing.traced(PARENT) as inner:
        assert tracing.current_traceparent() == inner
        assert tracing.trace_id_of(inner) == tracing.trace_id_of(PARENT)

    assert tracing.current_traceparent() is None
