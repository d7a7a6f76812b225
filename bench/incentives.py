"""Incentives benchmark on PostgreSQL: events through the rule engine, redemptions over HTTP; prints JSON.

`events_per_s`: TripPaid events delivered to the service's consumer in bus-sized batches (inbox, 20 active
campaigns' rules, issuance on the ledger, outbox), next to a baseline of events no rule wants (inbox only).
`redeem_p99_ms_at_200_rps`: a real uvicorn on 127.0.0.1, an open loop of QR redemptions at 200/s with latency
counted from each request's scheduled start, next to `/health` at the same rate. Bounded to about 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

# bench/ledger.py would shadow the `ledger` library this service imports: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
from cityblocks.loopback import (  # noqa: E402
    DiskProbe,
    Pool,
    open_loop,
    percentile,
    postgres_cpu_s,
    process_cpu_s,
    quiet_collector,
    wait_ready,
)
from cityblocks.postgres import checkpoint, fresh_database, server_for_run  # noqa: E402
from contracts.envelope import Envelope  # noqa: E402
from contracts.probe import ProbeRecorded  # noqa: E402
from eventbus import InProcessBus  # noqa: E402
from eventbus.bus import Subscription, deliver_partitions  # noqa: E402
from incentives import demo, domain, store  # noqa: E402
from incentives.testing import Service, running_service, settings_for, trip  # noqa: E402
from servicekit.devidp import DevIdentityProvider, demo_user, demo_user_id  # noqa: E402

SECRET = "bench-qr-secret"  # noqa: S105 (a throwaway key of this run)
GEEL = "13008"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


TRIP = "be.cityblocks.mobility-credit.TripPaid.v1"
# Selective conditions, as real campaigns have: a bus trip matches the demo campaign and about one of these.
TRIP_CONDITIONS = [
    "mode == 'train'",
    "mode == 'shared_bike' and total_cents >= 200",
    "mode == 'bus' and total_cents > 300",
    "place.name == 'Geel Station' and mode == 'bus' and total_cents < 200",
    "mode == 'bike_parking'",
    "mode in ['bus', 'shared_bike'] and citizen_share_cents == 0 and total_cents >= 250",
]
# Every condition matches a bus or bike trip: the worst case, each event rewarded by most campaigns.
BROAD_CONDITIONS = [
    "mode in ['bus', 'shared_bike']",
    "total_cents > 100",
    "not (mode in ['taxi', 'car_sharing'])",
    "mode == 'bus' and place.name != null",
]


def other_triggers() -> list[tuple[str, str]]:
    """(event type, beneficiary field) of other services' events with a top-level text field to reward."""
    from contracts import registry
    from contracts.schemas import event_schema

    found = []
    for event_type, cls in registry.catalogue().items():
        if cls.event_service in ("incentives", "mobility-credit", "probe"):
            continue
        properties = event_schema(cls).get("properties", {})
        text = [
            name for name, spec in properties.items() if spec.get("type") == "string" and "format" not in spec
        ]
        if text:
            found.append((event_type, text[0]))
    return found


def campaign_rules(count: int, broad: bool) -> list[dict[str, Any]]:
    """Rules of `count` campaigns: on trips, and (unless broad) on other services' events and claims."""
    if broad:
        return [
            {
                "trigger": TRIP,
                "condition": BROAD_CONDITIONS[n % len(BROAD_CONDITIONS)],
                "beneficiary_field": "citizen_id",
            }
            for n in range(count)
        ]
    rules = [{"trigger": TRIP, "condition": c, "beneficiary_field": "citizen_id"} for c in TRIP_CONDITIONS]
    others = other_triggers()
    for n in range(count - len(rules)):
        if n % 4 == 3 or not others:
            rules.append({"trigger": "claim"})
        else:
            event_type, field = others[n % len(others)]
            rules.append({"trigger": event_type, "beneficiary_field": field})
    return rules[:count]


async def launch_campaigns(service: Service, count: int, *, broad: bool = False) -> None:
    """Campaigns next to the three demo ones, half with weekly limits, large budgets."""
    for number, rule in enumerate(campaign_rules(count, broad)):
        rule = {
            **rule,
            "reward_coins": 1 + number % 3,
            **({"limit_window": "week", "limit_coins": 50} if number % 2 else {}),
        }
        body = {
            "name": f"Bench {number}",
            "sponsor": "Bench",
            "coin_type_id": str(demo.GEEL_COIN if number % 2 else demo.KEMPEN_COIN),
            "budget_coins": 10**9,
            "valid_from": "2026-01-01T00:00:00Z",
            "rules": [rule],
        }
        await service.call("POST", "/v1/campaigns", "geel.city_admin", body, status=201)


