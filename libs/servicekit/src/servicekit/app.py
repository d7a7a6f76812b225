"""The one app factory of every service: database, bus, outbox relay, consumer, auth, errors, operations."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from eventbus import Bus, Consumer, InProcessBus, KafkaBus, OutboxRelay, UnitOfWorkFactory
from eventbus.tables import metadata as eventbus_metadata
from servicekit.auth import build_verifier
from servicekit.db import create_all, create_engine, create_sessionmaker, is_sqlite
from servicekit.migrations import upgrade_head
from servicekit.observability import ObservabilityMiddleware, configure_logging
from servicekit.operations import dead_letters_router, operations_router
from servicekit.problems import install_problem_handlers
from servicekit.ratelimit import RateLimitMiddleware
from servicekit.service import ServiceContext, ServiceSpec
from servicekit.settings import ServiceSettings
from servicekit.telemetry import configure_tracing


def create_service_app(
    spec: ServiceSpec, settings: ServiceSettings | None = None, *, bus: Bus | None = None
) -> FastAPI:
    """Build a service's FastAPI app; resources start in its lifespan.

    Pass `bus` to share one (embedded mode): the app then subscribes to it but neither starts nor stops it;
    the owner starts it only after every app's lifespan has begun (subscriptions come before start).
    """
    settings = settings or spec.settings_type(service_name=spec.name)
    configure_logging(settings.log_level, json_logs=settings.log_json)
    configure_tracing(spec.name, settings.otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    app = FastAPI(
        title=spec.title,
        version=spec.version,
        description=spec.description,
        lifespan=_lifespan(spec, settings, bus),
    )
    app.state.spec = spec
    app.state.settings = settings
    app.state.context = None
    app.state.token_verifier = build_verifier(settings)
    install_problem_handlers(app, spec.error_statuses)
    per_minute = settings.rate_limit_public_per_minute
    app.add_middleware(RateLimitMiddleware, prefixes=["/v1/public/"], per_minute=per_minute)
    app.add_middleware(ObservabilityMiddleware, service=spec.name)
    app.include_router(operations_router(spec.name))
    app.include_router(dead_letters_router())
    for router in spec.routers:
        app.include_router(router)
    _document_local_times(app)
    return app


def _document_local_times(app: FastAPI) -> None:
    """Name wall-clock times `partial-time` in the OpenAPI document.

    Pydantic documents `datetime.time` as JSON Schema `format: time`, which RFC 3339 defines with an offset;
    our times of day (opening hours, release times) are local and carry none, so validators would reject every
    correct answer. `partial-time` is RFC 3339's name for exactly that.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()  # FastAPI caches this very dict as app.openapi_schema
        _rename_time_format(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _rename_time_format(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("format") == "time" and node.get("type") == "string":
            node["format"] = "partial-time"
        for value in node.values():
            _rename_time_format(value)
    elif isinstance(node, list):
        for value in node:
            _rename_time_format(value)


def freeze_startup_heap() -> None:
    """Keep what start-up made out of every later garbage collection; once per process.

    Modules, routes, schemas and caches live as long as the process, and a full collection walks all of
    them: with a service loaded, a stop of 30 to 400 ms that lands on whichever requests are in flight.
    Frozen after one last collection (so no garbage is kept), they are never walked again.
    """
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()
        # A young collection every 20,000 net new containers instead of 700: a request makes hundreds,
        # most freed by reference counting before the count is reached. Measured on the trip-payment
        # benchmark's server: collections took 2.3 s of a 40 s run (gen-1 stops over 5 ms 63 times, 15 full
        # ones of 30-120 ms); with these thresholds 0.2 s (12 young, one full). The garbage held in between
        # stays bounded by the threshold.
        gc.set_threshold(20_000, 20, 10)


def build_bus(settings: ServiceSettings, client_id: str) -> Bus:
    if settings.bus == "kafka":
        return KafkaBus(
            settings.kafka_bootstrap,
            client_id=client_id,
            partitions=settings.kafka_partitions,
            topic_prefix=settings.kafka_topic_prefix,
        )
    return InProcessBus()


def _lifespan(
    spec: ServiceSpec, settings: ServiceSettings, shared_bus: Bus | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            context = await start_service(spec, settings, shared_bus, stack)
            app.state.context = context
            app.state.uow_factory = context.uow_factory
            app.state.bus = context.bus
            stack.callback(setattr, app.state, "context", None)
            # Background work stops first, while the database and the bus it may use are still there.
            stack.push_async_callback(context.stop_background)
            for hook in spec.startup:
                await hook(context)
            freeze_startup_heap()
            yield

    return lifespan


async def start_service(
    spec: ServiceSpec, settings: ServiceSettings, shared_bus: Bus | None, stack: AsyncExitStack
) -> ServiceContext:
    """Start the service's resources; `stack` stops them in reverse order (relay, then bus, then database)."""
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        busy_timeout_ms=settings.db_busy_timeout_ms,
    )
    stack.push_async_callback(engine.dispose)
    if settings.migrate_on_start and spec.migrations is not None:
        await upgrade_head(spec.migrations, settings.database_url)
    elif settings.create_tables:
        await create_all(engine, eventbus_metadata, spec.metadata)
    sessionmaker = create_sessionmaker(engine)
    bus = shared_bus or build_bus(settings, client_id=spec.name)
    relay = OutboxRelay(sessionmaker, bus, batch_size=settings.relay_batch_size)
    uow_factory = UnitOfWorkFactory(
        sessionmaker, source=f"/cityblocks/{spec.name}", on_commit=relay.notify, on_written=relay.remember
    )
    consumer = Consumer(
        spec.name,
        uow_factory,
        bus,
        spec.subscriptions,
        max_attempts=settings.consumer_max_attempts,
        backoff=settings.consumer_backoff_s,
        concurrency=1 if is_sqlite(settings.database_url) else settings.consumer_concurrency,
    )
    if shared_bus is None:
        await bus.start()
        stack.push_async_callback(bus.stop)
    await relay.start()
    stack.push_async_callback(relay.stop)
    return ServiceContext(settings, engine, sessionmaker, uow_factory, bus, relay, consumer)
