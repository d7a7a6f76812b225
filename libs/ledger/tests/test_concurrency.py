"""Many asyncio tasks hit the same PostgreSQL accounts: none goes negative, sums hold, no deadlocks leak."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest

from ledger import AccountFlags, Balance, CreateTransferResult, Ledger, Transfer, TransferFlags
from ledger.testing import FakeClock, fund, open_accounts, transfer

pytestmark = pytest.mark.postgres
R = CreateTransferResult
DMNEC = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
TASKS = 24


@pytest.fixture(params=["batch", "core"])
async def pg_ledger(request: pytest.FixtureRequest, postgres_url: str) -> AsyncIterator[Ledger]:
    store = Ledger.from_url(postgres_url, clock=FakeClock(), chains=3, fast_path=request.param == "batch")
    await store.create_schema()
    try:
        yield store
    finally:
        await store.close()


async def assert_healthy(ledger: Ledger) -> None:
    report = await ledger.verify()
    assert report.ok, report.problems


async def test_wallets_never_go_negative_under_crossing_transfers(pg_ledger: Ledger) -> None:
    [city] = await open_accounts(pg_ledger, 1)
    wallets = await open_accounts(pg_ledger, 6, DMNEC)
    for wallet in wallets:
        await fund(pg_ledger, city, wallet, 100)
    rng = random.Random(5)

    async def hammer() -> list[CreateTransferResult]:
        codes: list[CreateTransferResult] = []
        for _ in range(8):
            batch = []
            for _ in range(rng.randint(1, 6)):
                debit, credit = rng.sample(wallets, 2)
                batch.append(transfer(debit, credit, rng.randint(1, 60)))
            codes.extend(r.code for r in await pg_ledger.create_transfers(batch))
        return codes

    outcomes = [code for codes in await asyncio.gather(*(hammer() for _ in range(TASKS))) for code in codes]

    assert set(outcomes) <= {R.OK, R.EXCEEDS_CREDITS}
    assert R.OK in outcomes and R.EXCEEDS_CREDITS in outcomes
    total = await pg_ledger.get_balances(wallets)
    assert total.credits_posted - total.debits_posted == 600
    for account in await pg_ledger.lookup_accounts(wallets):
        assert account.balance.available >= 0
    await assert_healthy(pg_ledger)


async def test_a_hold_raced_by_many_posts_and_voids_resolves_once(pg_ledger: Ledger) -> None:
    [city, wallet, provider] = await open_accounts(pg_ledger, 3)
    await fund(pg_ledger, city, wallet, 100)
    hold = transfer(wallet, provider, 80, flags=TransferFlags.PENDING)
    await pg_ledger.create_transfers([hold])

    async def resolve(index: int) -> CreateTransferResult:
        attempt = Transfer.post(uuid4(), hold.id, 50) if index % 2 else Transfer.void(uuid4(), hold.id)
        [result] = await pg_ledger.create_transfers([attempt])
        return result.code

    codes = await asyncio.gather(*(resolve(i) for i in range(TASKS)))

    assert codes.count(R.OK) == 1
    assert set(codes) - {R.OK} <= {R.PENDING_TRANSFER_ALREADY_POSTED, R.PENDING_TRANSFER_ALREADY_VOIDED}
    balance = await pg_ledger.get_balance(wallet)
    assert balance.debits_pending == 0 and balance.debits_posted in (0, 50)
    await assert_healthy(pg_ledger)


async def test_the_same_id_sent_by_many_tasks_applies_once(pg_ledger: Ledger) -> None:
    [city, wallet, provider] = await open_accounts(pg_ledger, 3)
    one = transfer(city, wallet, 7)
    other_body = transfer(city, provider, 9, id=one.id)

    async def send(index: int) -> CreateTransferResult:
        [result] = await pg_ledger.create_transfers([one if index % 4 else other_body])
        return result.code

    codes = await asyncio.gather(*(send(i) for i in range(TASKS)))

    assert codes.count(R.OK) == 1
    assert set(codes) <= {R.OK, R.EXISTS, R.EXISTS_WITH_DIFFERENT_FIELDS}
    credited = (await pg_ledger.get_balance(wallet)).credits_posted + (
        await pg_ledger.get_balance(provider)
    ).credits_posted
    assert credited in (7, 9)
    await assert_healthy(pg_ledger)


async def test_a_hot_pool_takes_every_payment_exactly_once(pg_ledger: Ledger) -> None:
    [city, pool] = await open_accounts(pg_ledger, 2)
    wallets = await open_accounts(pg_ledger, 40, DMNEC)
    await pg_ledger.create_transfers([transfer(city, w, 1000) for w in wallets])

    async def pay(worker: int) -> int:
        ok = 0
        for round_ in range(5):
            batch = [transfer(wallets[(worker + round_ + k) % 40], pool, 3) for k in range(10)]
            ok += sum(r.ok for r in await pg_ledger.create_transfers(batch))
        return ok

    paid = sum(await asyncio.gather(*(pay(w) for w in range(TASKS))))

    assert paid == TASKS * 50
    assert await pg_ledger.get_balance(pool) == Balance(credits_posted=3 * paid)
    await assert_healthy(pg_ledger)


async def test_killed_backends_leave_whole_batches_or_nothing(pg_ledger: Ledger, postgres_url: str) -> None:
    [city] = await open_accounts(pg_ledger, 1)
    wallets = await open_accounts(pg_ledger, 30, DMNEC)
    await pg_ledger.create_transfers([transfer(city, w, 1000) for w in wallets])
    batches = [[transfer(wallets[(b + k) % 30], city, 1) for k in range(20)] for b in range(60)]
    admin = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))

    async def send(batch: list[Transfer]) -> None:
        with contextlib.suppress(Exception):
            await pg_ledger.create_transfers(batch)

    async def crash_backends() -> int:
        killed = 0
        for _ in range(15):
            await asyncio.sleep(0.01)
            killed += len(
                await admin.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        return killed

    crashes = asyncio.create_task(crash_backends())
    await asyncio.gather(*(send(b) for b in batches))
    killed = await crashes
    await admin.close()

    assert killed > 0
    survivor = Ledger.from_url(postgres_url)
    try:
        for batch in batches:
            stored = await survivor.lookup_transfers([t.id for t in batch])
            assert len(stored) in (0, len(batch))
        report = await survivor.verify()
        assert report.ok, report.problems
    finally:
        await survivor.close()
