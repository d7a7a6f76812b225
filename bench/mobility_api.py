"""Trip-payment API benchmark: a real uvicorn on 127.0.0.1 over PostgreSQL; prints JSON.

Measures `payments_per_s` (closed loop, the best of 32 and 128 requests in flight; each level is reported with
the server's and PostgreSQL's CPU per payment) and `p99_ms_at_300_rps` (open loop at a fixed rate,
latency counted from each request's scheduled start, so a stalled server cannot hide its queue), next to a
baseline measured in the same run: the same load on `/health` (the HTTP floor of this machine and server)
and one-at-a-time payments. Afterwards the ledger is verified and the report must balance.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# bench/ledger.py would shadow the `ledger` library this service imports: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
from cityblocks.loopback import (  # noqa: E402
    DiskProbe,
    Pool,
    open_loop,
    postgres_cpu_s,
    process_cpu_s,
    quiet_collector,
    wait_ready,
)
from cityblocks.postgres import checkpoint, fresh_database, server_for_run  # noqa: E402
from mobility_credit import accounts  # noqa: E402
from servicekit.devidp import DevIdentityProvider, demo_user  # noqa: E402

HASSELT = "71022"
DE_LIJN = accounts.derived_id("demo-provider", HASSELT, "De Lijn")
PREMIUM = accounts.derived_id("demo-scheme", HASSELT, "Autovrij premie")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def server(database_url: str, data_dir: Path, workers: int) -> AsyncIterator[tuple[int, int]]:
    """uvicorn serving the service (demo data on), as (port, pid); stopped and waited for on exit."""
    port = free_port()
    env = {
        **os.environ,
        "MOBILITY_CREDIT_DATABASE_URL": database_url,
        "MOBILITY_CREDIT_DATA_DIR": str(data_dir),
        "MOBILITY_CREDIT_DEMO_DATA": "true",
        "MOBILITY_CREDIT_SWEEP_INTERVAL_S": "0",
        "MOBILITY_CREDIT_LOG_LEVEL": "WARNING",
        "MOBILITY_CREDIT_DB_POOL_SIZE": "20",
    }
    command = [
        sys.executable, "-m", "uvicorn", "mobility_credit.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "120",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(*command, env=env)
    try:
        await wait_ready(port, lambda: process.returncode is None)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


def bearer(identity: DevIdentityProvider, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {identity.issue(demo_user(username), ttl_s=3600)}"}


class Payments:
    """Bus trips of De Lijn for the benchmark's citizens, each with a fresh Idempotency-Key."""

    def __init__(self, provider: dict[str, str], citizens: list[str]) -> None:
        self.provider = provider
        self.citizens = citizens
        self.count = 0
        self.paid = 0
        self.failed: dict[int, int] = {}

    async def pay(self, pool: Pool) -> bool:
        citizen = self.citizens[self.count % len(self.citizens)]
        self.count += 1
        body = {
            "citizen_id": citizen,
            "mode": "bus",
            "place": {"name": "Hasselt Station", "lat": 50.9296, "lon": 5.3277},
            "consumed_at": datetime.now(UTC).isoformat(),
            "total_cents": 300,
        }
        headers = {**self.provider, "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
        status, _ = await pool.request(
            "POST", f"/v1/providers/{DE_LIJN}/trips", headers, json.dumps(body).encode()
        )
        if status == 201:
            self.paid += 1
            return True
        self.failed[status] = self.failed.get(status, 0) + 1
        return False


async def closed_loop(
    concurrency: int, seconds: float, work: Callable[[], Awaitable[bool]]
) -> tuple[float, list[float]]:
    """`concurrency` loops, each sending when its previous request answered; returns (ok/s, latencies)."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    ok = 0

    async def loop() -> None:
        nonlocal ok
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            if await work():
                ok += 1
            latencies.append(time.perf_counter() - started)

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return ok / (time.perf_counter() - start), latencies


async def grant_budgets(pool: Pool, admin: dict[str, str], citizens: list[str]) -> None:
    headers = {**admin, "Content-Type": "application/json"}

    async def grant(citizen: str) -> None:
        body = json.dumps({"citizen_id": citizen}).encode()
        status, text = await pool.request("POST", f"/v1/schemes/{PREMIUM}/grants", headers, body)
        if status != 201:
            raise RuntimeError(f"grant failed: {status} {text[:200]!r}")

    for start in range(0, len(citizens), 200):
        await asyncio.gather(*(grant(c) for c in citizens[start : start + 200]))


async def check_invariants(pool: Pool, admin: dict[str, str], paid: int, in_doubt: int) -> dict[str, Any]:
    status, body = await pool.request("GET", "/v1/admin/ledger/verification", admin)
    verification = json.loads(body)
    status2, body2 = await pool.request("GET", "/v1/reports/summary", admin)
    summary = json.loads(body2)
    bus_trips = sum(m["trips"] for m in summary["per_mode"] if m["mode"] == "bus")
    return {
        "ledger_verified": status == 200 and bool(verification.get("ok")),
        "report_balanced": status2 == 200 and bool(summary.get("balanced")),
        "trips_recorded": bus_trips,
        "trips_paid": paid,
        "trips_in_doubt": in_doubt,
        "trips_accounted": paid <= bus_trips <= paid + in_doubt,
    }


async def measure(
    ports: list[int], pids: list[int], database_url: str, data_dir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    identity = DevIdentityProvider(data_dir / "devidp", issuer="cityblocks-dev", audience="cityblocks")
    admin, provider = bearer(identity, "hasselt.city_admin"), bearer(identity, "hasselt.provider")
    pool = await Pool.open(ports, args.connections)
    try:
        citizens = [f"bench-citizen-{i}" for i in range(args.citizens)]
        started = time.perf_counter()
        await grant_budgets(pool, admin, citizens)
        log(f"granted {len(citizens)} budgets in {time.perf_counter() - started:.1f} s")
        payments = Payments(provider, citizens)
        quiet_collector()

        async def health() -> bool:
            status, _ = await pool.request("GET", "/health", {})
            return status == 200

        health_rps, _ = await closed_loop(max(args.concurrency), args.baseline_seconds, health)
        _, sequential = await closed_loop(1, args.baseline_seconds, lambda: payments.pay(pool))
        one_at_a_time_ms = statistics.median(sequential) * 1000
        log(f"baseline: /health {health_rps:.0f}/s; one at a time p50 {one_at_a_time_ms:.1f} ms")
        # Throughput at each number of requests in flight: group commit needs company to reach its peak.
        by_concurrency: dict[int, dict[str, float]] = {}
        for concurrency in args.concurrency:
            paid_before = payments.paid
            cpu_before = process_cpu_s(pids), postgres_cpu_s(database_url) or 0.0, time.process_time()
            rate, _ = await closed_loop(concurrency, args.seconds, lambda: payments.pay(pool))
            paid = max(payments.paid - paid_before, 1)
            by_concurrency[concurrency] = {
                "payments_per_s": round(rate, 1),
                "server_cpu_ms_per_payment": round((process_cpu_s(pids) - cpu_before[0]) * 1000 / paid, 3),
                "postgres_cpu_ms_per_payment": round(
                    ((postgres_cpu_s(database_url) or 0.0) - cpu_before[1]) * 1000 / paid, 3
                ),
                # The load generator shares the 2 cores: what it takes is not there for the server.
                "client_cpu_ms_per_payment": round((time.process_time() - cpu_before[2]) * 1000 / paid, 3),
            }
            log(f"closed loop, {concurrency} in flight: {by_concurrency[concurrency]}")
        peak = max(by_concurrency.values(), key=lambda figures: figures["payments_per_s"])
        # The closed loops leave the disk busy for a while: latency is measured once their writes are on it.
        await checkpoint(database_url)
        # A pool of its own: abandoned requests leave their connections mid-answer.
        open_pool = await Pool.open(ports, args.connections)
        try:
            cpu_before = process_cpu_s(pids), postgres_cpu_s(database_url) or 0.0
            with DiskProbe() as disk:
                loop = await open_loop(
                    args.rate, args.latency_seconds, lambda: payments.pay(open_pool), args.grace_seconds
                )
            cpu_used = (
                process_cpu_s(pids) - cpu_before[0],
                (postgres_cpu_s(database_url) or 0.0) - cpu_before[1],
            )
        finally:
            open_pool.close()
        log(f"open loop at {args.rate}/s: p99 {loop.at(0.99)} ms, {loop.failures} failed")
        await asyncio.sleep(args.grace_seconds if loop.abandoned else 0)
        # Only requests already written to a connection can still be committed by the server.
        check_pool = await Pool.open(ports[:1], 2)
        try:
            invariants = await check_invariants(
                check_pool, admin, payments.paid, min(loop.abandoned, args.connections)
            )
        finally:
            check_pool.close()
    finally:
        pool.close()
    label = f"{args.rate:g}"
    return {
        "payments_per_s": peak["payments_per_s"],
        f"p99_ms_at_{label}_rps": loop.at(0.99),
        f"p50_ms_at_{label}_rps": loop.at(0.50),
        f"failed_at_{label}_rps": loop.failures,
        f"abandoned_at_{label}_rps": loop.abandoned,
        "server_cpu_ms_per_payment_at_peak": peak["server_cpu_ms_per_payment"],
        "postgres_cpu_ms_per_payment_at_peak": peak["postgres_cpu_ms_per_payment"],
        "client_cpu_ms_per_payment_at_peak": peak["client_cpu_ms_per_payment"],
        "closed_loop_by_concurrency": by_concurrency,
        # At a steady rate batches are small: what a payment costs there.
        f"server_cpu_ms_per_payment_at_{label}_rps": round(
            cpu_used[0] * 1000 / max(len(loop.latencies), 1), 3
        ),
        f"postgres_cpu_ms_per_payment_at_{label}_rps": round(
            cpu_used[1] * 1000 / max(len(loop.latencies), 1), 3
        ),
        "baseline_health_rps": round(health_rps, 1),
        "baseline_sequential_payment_p50_ms": round(statistics.median(sequential) * 1000, 2),
        "baseline_sequential_payments_per_s": round(len(sequential) / args.baseline_seconds, 1),
        # A durable commit waits for the disk: its fsync latency during the same open loop.
        f"disk_at_{label}_rps": disk.figures(),
        # The same loop in windows: a tail from one disk stall is one bad window, a slow service every one.
        f"windows_at_{label}_rps": loop.windows(args.window_seconds, disk),
        "refused": payments.failed,
        **invariants,
        "invariants_ok": invariants["ledger_verified"]
        and invariants["report_balanced"]
        and invariants["trips_accounted"],
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="cityblocks-bench-mobility-data-"))
    # The key exists before the server starts, so the server and this client agree on it.
    DevIdentityProvider(data_dir / "devidp", issuer="cityblocks-dev", audience="cityblocks")
    try:
        async with contextlib.AsyncExitStack() as stack:
            dsn = await stack.enter_async_context(server_for_run("bench-mobility"))
            url = await stack.enter_async_context(fresh_database(dsn, "bench_mobility"))
            # One single-worker server per instance, the client spreading its connections evenly: uvicorn's
            # own workers share one listening socket and keep-alive connections pile up on whichever
            # worker accepted first. The first instance creates the tables alone (start-ups race on DDL).
            started = [await stack.enter_async_context(server(url, data_dir, 1))]
            others = [server(url, data_dir, 1) for _ in range(args.instances - 1)]
            started += await asyncio.gather(*(stack.enter_async_context(other) for other in others))
            ports, pids = [port for port, _ in started], [pid for _, pid in started]
            result = await measure(ports, pids, url, data_dir, args)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "benchmark": "mobility_api",
        "instances": args.instances,
        "concurrency": args.concurrency,
        "goals": {"payments_per_s": 800, "p99_ms_at_300_rps": 50},
        "cpus": os.cpu_count(),
        **result,
    }


def parse_args() -> argparse.Namespace:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    # One: on 2 cores a second server process only halves each group commit's batch (measured: p99 and
    # throughput both worse); it pays where there are cores to spare.
    parser.add_argument("--instances", type=int, default=1, help="uvicorn processes (one worker each)")
    parser.add_argument("--citizens", type=int, default=300)
    parser.add_argument("--connections", type=int, default=160)
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[32, 128],
        help="requests in flight in the closed loop, comma-separated; payments_per_s is the best of them",
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="closed-loop duration")
    # Long enough that its p99 rests on 90 requests, not on one moment of the machine.
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="open-loop duration")
    parser.add_argument("--window-seconds", type=float, default=5.0, help="open loop reported per window")
    parser.add_argument("--grace-seconds", type=float, default=3.0, help="then wait at most this long")
    parser.add_argument("--baseline-seconds", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=300.0)
    return parser.parse_args()


if __name__ == "__main__":
    # The load generator runs on the loop the server runs on (uvloop): it shares the server's 2 cores.
    import uvloop

    print(json.dumps(uvloop.run(main(parse_args())), indent=2))