def trip_envelopes(count: int, citizens: list[str]) -> list[Envelope]:
    modes = ["bus", "bus", "shared_bike", "train", "taxi"]
    return [
        Envelope.wrap(
            trip(
                mode=modes[i % len(modes)], citizen_id=citizens[i % len(citizens)], total_cents=150 + i % 200
            ),
            source="/cityblocks/bench",
            tenant=GEEL,
        )
        for i in range(count)
    ]


def probe_envelopes(count: int) -> list[Envelope]:
    return [
        Envelope.wrap(ProbeRecorded(stream=f"s{i % 50}", seq=i), source="/cityblocks/bench", tenant=GEEL)
        for i in range(count)
    ]


async def deliver_for(
    service: Service, envelopes: list[Envelope], batch: int, seconds: float
) -> tuple[int, float, float]:
    """Deliver as the in-process bus does, until the envelopes or the time run out.

    Each round takes up to `batch` records of every partition and hands them to the consumer through the
    bus's own `deliver_partitions`, as many partitions at once as the service's consumer concurrency.
    Returns (events, seconds, CPU seconds of this process: consumer and outbox relay, not PostgreSQL).
    """
    consumer, bus = service.context.consumer, service.context.bus
    assert isinstance(bus, InProcessBus), "the benchmark drives the service's in-process bus"
    by_partition: dict[int, list[Envelope]] = {}
    for envelope in envelopes:
        by_partition.setdefault(bus.partition_of(envelope.partitionkey), []).append(envelope)
    lanes = list(by_partition.values())
    subscription = Subscription(
        consumer.name,
        tuple(consumer.topics),
        consumer.deliver,
        consumer.deliver_batch,
        concurrency=service.context.settings.consumer_concurrency,
    )
    start, cpu, done, at = time.perf_counter(), time.process_time(), 0, 0
    while done < len(envelopes) and time.perf_counter() - start < seconds:
        round_ = [lane[at : at + batch] for lane in lanes if lane[at : at + batch]]
        for error in await deliver_partitions(subscription, round_):
            if error is not None:
                raise error
        done += sum(len(records) for records in round_)
        at += batch
    return done, time.perf_counter() - start, time.process_time() - cpu


def kbo(number: int) -> str:
    first = 40_000_000 + number
    return f"0{first:08d}{97 - first % 97:02d}"[-10:]


async def open_shops(service: Service, count: int) -> list[str]:
    """Geel shops of the demo merchant taking Kempen coins: a town's redemptions spread over its shops."""
    shops = []
    for number in range(count):
        body = {
            "name": f"Bench shop {number}",
            "kbo": kbo(number),
            "iban": "BE71096123456769",
            "owner_subject": demo_user_id("geel.merchant"),
            "coin_type_ids": [str(demo.KEMPEN_COIN)],
        }
        shops.append((await service.call("POST", "/v1/merchants", "geel.city_admin", body, status=201))["id"])
    return shops


async def issuances(service: Service) -> int:
    async with service.context.sessionmaker() as session:
        return int(
            (await session.execute(sa.select(sa.func.count()).select_from(store.issuances))).scalar_one()
        )


async def rule_engine(
    database_url: str, data_dir: Path, args: argparse.Namespace, *, broad: bool
) -> dict[str, Any]:
    """Events per second through the rule engine with 20 active campaigns; citizens with coins and shops."""
    settings = settings_for(data_dir, database_url=database_url, qr_secret=SECRET, log_level="WARNING")
    async with running_service(settings) as service:
        await launch_campaigns(service, args.campaigns - 3, broad=broad)
        citizens = [f"bench-citizen-{i}" for i in range(args.citizens)]
        await deliver_for(service, trip_envelopes(200, citizens), args.batch, 30)
        baseline_events, baseline_s, _ = await deliver_for(
            service, probe_envelopes(20_000), args.batch, args.baseline_seconds
        )
        before = await issuances(service)
        envelopes = trip_envelopes(args.max_events, citizens)
        # The input is this process's only because the benchmark drives the consumer in-process (a service
        # reads it from the broker and lets it go): keep its objects out of the cyclic collector's passes.
        gc.freeze()
        postgres_before = postgres_cpu_s(database_url)
        delivered, seconds, cpu = await deliver_for(service, envelopes, args.batch, args.seconds)
        postgres_after = postgres_cpu_s(database_url)
        gc.unfreeze()
        issued = await issuances(service) - before
        async with service.context.sessionmaker() as session:
            active = (
                await session.execute(sa.select(sa.func.count()).select_from(store.campaigns))
            ).scalar_one()
        lifecycle = await service.call(
            "GET", f"/v1/coin-types/{demo.KEMPEN_COIN}/lifecycle", "geel.city_admin"
        )
        redeemers = await holders(service) if not broad else []
        shops = await open_shops(service, args.shops) if not broad else []
    label = "every campaign on trips" if broad else "mixed campaigns"
    log(
        f"rule engine, {label}: {delivered / seconds:.0f} events/s, {issued / seconds:.0f} issuances/s; "
        f"unmatched {baseline_events / baseline_s:.0f}/s"
    )
    return {
        "events_per_s": round(delivered / seconds, 1),
        "issuances_per_s": round(issued / seconds, 1),
        "issuances_per_event": round(issued / max(delivered, 1), 2),
        "service_cpu_ms_per_event": round(cpu * 1000 / max(delivered, 1), 3),
        "postgres_cpu_ms_per_event": None
        if postgres_before is None or postgres_after is None
        else round((postgres_after - postgres_before) * 1000 / max(delivered, 1), 3),
        "active_campaigns": active,
        "baseline_unmatched_events_per_s": round(baseline_events / baseline_s, 1),
        "lifecycle_balanced": lifecycle["issued"]
        == lifecycle["citizens"] + lifecycle["merchants"] + lifecycle["settled"] + lifecycle["expired"],
        "redeemers": redeemers,
        "shops": shops,
    }


