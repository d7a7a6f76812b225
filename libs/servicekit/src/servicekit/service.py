"""What a service declares about itself (`ServiceSpec`) and what it gets at run time (`ServiceContext`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts.base import Event
from contracts.envelope import Envelope
from contracts.platform import AdminActionRecorded
from eventbus import Bus, Consumer, OutboxRelay, UnitOfWork, UnitOfWorkFactory
from eventbus.unit_of_work import CommitHook
from servicekit.problems import Problem
from servicekit.settings import ServiceSettings


@dataclass
class ServiceContext:
    """The running service's resources, built in the app's lifespan and kept on `app.state.context`."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    uow_factory: UnitOfWorkFactory
    bus: Bus
    relay: OutboxRelay
    consumer: Consumer
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run `work` for as long as the service runs (a periodic sweep); it is cancelled at shutdown."""
        task = asyncio.create_task(work, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    async def stop_background(self) -> None:
        for task in list(self.background):
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)


StartupHook = Callable[[ServiceContext], Awaitable[None]]
# The event parameter is Any so that a handler can name its concrete event class (`market.StallsAllocated`).
EventHandler = Callable[[UnitOfWork, Any, Envelope], Awaitable[None]]


@dataclass(frozen=True)
class ServiceSpec:
    """All `create_service_app` needs to know about a service; each service module exposes one as SPEC."""

    name: str
    title: str
    metadata: MetaData
    routers: Sequence[APIRouter] = ()
    subscriptions: Mapping[type[Event], EventHandler] = field(default_factory=dict)
    error_statuses: Mapping[type[Exception], int] = field(default_factory=dict)
    startup: Sequence[StartupHook] = ()
    settings_type: type[ServiceSettings] = ServiceSettings
    migrations: Path | None = None
    description: str = ""
    version: str = "0.1.0"


# These dependencies are `async def` although they never await: FastAPI runs a plain `def` dependency in a
# worker thread, a thread hop on every request that costs more than the dependency itself.
async def get_context(request: Request) -> ServiceContext:
    return context_of(request)


def context_of(request: Request) -> ServiceContext:
    context: ServiceContext | None = getattr(request.app.state, "context", None)
    if context is None:
        raise Problem(503, "the service is starting")
    return context


async def get_uow_factory(request: Request) -> UnitOfWorkFactory:
    factory = context_of(request).uow_factory
    if request.method in AUDITED_METHODS:
        return AuditingUnitOfWorkFactory(factory, request)
    return factory


AUDITED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ADMIN_ROLES = frozenset({"city_admin", "market_master"})


class AuditingUnitOfWorkFactory(UnitOfWorkFactory):
    """The service's factory for one changing request: an admin's work records who did it, atomically.

    Each unit of work opened for the request by a city admin or market master carries an
    `AdminActionRecorded` event in its outbox, so the audit trail commits (or rolls back) with the change.
    """

    def __init__(self, inner: UnitOfWorkFactory, request: Request) -> None:
        self.inner = inner
        self.request = request
        self.sessionmaker = inner.sessionmaker
        self.source = inner.source

    def add_commit_hook(self, hook: CommitHook) -> None:
        self.inner.add_commit_hook(hook)

    def __call__(self) -> UnitOfWork:
        uow = self.inner()
        principal = getattr(self.request.state, "principal", None)
        if principal is not None and not principal.roles.isdisjoint(ADMIN_ROLES):
            uow.emit(self._record(principal), tenant=principal.tenant, subject=principal.subject)
        return uow

    def _record(self, principal: Any) -> AdminActionRecorded:
        route = self.request.scope.get("route")
        context = context_of(self.request)
        return AdminActionRecorded(
            service=context.settings.service_name,
            actor=principal.subject,
            actor_name=principal.name,
            roles=sorted(principal.roles),
            method=self.request.method,
            route=getattr(route, "path", self.request.url.path),
            path=self.request.url.path,
            request_id=self.request.headers.get("x-request-id"),
            recorded_at=datetime.now(UTC),
        )


async def get_settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


Context = Annotated[ServiceContext, Depends(get_context)]
UowFactory = Annotated[UnitOfWorkFactory, Depends(get_uow_factory)]
CurrentSettings = Annotated[ServiceSettings, Depends(get_settings)]
