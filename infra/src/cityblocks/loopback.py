"""A lean HTTP/1.1 client for load tests on 127.0.0.1: keep-alive connections in a pool, little CPU."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any


async def wait_ready(port: int, alive: Callable[[], bool]) -> None:
    """Until the server on `port` answers `/ready` with 200 within a minute; fails once `alive()` is false."""
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        if not alive():
            raise RuntimeError("the server exited during start-up")
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
            connection = await Connection.open(port)
            status, _ = await connection.request("GET", "/ready")
            connection.close()
            if status == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become ready")


def quiet_collector() -> None:
    """Keep the load generator's garbage collection from pausing it while it measures.

    A full collection of a client holding many requests' objects stops it for up to 100 ms here, which the
    latencies it measures would wrongly include. What exists now is frozen out of later collections and young
    collections run every 20,000 net new containers, as in the services (servicekit's `freeze_startup_heap`).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 10)


class DiskProbe:
    """How long the disk takes to make a small write durable (fdatasync), sampled in a thread during a phase.

    A durable commit waits for one; when the disk stalls, every commit in flight waits with it, whatever the
    service does. Reported next to a latency measured at the same time, it tells a slow service from a slow
    disk.
    """

    def __init__(self, directory: str | None = None, interval_s: float = 0.02) -> None:
        self.directory = directory or tempfile.gettempdir()
        self.interval_s = interval_s
        self.latencies: list[float] = []
        self.started: list[float] = []  # each sample's start (time.perf_counter), in step with `latencies`
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="disk-probe", daemon=True)

    def __enter__(self) -> DiskProbe:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        block = b"\0" * 8192
        with tempfile.NamedTemporaryFile(dir=self.directory, prefix="disk-probe-") as file:
            while not self._stop.wait(self.interval_s):
                started = time.perf_counter()
                os.pwrite(file.fileno(), block, 0)
                os.fdatasync(file.fileno())
                self.latencies.append(time.perf_counter() - started)
                self.started.append(started)

    def figures(self, since: float = float("-inf"), until: float = float("inf")) -> dict[str, Any]:
        """Figures of the samples started in [since, until) (time.perf_counter), by default all of them."""
        pairs = zip(self.started, self.latencies, strict=False)
        ordered = sorted(latency for started, latency in pairs if since <= started < until)
        if not ordered:
            return {"fsyncs": 0}

        def at(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

        return {
            "fsyncs": len(ordered),
            "fsync_p50_ms": at(0.5),
            "fsync_p99_ms": at(0.99),
            "fsync_max_ms": round(ordered[-1] * 1000, 2),
            "fsyncs_over_50_ms": sum(1 for latency in ordered if latency > 0.05),
        }


def percentile(values: list[float], q: float) -> float:
    """The value below which a fraction `q` of `values` lies (nearest rank); NaN when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def milliseconds(seconds: float) -> float | str:
    """Rounded milliseconds; an abandoned request's latency is only known to exceed the wait."""
    return round(seconds * 1000, 1) if math.isfinite(seconds) else "abandoned (above the grace period)"


@dataclass
class OpenLoop:
    """What an open loop measured: each request's scheduled start and latency (infinite when abandoned)."""

    scheduled: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    abandoned: int = 0

    def at(self, q: float) -> float | str:
        return milliseconds(percentile(self.latencies, q))

    def windows(self, seconds: float, disk: DiskProbe | None = None) -> list[dict[str, Any]]:
        """p50 and p99 of the requests scheduled in each window of `seconds`, with the disk's figures then.

        A tail made in one window (a disk stall, a pause) shows as one bad window among good ones; a slow
        service shows in every window.
        """
        if not self.scheduled:
            return []
        first = min(self.scheduled)
        buckets: dict[int, list[float]] = {}
        for scheduled, latency in zip(self.scheduled, self.latencies, strict=True):
            buckets.setdefault(int((scheduled - first) // seconds), []).append(latency)
        result = []
        for index, latencies in sorted(buckets.items()):
            since = first + index * seconds
            figures: dict[str, Any] = {
                "from_s": round(index * seconds, 1),
                "requests": len(latencies),
                "p50_ms": milliseconds(percentile(latencies, 0.5)),
                "p99_ms": milliseconds(percentile(latencies, 0.99)),
            }
            if disk is not None:
                disk_figures = disk.figures(since, since + seconds)
                figures["fsync_max_ms"] = disk_figures.get("fsync_max_ms")
            result.append(figures)
        return result


async def open_loop(
    rate: float, seconds: float, work: Callable[[], Awaitable[bool]], grace: float | None = None
) -> OpenLoop:
    """Start requests on a fixed schedule whatever the server does; latency from each scheduled start.

    Counting from the schedule, not from the send, a stalled server cannot hide its queue (no coordinated
    omission). Requests still unanswered `grace` seconds after the last start are abandoned: they count as
    failed and their latency as infinite, and their outcome is in doubt (the server may still commit them).
    """
    result = OpenLoop()
    start = time.perf_counter()

    async def one(scheduled: float) -> None:
        ok = False
        try:
            ok = await work()
        finally:
            if not ok:
                result.failures += 1
            result.scheduled.append(scheduled)
            result.latencies.append(math.inf if _cancelled() else time.perf_counter() - scheduled)

    tasks = []
    for index in range(int(rate * seconds)):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    result.abandoned = len(pending)
    return result


def _cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def postgres_cpu_s(database_url: str) -> float | None:
    """CPU seconds so far of the PostgreSQL backends serving this database (a local server), else None."""
    name = f" {database_url.rsplit('/', 1)[-1]} "
    backends = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if command.startswith("postgres:") and name in command:
                backends.append(int(pid))
    return process_cpu_s(backends) if backends else None


def process_cpu_s(pids: list[int]) -> float:
    """CPU seconds so far of these processes (user and system, from /proc; ended ones count nothing)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class Connection:
    """A minimal HTTP/1.1 keep-alive client: far less CPU than a full client, which shares our 2 cores."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


class Pool:
    def __init__(self, connections: list[Connection]) -> None:
        self.free: asyncio.Queue[Connection] = asyncio.Queue()
        for connection in connections:
            self.free.put_nowait(connection)
        self.all = connections

    @classmethod
    async def open(cls, ports: list[int], size: int) -> Pool:
        return cls([await Connection.open(ports[i % len(ports)]) for i in range(size)])

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        connection = await self.free.get()
        try:
            return await connection.request(method, path, headers, body)
        finally:
            self.free.put_nowait(connection)

    def close(self) -> None:
        for connection in self.all:
            connection.close()
