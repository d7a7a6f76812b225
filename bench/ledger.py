"""Ledger benchmark on PostgreSQL: batch path (uncontended, hot), naive baseline, raw SQL; prints JSON."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

# This script is named like the package it measures: keep its folder off the path so `ledger` is the library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
from cityblocks.postgres import server_for_run  # noqa: E402
from ledger import Account, AccountFlags, Ledger, ShardedAccount, Transfer, create_engine  # noqa: E402

EUR = 978
WALLET_FUNDS = 10_000_000
DMNEC = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def create_database(dsn: str) -> tuple[str, str]:
    name = f"bench_ledger_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = dsn.rsplit("/", 1)[0]
    return f"{base}/{name}", f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"


async def run_workers(
    workers: int, seconds: float, work: Callable[[int], Awaitable[int]]
) -> tuple[int, float]:
    """Run `work(worker)` in each worker until the deadline; returns (items done, elapsed seconds)."""
    deadline = time.perf_counter() + seconds
    done = [0] * workers

    async def loop(worker: int) -> None:
        while time.perf_counter() < deadline:
            done[worker] += await work(worker)

    start = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(workers)))
    return sum(done), time.perf_counter() - start


async def setup_ledger(
    ledger: Ledger, wallets: int, pool_shards: int
) -> tuple[list[uuid.UUID], ShardedAccount]:
    await ledger.create_schema()
    pool = ShardedAccount(uuid.UUID(int=1), shards=pool_shards)
    await ledger.create_accounts(pool.accounts(Account(id=pool.base_id, ledger=EUR, code=1)))
    [city] = await ledger.create_accounts([Account(id=uuid.UUID(int=2), ledger=EUR, code=1)])
    ids = [uuid.uuid4() for _ in range(wallets)]
    for start in range(0, wallets, 1000):
        chunk = ids[start : start + 1000]
        await ledger.create_accounts([Account(id=i, ledger=EUR, code=2, flags=DMNEC) for i in chunk])
        results = await ledger.create_transfers(
            [Transfer(uuid.uuid4(), city.id, i, WALLET_FUNDS, EUR, 1) for i in chunk]
        )
        assert all(r.ok for r in results)
    # Shards start with funds too, so payouts from the pool can also be limited per shard.
    return ids, pool


def uncontended_batch(wallets: Sequence[uuid.UUID], size: int) -> list[Transfer]:
    batch = []
    for _ in range(size):
        debit, credit = random.sample(wallets, 2)
        batch.append(Transfer(uuid.uuid4(), debit, credit, random.randint(1, 100), EUR, 3))
    return batch


def hot_batch(wallets: Sequence[uuid.UUID], pool_account: uuid.UUID, size: int) -> list[Transfer]:
    return [
        Transfer(uuid.uuid4(), random.choice(wallets), pool_account, random.randint(1, 100), EUR, 4)
        for _ in range(size)
    ]


async def bench_batch_path(
    ledger: Ledger,
    make: Callable[[int], list[Transfer]],
    workers: int,
    seconds: float,
) -> float:
    async def work(worker: int) -> int:
        batch = make(worker)
        results = await ledger.create_transfers(batch)
        return sum(1 for r in results if r.ok)

    done, elapsed = await run_workers(workers, seconds, work)
    return done / elapsed


NAIVE_SCHEMA = """
CREATE TABLE naive_accounts (id uuid PRIMARY KEY, debits_posted bigint NOT NULL DEFAULT 0,
    credits_posted bigint NOT NULL DEFAULT 0, CHECK (debits_posted <= credits_posted OR id = '{city}'));
CREATE TABLE naive_transfers (id uuid PRIMARY KEY, debit_account_id uuid NOT NULL,
    credit_account_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0), ts timestamptz NOT NULL DEFAULT now());
