"""Planning in a child process, so that the search never holds the service's interpreter lock."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

from logistics.domain import Plan, PlanningRequest, ReplanRequest
from logistics.routing import Matrix
from logistics.solver.planning import PlanningSettings, plan
from logistics.solver.search import Progress, ProgressCallback

_channel: dict[str, Any] = {}


def _attach(progress: Any, cancel: ProcessEvent) -> None:
    """Pool initializer: the queue and event reach the child by inheritance (they cannot be pickled later).

    Progress is advisory: the child may exit without flushing what the parent no longer reads. Otherwise a
    child whose last updates do not fit the pipe waits for a reader at exit, and the pool's shutdown waits
    for it forever.
    """
    progress.cancel_join_thread()
    _channel["progress"] = progress
    _channel["cancel"] = cancel


def _plan_here(
    request: PlanningRequest,
    matrices: Mapping[str, Matrix],
    settings: PlanningSettings,
    replan: ReplanRequest | None,
) -> Plan:
    progress, cancel = _channel["progress"], _channel["cancel"]
    return plan(request, matrices, settings, replan=replan, on_progress=progress.put, cancel=cancel)


async def plan_in_process(
    request: PlanningRequest,
    matrices: Mapping[str, Matrix],
    settings: PlanningSettings | None = None,
    *,
    replan: ReplanRequest | None = None,
    on_progress: ProgressCallback | None = None,
) -> Plan:
    """`plan` in a spawned process; progress comes back through a queue, cancelling stops the search."""
    context = multiprocessing.get_context("spawn")
    progress: Any = context.Queue()
    cancel = context.Event()
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1, mp_context=context, initializer=_attach, initargs=(progress, cancel)) as pool:
        future = loop.run_in_executor(
            pool, _plan_here, request, matrices, settings or PlanningSettings(), replan
        )
        relay = asyncio.create_task(_relay(progress, on_progress))
        try:
            return await future
        except asyncio.CancelledError:
            cancel.set()
            raise
        finally:
            relay.cancel()
            _drain(progress, on_progress)


async def _relay(progress: Any, on_progress: ProgressCallback | None) -> None:
    while True:
        _drain(progress, on_progress)
        await asyncio.sleep(0.1)


def _drain(progress: Any, on_progress: ProgressCallback | None) -> None:
    while True:
        try:
            update: Progress = progress.get_nowait()
        except queue.Empty:
            return
        if on_progress is not None:
            on_progress(update)