async def holders(service: Service) -> list[str]:
    """One entry per Kempen coin held (up to 15 per citizen): each redemption below takes one."""
    from ledger import tables as ledger_tables

    a, w = ledger_tables.accounts, store.wallets
    query = (
        sa.select(w.c.citizen_id, a.c.credits_posted - a.c.debits_posted)
        .join(a, a.c.id == w.c.account_id)
        .where(w.c.coin_type_id == demo.KEMPEN_COIN)
    )
    async with service.context.sessionmaker() as session:
        rows = (await session.execute(query)).all()
    # Round robin over the wallets, so that consecutive scans hit different citizens.
    return [citizen for turn in range(15) for citizen, held in rows if int(held) > turn]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def server(database_url: str, data_dir: Path, workers: int) -> AsyncIterator[tuple[int, int]]:
    port = free_port()
    env = {
        **os.environ,
        "INCENTIVES_DATABASE_URL": database_url,
        "INCENTIVES_DATA_DIR": str(data_dir),
        "INCENTIVES_QR_SECRET": SECRET,
        "INCENTIVES_LOG_LEVEL": "WARNING",
        "INCENTIVES_MERCHANT_MAX_COINS": str(10**9),
        "INCENTIVES_DB_POOL_SIZE": "20",
    }
    command = [
        sys.executable, "-m", "uvicorn", "incentives.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
        "--workers", str(workers),
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)  # noqa: ASYNC220 (started once, before measuring)
    try:
        await wait_ready(port, lambda: process.poll() is None)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Redemptions:
    """One coin per scan, each with a fresh one-time QR payload of the next citizen's Kempen wallet."""

    def __init__(self, merchant: dict[str, str], citizens: list[str], shops: list[str]) -> None:
        self.headers = {**merchant, "Content-Type": "application/json"}
        self.citizens = citizens or ["nobody"]
        self.shops = shops or [str(demo.BAKERY)]
        self.count = 0
        self.statuses: dict[int, int] = {}

    def body(self) -> bytes:
        citizen = self.citizens[self.count % len(self.citizens)]
        self.count += 1
        wallet = domain.wallet_account(citizen, demo.KEMPEN_COIN)
        expires = datetime.now(UTC) + timedelta(minutes=5)
        claims = domain.QrClaims(wallet, demo.KEMPEN_COIN, uuid.uuid4(), expires)
        qr = domain.sign_qr(SECRET.encode(), claims)
        shop = self.shops[self.count % len(self.shops)]
        return json.dumps({"qr": qr, "merchant_id": shop, "amount": 1}).encode()

    async def redeem(self, pool: Pool) -> bool:
        status, _ = await pool.request("POST", "/v1/redemptions", self.headers, self.body())
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return status == 201