"""


async def bench_naive(
    url: str, wallets: Sequence[uuid.UUID], workers: int, seconds: float
) -> tuple[float, bool]:
    """One transaction per transfer through SQLAlchemy with plain guarded UPDATEs: how services start."""
    city = uuid.UUID(int=2)
    engine = create_engine(url)
    async with engine.begin() as conn:
        for statement in NAIVE_SCHEMA.format(city=city).split(";"):
            if statement.strip():
                await conn.execute(sa.text(statement))
        await conn.execute(
            sa.text(
                "INSERT INTO naive_accounts (id, credits_posted) SELECT unnest(CAST(:ids AS uuid[])), :funds"
            ),
            {"ids": list(wallets), "funds": WALLET_FUNDS},
        )
    debit_sql = sa.text(
        "UPDATE naive_accounts SET debits_posted = debits_posted + :amount "
        "WHERE id = :id AND credits_posted - debits_posted >= :amount"
    )
    credit_sql = sa.text("UPDATE naive_accounts SET credits_posted = credits_posted + :amount WHERE id = :id")
    insert_sql = sa.text(
        "INSERT INTO naive_transfers (id, debit_account_id, credit_account_id, amount) "
        "VALUES (:id, :dr, :cr, :amount)"
    )
    slices = [wallets[w::workers] for w in range(workers)]

    async def work(worker: int) -> int:
        debit, credit = random.sample(slices[worker], 2)
        amount = random.randint(1, 100)
        async with engine.begin() as conn:
            # Lock in id order so two transfers between the same pair never deadlock.
            first, second = sorted([(debit, debit_sql), (credit, credit_sql)], key=lambda item: item[0])
            for account, statement in (first, second):
                outcome = await conn.execute(statement, {"amount": amount, "id": account})
                if outcome.rowcount != 1:
                    raise RuntimeError("naive transfer refused")
            await conn.execute(insert_sql, {"id": uuid.uuid4(), "dr": debit, "cr": credit, "amount": amount})
        return 1

    done, elapsed = await run_workers(workers, seconds, work)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text("SELECT sum(debits_posted), sum(credits_posted) - :total FROM naive_accounts"),
                {"total": WALLET_FUNDS * len(wallets)},
            )
        ).one()
    await engine.dispose()
    return done / elapsed, row[0] == row[1]


RAW_SCHEMA = """
CREATE TABLE raw_accounts (id uuid PRIMARY KEY, debits_posted bigint NOT NULL DEFAULT 0,
    credits_posted bigint NOT NULL DEFAULT 0, limited boolean NOT NULL DEFAULT true);
CREATE TABLE raw_transfers (id uuid PRIMARY KEY, debit_account_id uuid NOT NULL,
    credit_account_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0), ts timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON raw_transfers (debit_account_id);
