"""Load test: a realistic mix of requests across the services of a distributed run on this machine.

Starts Kafka, PostgreSQL and every service (`cityblocks up`, demo data on), then drives virtual users on
127.0.0.1 for a bounded time: the public market view, traders looking at their days, citizens at their
wallets, providers paying trips (which the incentives service turns into coins), operators listing orders.
Prints one JSON object: throughput and p50/p95/p99 per endpoint, errors, and the consumer lag of every
service sampled each second; writes a PNG of throughput and lag over time when matplotlib is there.

    uv run --group bench python bench/load.py --seconds 30 --users 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from cityblocks.cli import Progress
from cityblocks.distributed import DistributedRun
from cityblocks.processes import free_port
from cityblocks.services import SERVICES, ServiceEntry
from servicekit.devidp import DevIdentityProvider, demo_user
from servicekit.settings import ServiceSettings

RESULTS = Path(__file__).parent / "results"
LAG = re.compile(r'^cityblocks_consumer_lag\{group="([^"]+)",topic="([^"]+)"\} ([0-9.e+]+)$', re.MULTILINE)


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    per_second: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    lag: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Context:
    urls: dict[str, str]
    tokens: dict[str, str]
    market_day_ids: list[str]
    provider_id: str
    citizens: list[str]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


Action = Callable[[httpx.AsyncClient, Context], Awaitable[httpx.Response]]


async def public_market_day(client: httpx.AsyncClient, ctx: Context) -> httpx.Response:
    day = random.choice(ctx.market_day_ids)
    return await client.get(f"{ctx.urls['market']}/v1/public/market-days/{day}")


async def trader_days(client: httpx.AsyncClient, ctx: Context) -> httpx.Response:
    return await client.get(f"{ctx.urls['market']}/v1/me/market-days", headers=ctx.auth("hasselt.trader"))


async def credit_wallet(client: httpx.AsyncClient, ctx: Context) -> httpx.Response:
    url = f"{ctx.urls['mobility-credit']}/v1/me/wallet"
    return await client.get(url, headers=ctx.auth("hasselt.citizen"))


async def pay_trip(client: httpx.AsyncClient, ctx: Context) -> httpx.Response:
    body = {
        "citizen_id": random.choice(ctx.citizens),
        "mode": "bus",
        "place": {"name": "Geel Markt"},
        "consumed_at": datetime.now(UTC).isoformat(),
        "total_cents": 5,
    }
    headers = {**ctx.auth("geel.provider"), "Idempotency-Key": str(uuid.uuid4())}
    url = f"{ctx.urls['mobility-credit']}/v1/providers/{ctx.provider_id}/trips"
    return await client.post(url, json=body, headers=headers)


async def coins_wallet(client: httpx.AsyncClient, ctx: Context) -> httpx.Response:
    return await client.get(f"{ctx.urls['incentives']}/v1/wallet", headers=ctx.auth("geel.citizen"))


async def operator_orders(client: httpx.AsyncClient, ctx: Context) -> httpx.Response:
    return await client.get(f"{ctx.urls['logistics']}/v1/orders", headers=ctx.auth("hasselt.operator"))


async def open_data(client: httpx.AsyncClient, ctx: Context) -> httpx.Response:
    dataset = random.choice(["mobility-credit-use.csv", "market-stalls.jsonld", "campaign-results.csv"])
    return await client.get(f"{ctx.urls['opendata']}/v1/public/13008/datasets/{dataset}")


async def console_markets(client: httpx.AsyncClient, ctx: Context) -> httpx.Response:
    return await client.get(f"{ctx.urls['console']}/public/markets")


# (name, weight, action): reads dominate, as on a market morning; payments are the write path across services.
MIX: list[tuple[str, int, Action]] = [
    ("GET market /v1/public/market-days/{id}", 30, public_market_day),
    ("GET market /v1/me/market-days", 15, trader_days),
    ("GET mobility-credit /v1/me/wallet", 15, credit_wallet),
    ("POST mobility-credit /v1/providers/{id}/trips", 20, pay_trip),
    ("GET incentives /v1/wallet", 10, coins_wallet),
    ("GET logistics /v1/orders", 10, operator_orders),
    ("GET opendata /v1/public/{tenant}/datasets/{file}", 5, open_data),
    ("GET console /public/markets", 5, console_markets),
]


async def user(client: httpx.AsyncClient, ctx: Context, stats: Stats, until: float, began: float) -> None:
    names = [name for name, _, _ in MIX]
    weights = [weight for _, weight, _ in MIX]
    actions = {name: action for name, _, action in MIX}
    while time.monotonic() < until:
        name = random.choices(names, weights)[0]
        started = time.perf_counter()
        try:
            response = await actions[name](client, ctx)
            ok = response.status_code < 400
        except httpx.HTTPError:
            ok = False
        stats.latencies[name].append((time.perf_counter() - started) * 1000)
        stats.per_second[int(time.monotonic() - began)] += 1
        if not ok:
            stats.errors[name] += 1


async def sample_lag(client: httpx.AsyncClient, urls: dict[str, str], stats: Stats, until: float) -> None:
    began = time.monotonic()
    while time.monotonic() < until + 10:
        sample: dict[str, Any] = {"t": round(time.monotonic() - began, 1)}
        for service, url in urls.items():
            text = (await client.get(f"{url}/metrics")).text
            sample[service] = sum(float(value) for _, _, value in LAG.findall(text))
        stats.lag.append(sample)
        await asyncio.sleep(1)


async def prepare(urls: dict[str, str], identity: DevIdentityProvider) -> Context:
    users = ["hasselt.trader", "hasselt.citizen", "geel.provider", "geel.citizen", "geel.city_admin"]
    users.append("hasselt.operator")
    tokens = {name: identity.issue(demo_user(name), ttl_s=3600) for name in users}
    async with httpx.AsyncClient(timeout=30) as client:
        markets = (await client.get(f"{urls['market']}/v1/public/markets")).json()
        days: list[str] = []
        for market in markets:
            listed = (await client.get(f"{urls['market']}/v1/public/markets/{market['id']}/days")).json()
            days += [day["id"] if "id" in day else day["market_day_id"] for day in listed][:5]
        admin = {"Authorization": f"Bearer {tokens['geel.city_admin']}"}
        provider = {"Authorization": f"Bearer {tokens['geel.provider']}"}
        providers = (await client.get(f"{urls['mobility-credit']}/v1/providers", headers=provider)).json()
        provider_id = next(p["id"] for p in providers if "bus" in p["modes"])
        schemes = (await client.get(f"{urls['mobility-credit']}/v1/schemes", headers=admin)).json()
        scheme = next(s["id"] for s in schemes if s["definition"]["name"] == "Mobiliteitsbudget Geel")
        citizens = [f"load-{n}-{uuid.uuid4().hex[:6]}" for n in range(50)]
        for citizen in citizens:
            url = f"{urls['mobility-credit']}/v1/schemes/{scheme}/grants"
            granted = await client.post(url, json={"citizen_id": citizen}, headers=admin)
            granted.raise_for_status()
    return Context(urls, tokens, days, provider_id, citizens)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def report(stats: Stats, seconds: float, users: int) -> dict[str, Any]:
    endpoints = {
        name: {
            "requests": len(values),
            "per_s": round(len(values) / seconds, 1),
            "p50_ms": round(statistics.median(values), 1),
            "p95_ms": percentile(values, 0.95),
            "p99_ms": percentile(values, 0.99),
            "errors": stats.errors.get(name, 0),
        }
        for name, values in stats.latencies.items()
    }
    total = sum(len(values) for values in stats.latencies.values())
    return {
        "seconds": seconds,
        "users": users,
        "requests": total,
        "requests_per_s": round(total / seconds, 1),
        "errors": sum(stats.errors.values()),
        "endpoints": endpoints,
        "max_consumer_lag": {
            service: max((sample.get(service, 0) for sample in stats.lag), default=0)
            for service in (stats.lag[0] if stats.lag else {})
            if service != "t"
        },
        "consumer_lag_over_time": stats.lag,
        "requests_per_second_over_time": [stats.per_second[s] for s in sorted(stats.per_second)],
    }


def plot(result: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    top.plot(result["requests_per_second_over_time"], label="requests/s")
    top.set_ylabel("requests per second")
    top.legend()
    samples = result["consumer_lag_over_time"]
    for service in result["max_consumer_lag"]:
        bottom.plot([s["t"] for s in samples], [s[service] for s in samples], label=service)
    bottom.set_ylabel("consumer lag (records)")
    bottom.set_xlabel("seconds")
    bottom.legend()
    figure.tight_layout()
    figure.savefig(path)
    return True


async def drive(
    urls: dict[str, str], identity: DevIdentityProvider, seconds: float, users: int
) -> dict[str, Any]:
    ctx = await prepare(urls, identity)
    stats = Stats()
    limits = httpx.Limits(max_connections=users * 2)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        began = time.monotonic()
        until = began + seconds
        virtual_users = [user(client, ctx, stats, until, began) for _ in range(users)]
        await asyncio.gather(sample_lag(client, urls, stats, until), *virtual_users)
    return report(stats, seconds, users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--users", type=int, default=16)
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="cityblocks-load-"))
    var_dir.chmod(0o755)
    data_dir = var_dir / "data"
    entries = [
        ServiceEntry(entry.name, entry.module, entry.env_prefix, free_port())
        for entry in SERVICES
        if entry.name in ("market", "logistics", "mobility-credit", "incentives", "opendata", "console")
    ]
    for entry in entries:
        os.environ[f"{entry.env_prefix}DATA_DIR"] = str(data_dir)
        os.environ[f"{entry.env_prefix}DEMO_DATA"] = "true"
        os.environ[f"{entry.env_prefix}LOG_LEVEL"] = "WARNING"
        # Every virtual user comes from 127.0.0.1: the per-client limit on public routes would measure itself.
        os.environ[f"{entry.env_prefix}RATE_LIMIT_PUBLIC_PER_MINUTE"] = "100000000"
    identity = DevIdentityProvider.from_settings(ServiceSettings(service_name="auth", data_dir=data_dir))
    run = DistributedRun(entries, var_dir, Progress())
    try:
        run.start(health_timeout=300)
        urls = {entry.name: f"http://127.0.0.1:{entry.port}" for entry in entries}
        result = asyncio.run(drive(urls, identity, args.seconds, args.users))
    finally:
        run.stop()
        shutil.rmtree(var_dir, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    result["plot"] = str(RESULTS / "load.png") if plot(result, RESULTS / "load.png") else None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
