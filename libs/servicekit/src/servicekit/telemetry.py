"""OpenTelemetry traces across HTTP and the bus, exported with OTLP when an endpoint is configured.

The trace context already travels with every request (`traceparent` header) and every event (the envelope's
`traceparent`, stamped by the unit of work); with a tracer installed, each request and each handled event also
becomes a span with exactly those ids, so one trace follows a command through every service it reaches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from eventbus import tracing

log = logging.getLogger(__name__)
_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


def configure_tracing(
    service: str, endpoint: str | None, *, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Record spans and export them (OTLP over HTTP to `endpoint`, or to `exporter`); once per process.

    Without an endpoint or exporter nothing is recorded and only the ids propagate. In the embedded run all
    services share the process, so the first one to configure names the resource; spans carry their service.
    """
    global _provider
    if _provider is not None or (endpoint is None and exporter is None):
        return _provider
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        assert endpoint is not None
        processor: BatchSpanProcessor | SimpleSpanProcessor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
        )
    else:
        processor = SimpleSpanProcessor(exporter)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(processor)
    tracing.install_span_recorder(_recorder(provider.get_tracer("cityblocks")))
    _provider = provider
    log.info("tracing: spans of %s are exported", service)
    return provider


def shutdown_tracing() -> None:
    """Flush and stop recording (tests, and a process that ends)."""
    global _provider
    tracing.install_span_recorder(None)
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def _recorder(tracer: Tracer) -> tracing.SpanRecorder:
    @contextmanager
    def record(parent: str | None, name: str) -> Iterator[str]:
        context = _propagator.extract({"traceparent": parent}) if parent else Context()
        with tracer.start_as_current_span(name, context=context) as span:
            own = span.get_span_context()
            yield f"00-{own.trace_id:032x}-{own.span_id:016x}-{int(own.trace_flags):02x}"

    return record