async def redemption_latency(
    database_url: str, data_dir: Path, citizens: list[str], shops: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    identity = DevIdentityProvider(data_dir / "devidp", issuer="cityblocks-dev", audience="cityblocks")
    merchant = {"Authorization": f"Bearer {identity.issue(demo_user('geel.merchant'), ttl_s=3600)}"}
    async with contextlib.AsyncExitStack() as stack:
        # One single-worker server per instance, the client spreading its connections evenly: uvicorn's own
        # workers share one listening socket and keep-alive connections pile up on whichever accepted first.
        instances = [server(database_url, data_dir, 1) for _ in range(args.instances)]
        started = await asyncio.gather(*(stack.enter_async_context(one) for one in instances))
        ports, pids = [port for port, _ in started], [pid for _, pid in started]
        pool = await Pool.open(ports, args.connections)
        try:
            redemptions = Redemptions(merchant, citizens, shops)
            needed = int(args.rate * args.latency_seconds) + 50
            if len(citizens) < needed:
                raise SystemExit(f"{len(citizens)} coins held, {needed} redemptions to make: more --citizens")
            quiet_collector()
            # The rule engine's phase leaves the disk busy a while: latency is measured once it is written.
            await checkpoint(database_url)

            async def health() -> bool:
                status, _ = await pool.request("GET", "/health", {})
                return status == 200

            health_loop = await open_loop(args.rate, args.baseline_seconds, health)
            sequential = []
            for _ in range(50):
                started = time.perf_counter()
                await redemptions.redeem(pool)
                sequential.append(time.perf_counter() - started)
            cpu = process_cpu_s(pids), postgres_cpu_s(database_url)
            with DiskProbe() as disk:
                loop = await open_loop(args.rate, args.latency_seconds, lambda: redemptions.redeem(pool))
            used = process_cpu_s(pids) - cpu[0], (postgres_cpu_s(database_url) or 0.0) - (cpu[1] or 0.0)
        finally:
            pool.close()
    log(
        f"redemptions at {args.rate}/s: p99 {loop.at(0.99)} ms ({loop.failures} failed); "
        f"/health p99 {health_loop.at(0.99)} ms"
    )
    return {
        "redeem_p99_ms_at_200_rps": loop.at(0.99),
        "redeem_p50_ms_at_200_rps": loop.at(0.5),
        "redeem_failed": loop.failures,
        "redeem_statuses": redemptions.statuses,
        "baseline_health_p99_ms_at_200_rps": health_loop.at(0.99),
        "baseline_one_at_a_time_redeem_p50_ms": round(percentile(sequential, 0.5) * 1000, 1),
        # A durable commit waits for the disk: its fsync latency during the same open loop.
        "disk_during_redemptions": disk.figures(),
        # The same loop in windows: a tail from one disk stall is one bad window, a slow service every one.
        "redeem_windows": loop.windows(args.window_seconds, disk),
        "server_cpu_ms_per_redemption": round(used[0] * 1000 / max(len(loop.latencies), 1), 3),
        "postgres_cpu_ms_per_redemption": None
        if cpu[1] is None
        else round(used[1] * 1000 / max(len(loop.latencies), 1), 3),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="cityblocks-bench-incentives-data-"))
    try:
        async with (
            server_for_run("bench-incentives") as dsn,
            fresh_database(dsn, "bench_incentives") as database_url,
        ):
            engine = await rule_engine(database_url, data_dir, args, broad=False)
            redeemers, shops = engine.pop("redeemers"), engine.pop("shops")
            redeem = {}
            if args.only in (None, "redeem"):
                redeem = await redemption_latency(database_url, data_dir, redeemers, shops, args)
        broad: dict[str, Any] = {}
        if args.only is None:
            async with (
                server_for_run("bench-incentives") as dsn,
                fresh_database(dsn, "bench_incentives") as database_url,
            ):
                broad = await rule_engine(database_url, data_dir / "broad", args, broad=True)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        **engine,
        **(
            {
                "worst_case_every_campaign_on_trips": {
                    k: v for k, v in broad.items() if k not in ("redeemers", "shops")
                }
            }
            if broad
            else {}
        ),
        **redeem,
        "goals": {"events_per_s": 3000, "redeem_p99_ms_at_200_rps": 50},
        "machine": f"{os.cpu_count()} cores, shared",
        "load_average_1m_at_end": round(os.getloadavg()[0], 1),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--citizens", type=int, default=2_000)
    # A consumer that keeps up with a backlog gets full batches: the in-process bus delivers up to 500 records
    # of a partition at once, the Kafka bus up to 1,000 per fetch.
    parser.add_argument(
        "--batch", type=int, default=500, help="events per partition and delivery (one transaction each)"
    )
    parser.add_argument("--max-events", type=int, default=30_000)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=200.0)
    # Long enough that the p99 rests on 60 redemptions, not on one moment of the machine.
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="redemption open-loop duration")
    parser.add_argument("--window-seconds", type=float, default=5.0, help="open loop reported per window")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--shops", type=int, default=20, help="shops the redemptions spread over")
    # One: on 2 cores a second server process only halves each group commit's batch (measured: p99 and
    # throughput both worse); it pays where there are cores to spare.
    parser.add_argument("--instances", type=int, default=1, help="uvicorn processes (one worker each)")
    parser.add_argument(
        "--only",
        choices=["engine", "redeem"],
        help="the mixed rule engine alone, or it (to earn the coins) and the redemptions; not the worst case",
    )
    return parser.parse_args()


if __name__ == "__main__":
    # The loop the service runs on under uvicorn (uvloop), also for the rule engine driven in this process.
    import uvloop

    print(json.dumps(uvloop.run(main(parse_args())), indent=2))
