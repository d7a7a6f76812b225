"""What a service declares about itself (`ServiceSpec`) and what it gets at run time (`ServiceContext`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts.base import Event
from contracts.envelope import Envelope
from eventbus import Bus, Consumer, OutboxRelay, UnitOfWork, UnitOfWorkFactory
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


def get_context(request: Request) -> ServiceContext:
    context: ServiceContext | None = getattr(request.app.state, "context", None)
    if context is None:
        raise Problem(503, "the service is starting")
    return context


def get_uow_factory(request: Request) -> UnitOfWorkFactory:
    return get_context(request).uow_factory


def get_settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


Context = Annotated[ServiceContext, Depends(get_context)]
UowFactory = Annotated[UnitOfWorkFactory, Depends(get_uow_factory)]
CurrentSettings = Annotated[ServiceSettings, Depends(get_settings)]