CREATE INDEX ON raw_transfers (credit_account_id);
CREATE FUNCTION raw_transfer_batch(ids uuid[], debits uuid[], credits uuid[], amounts bigint[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    done integer := 0;
BEGIN
    PERFORM 1 FROM raw_accounts WHERE id = ANY(debits || credits) ORDER BY id FOR UPDATE;
    FOR i IN 1 .. array_length(ids, 1) LOOP
        UPDATE raw_accounts SET debits_posted = debits_posted + amounts[i]
        WHERE id = debits[i] AND (NOT limited OR credits_posted - debits_posted >= amounts[i]);
        IF FOUND THEN
            UPDATE raw_accounts SET credits_posted = credits_posted + amounts[i] WHERE id = credits[i];
            INSERT INTO raw_transfers (id, debit_account_id, credit_account_id, amount)
            VALUES (ids[i], debits[i], credits[i], amounts[i]);
            done := done + 1;
        END IF;
    END LOOP;
    RETURN done;
END $$;
"""


async def bench_raw(
    dsn: str, wallets: Sequence[uuid.UUID], workers: int, seconds: float, *, hot: bool
) -> tuple[float, bool]:
    """Plain SQL: a PL/pgSQL function doing 100 transfers per call, over asyncpg (no ledger code at all)."""
    conn = await asyncpg.connect(dsn)
    pool_id = uuid.UUID(int=3)
    if not hot:
        await conn.execute(RAW_SCHEMA)
        await conn.execute(
            "INSERT INTO raw_accounts (id, credits_posted) SELECT unnest($1::uuid[]), $2",
            list(wallets),
            WALLET_FUNDS,
        )
        await conn.execute("INSERT INTO raw_accounts (id, limited) VALUES ($1, false)", pool_id)
    await conn.close()
    connections = [await asyncpg.connect(dsn) for _ in range(workers)]
    slices = [wallets[w::workers] for w in range(workers)]

    async def work(worker: int) -> int:
        ids, debits, credits, amounts = [], [], [], []
        for _ in range(100):
            if hot:
                debit, credit = random.choice(wallets), pool_id
            else:
                debit, credit = random.sample(slices[worker], 2)
            ids.append(uuid.uuid4())
            debits.append(debit)
            credits.append(credit)
            amounts.append(random.randint(1, 100))
        connection = connections[worker]
        async with connection.transaction():
            done: int = await connection.fetchval(
                "SELECT raw_transfer_batch($1, $2, $3, $4)", ids, debits, credits, amounts
            )
        return done

    done, elapsed = await run_workers(workers, seconds, work)
    row = await connections[0].fetchrow("SELECT sum(debits_posted), sum(credits_posted) FROM raw_accounts")
    for connection in connections:
        await connection.close()
    return done / elapsed, row[1] - row[0] == WALLET_FUNDS * len(wallets)


PLPGSQL_SCHEMA = """
CREATE TABLE plpg_accounts (id uuid PRIMARY KEY, ledger int NOT NULL, flags int NOT NULL,
    debits_posted bigint NOT NULL DEFAULT 0, credits_posted bigint NOT NULL DEFAULT 0) WITH (fillfactor = 50);
CREATE TABLE plpg_transfers (id uuid PRIMARY KEY, debit_account_id uuid NOT NULL,
    credit_account_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0), ledger int NOT NULL, code int NOT NULL, ts bigint NOT NULL);
CREATE INDEX ON plpg_transfers (debit_account_id, ts);
CREATE INDEX ON plpg_transfers (credit_account_id, ts);
CREATE FUNCTION plpg_create_transfers(ids uuid[], debits uuid[], credits uuid[], amounts bigint[],
    ledgers int[], codes int[]) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    results text[] := '{}';
    dr plpg_accounts;
    cr plpg_accounts;
    now_us bigint := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
BEGIN
    PERFORM 1 FROM plpg_accounts WHERE id = ANY(debits || credits) ORDER BY id FOR NO KEY UPDATE;
    FOR i IN 1 .. array_length(ids, 1) LOOP
        IF EXISTS (SELECT 1 FROM plpg_transfers WHERE id = ids[i]) THEN
            results := results || 'exists'::text; CONTINUE;
        END IF;
        IF amounts[i] <= 0 THEN results := results || 'amount_must_be_positive'::text; CONTINUE; END IF;
        IF debits[i] = credits[i] THEN
            results := results || 'accounts_must_be_different'::text; CONTINUE;
        END IF;
        SELECT * INTO dr FROM plpg_accounts WHERE id = debits[i];
        IF NOT FOUND THEN results := results || 'debit_account_not_found'::text; CONTINUE; END IF;
        SELECT * INTO cr FROM plpg_accounts WHERE id = credits[i];
        IF NOT FOUND THEN results := results || 'credit_account_not_found'::text; CONTINUE; END IF;
        IF dr.ledger <> cr.ledger OR dr.ledger <> ledgers[i] THEN
            results := results || 'ledger_must_match'::text; CONTINUE;
        END IF;
        IF dr.flags & 2 <> 0 AND dr.debits_posted + amounts[i] > dr.credits_posted THEN
            results := results || 'exceeds_credits'::text; CONTINUE;
        END IF;
        UPDATE plpg_accounts SET debits_posted = debits_posted + amounts[i] WHERE id = debits[i];
        UPDATE plpg_accounts SET credits_posted = credits_posted + amounts[i] WHERE id = credits[i];
        INSERT INTO plpg_transfers
        VALUES (ids[i], debits[i], credits[i], amounts[i], ledgers[i], codes[i], now_us);
        results := results || 'ok'::text;
    END LOOP;
    RETURN results;
END $$;
"""


async def bench_plpgsql(
    dsn: str, wallets: Sequence[uuid.UUID], workers: int, seconds: float, batch: int
) -> tuple[float, bool]:
    """The batch path's validation in PL/pgSQL instead of Python (plain transfers only, no hash chain)."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(PLPGSQL_SCHEMA)
    await conn.execute(
        "INSERT INTO plpg_accounts (id, ledger, flags, credits_posted) SELECT unnest($1::uuid[]), $2, 2, $3",
        list(wallets),
        EUR,
        WALLET_FUNDS,
    )
    await conn.close()
    connections = [await asyncpg.connect(dsn) for _ in range(workers)]
    slices = [wallets[w::workers] for w in range(workers)]

    async def work(worker: int) -> int:
        pairs = [random.sample(slices[worker], 2) for _ in range(batch)]
        connection = connections[worker]
        async with connection.transaction():
            results: list[str] = await connection.fetchval(
                "SELECT plpg_create_transfers($1, $2, $3, $4, $5, $6)",
                [uuid.uuid4() for _ in pairs],
                [p[0] for p in pairs],
                [p[1] for p in pairs],
                [random.randint(1, 100) for _ in pairs],
                [EUR] * batch,
                [3] * batch,
            )
        return results.count("ok")

    done, elapsed = await run_workers(workers, seconds, work)
    row = await connections[0].fetchrow("SELECT sum(debits_posted), sum(credits_posted) FROM plpg_accounts")
    for connection in connections:
        await connection.close()
    return done / elapsed, row[1] - row[0] == WALLET_FUNDS * len(wallets)


def profile_report(profiler: cProfile.Profile, lines: int = 25) -> str:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    random.seed(args.seed)
    result: dict[str, Any] = {
        "wallets": args.wallets,
        "batch_size": args.batch,
        "workers": args.workers,
        "seconds_per_run": args.seconds,
        "pool_shards": args.shards,
        "journal_chains": args.chains,
    }
    async with server_for_run("bench-ledger") as dsn:
        raw_dsn, url = await create_database(dsn)
        ledger = Ledger(create_engine(url, pool_size=args.workers + 2), chains=args.chains)
        log("setting up wallets")
        wallets, pool = await setup_ledger(ledger, args.wallets, args.shards)
        slices = [wallets[w :: args.workers] for w in range(args.workers)]
        checks: dict[str, bool] = {}

        profiler = cProfile.Profile() if args.profile else None
        log("uncontended batch path")
        if profiler:
            profiler.enable()
        result["uncontended_tps"] = await bench_batch_path(
            ledger, lambda w: uncontended_batch(slices[w], args.batch), args.workers, args.seconds
        )
        if profiler:
            profiler.disable()
            log(profile_report(profiler))
        checks["after_uncontended"] = (await ledger.verify()).ok

        log("hot: one pool account")
        single = pool.shard_ids[0]
        result["hot_unsharded_tps"] = await bench_batch_path(
            ledger, lambda w: hot_batch(slices[w], single, args.batch), args.workers, args.seconds
        )
        checks["after_hot_unsharded"] = (await ledger.verify()).ok
        log("hot: sharded pool")
        result["hot_tps"] = await bench_batch_path(
            ledger,
            lambda w: hot_batch(slices[w], pool.shard_ids[w % pool.shards], args.batch),
            args.workers,
            args.seconds,
        )
        started = time.perf_counter()
        report = await ledger.verify()
        result["verify_seconds"] = time.perf_counter() - started
        checks["after_hot"] = report.ok
        result["journal_records"] = report.records
        await ledger.close()

        log("naive baseline")
        result["baseline_uncontended_tps"], checks["baseline_sums"] = await bench_naive(
            url, wallets, args.workers, args.seconds
        )
        log("raw SQL")
        result["raw_sql_uncontended_tps"], checks["raw_sums"] = await bench_raw(
            raw_dsn, wallets, args.workers, args.seconds, hot=False
        )
        result["raw_sql_hot_tps"], checks["raw_hot_sums"] = await bench_raw(
            raw_dsn, wallets, args.workers, args.seconds, hot=True
        )
        log("PL/pgSQL validation")
        result["plpgsql_validation_uncontended_tps"], checks["plpgsql_sums"] = await bench_plpgsql(
            raw_dsn, wallets, args.workers, args.seconds, args.batch
        )
    result["uncontended_vs_raw"] = result["uncontended_tps"] / result["raw_sql_uncontended_tps"]
    result["hot_vs_raw"] = result["hot_tps"] / result["raw_sql_hot_tps"]
    result["checks"] = checks
    result["invariants_ok"] = all(checks.values())
    result["goals_met"] = result["uncontended_tps"] >= 8000 and result["hot_tps"] >= 5000
    return {key: round(value, 3) if isinstance(value, float) else value for key, value in result.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wallets", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of the uncontended run to stderr"
    )
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
