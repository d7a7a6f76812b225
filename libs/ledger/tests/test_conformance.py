"""The conformance suite every ledger store passes: SQLite, PostgreSQL's batch path and its portable path."""

from __future__ import annotations

import json
import subprocess
import sys
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa

from ledger import (
    Account,
    AccountFlags,
    Balance,
    CreateAccountResult,
    CreateTransferResult,
    Ledger,
    ShardedAccount,
    Transfer,
    TransferFlags,
    TransferKind,
    expiry_id,
)
from ledger.testing import EUR, FakeClock, codes, fund, open_accounts, transfer

R = CreateTransferResult
DMNEC = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
CMNED = AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS


async def wallet_setup(ledger: Ledger, funds: int = 1000) -> tuple[UUID, UUID, UUID]:
    """A city pool (unbounded), a funded citizen wallet (never negative) and a provider account."""
    [pool] = await open_accounts(ledger, 1)
    [wallet] = await open_accounts(ledger, 1, DMNEC)
    [provider] = await open_accounts(ledger, 1)
    if funds:
        await fund(ledger, pool, wallet, funds)
    return pool, wallet, provider


async def balance(ledger: Ledger, account: UUID) -> Balance:
    return await ledger.get_balance(account)


async def assert_healthy(ledger: Ledger) -> None:
    report = await ledger.verify()
    assert report.ok, report.problems


async def test_a_transfer_moves_the_amount_from_debit_to_credit(ledger: Ledger) -> None:
    pool, wallet, provider = await wallet_setup(ledger)

    [result] = await ledger.create_transfers([transfer(wallet, provider, 250)])

    assert result.code is R.OK
    assert result.transfer is not None and result.transfer.timestamp is not None
    assert await balance(ledger, wallet) == Balance(debits_posted=250, credits_posted=1000)
    assert await balance(ledger, provider) == Balance(credits_posted=250)
    assert await balance(ledger, pool) == Balance(debits_posted=1000)
    await assert_healthy(ledger)


async def test_a_never_negative_wallet_refuses_to_overspend(ledger: Ledger) -> None:
    _, wallet, provider = await wallet_setup(ledger, funds=100)

    [result] = await ledger.create_transfers([transfer(wallet, provider, 101)])

    assert result.code is R.EXCEEDS_CREDITS
    assert await balance(ledger, wallet) == Balance(credits_posted=100)
    assert await balance(ledger, provider) == Balance()


async def test_credits_must_not_exceed_debits_caps_a_budget_account(ledger: Ledger) -> None:
    [source] = await open_accounts(ledger, 1)
    [capped] = await open_accounts(ledger, 1, CMNED)

    [result] = await ledger.create_transfers([transfer(source, capped, 5)])

    assert result.code is R.EXCEEDS_DEBITS


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": 0}, R.AMOUNT_MUST_NOT_BE_ZERO),
        ({"amount": -5}, R.AMOUNT_MUST_BE_POSITIVE),
        ({"amount": 2**63}, R.AMOUNT_TOO_LARGE),
        ({"amount": 1.5}, R.AMOUNT_MUST_BE_AN_INTEGER),
        ({"credit": "wallet"}, R.ACCOUNTS_MUST_BE_DIFFERENT),
        ({"debit": "unknown"}, R.DEBIT_ACCOUNT_NOT_FOUND),
        ({"credit": "unknown"}, R.CREDIT_ACCOUNT_NOT_FOUND),
        ({"credit": "coins"}, R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER),
        ({"ledger": 1}, R.LEDGER_MUST_MATCH),
        ({"ledger": 0}, R.LEDGER_MUST_NOT_BE_ZERO),
        ({"code": 0}, R.CODE_MUST_NOT_BE_ZERO),
        ({"pending_id": "some"}, R.PENDING_ID_MUST_BE_ZERO),
        ({"timeout": 60}, R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER),
        (
            {"flags": TransferFlags.PENDING | TransferFlags.VOID_PENDING_TRANSFER},
            R.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        ),
        ({"flags": TransferFlags.EXPIRE}, R.RESERVED_FLAG),
        ({"id": UUID(int=0)}, R.ID_MUST_NOT_BE_ZERO),
    ],
)
async def test_bad_input_gets_a_clear_code_and_changes_nothing(
    ledger: Ledger, change: dict[str, object], code: CreateTransferResult
) -> None:
    change = dict(change)
    _, wallet, provider = await wallet_setup(ledger, funds=100)
    [coins] = await open_accounts(ledger, 1, ledger_code=7)
    names = {"wallet": wallet, "unknown": uuid4(), "coins": coins, "some": uuid4()}
    debit = names.get(str(change.pop("debit", "")), wallet)
    credit = names.get(str(change.pop("credit", "")), provider)
    if "pending_id" in change:
        change["pending_id"] = names["some"]
    fields = {"amount": 10, **change}
    amount = fields.pop("amount")

    [result] = await ledger.create_transfers([transfer(debit, credit, amount, **fields)])  # type: ignore[arg-type]

    assert result.code is code
    assert not result.ok
    assert await balance(ledger, wallet) == Balance(credits_posted=100)
    assert await balance(ledger, provider) == Balance()
    await assert_healthy(ledger)


async def test_the_same_id_again_returns_the_original_and_changes_nothing(ledger: Ledger) -> None:
    _, wallet, provider = await wallet_setup(ledger)
    original = transfer(wallet, provider, 40, metadata={"trip": "bus-17"})
    [first] = await ledger.create_transfers([original])

    [again] = await ledger.create_transfers([original])

    assert again.code is R.EXISTS and again.ok
    assert again.transfer == first.transfer
    assert await balance(ledger, provider) == Balance(credits_posted=40)


async def test_the_same_id_with_another_body_is_a_conflict(ledger: Ledger) -> None:
    _, wallet, provider = await wallet_setup(ledger)
    original = transfer(wallet, provider, 40)
    await ledger.create_transfers([original])

    [conflict] = await ledger.create_transfers([transfer(wallet, provider, 41, id=original.id)])

    assert conflict.code is R.EXISTS_WITH_DIFFERENT_FIELDS
    assert not conflict.ok
    assert await balance(ledger, provider) == Balance(credits_posted=40)


async def test_a_duplicate_inside_one_batch_is_applied_once(ledger: Ledger) -> None:
    _, wallet, provider = await wallet_setup(ledger)
    one = transfer(wallet, provider, 10)

    results = await ledger.create_transfers([one, one, transfer(wallet, provider, 11, id=one.id)])

    assert codes(results) == ["ok", "exists", "exists_with_different_fields"]
    assert await balance(ledger, provider) == Balance(credits_posted=10)


async def test_a_linked_group_succeeds_as_a_whole(ledger: Ledger) -> None:
    pool, wallet, provider = await wallet_setup(ledger)
    linked = TransferFlags.LINKED

    results = await ledger.create_transfers(
        [
            transfer(wallet, provider, 30, flags=linked),
            transfer(pool, provider, 20, flags=linked),
            transfer(provider, pool, 1),
        ]
    )

    assert codes(results) == ["ok", "ok", "ok"]
    assert await balance(ledger, provider) == Balance(debits_posted=1, credits_posted=50)


async def test_a_linked_group_with_one_failure_changes_nothing(ledger: Ledger) -> None:
    pool, wallet, provider = await wallet_setup(ledger, funds=100)
    linked = TransferFlags.LINKED
    before = transfer(pool, provider, 5)

    results = await ledger.create_transfers(
        [
            before,
            transfer(wallet, provider, 30, flags=linked),
            transfer(wallet, provider, 80, flags=linked),
            transfer(pool, provider, 1),
            transfer(pool, provider, 2),
        ]
    )

    assert codes(results) == ["ok", "linked_event_failed", "exceeds_credits", "linked_event_failed", "ok"]
    assert await balance(ledger, wallet) == Balance(credits_posted=100)
    assert await balance(ledger, provider) == Balance(credits_posted=7)
    assert [t.id for t in await ledger.lookup_transfers([results[1].id, results[3].id])] == []
    await assert_healthy(ledger)


async def test_a_linked_chain_left_open_fails(ledger: Ledger) -> None:
    _, wallet, provider = await wallet_setup(ledger)

    results = await ledger.create_transfers(
        [
            transfer(wallet, provider, 1, flags=TransferFlags.LINKED),
            transfer(wallet, provider, 2, flags=TransferFlags.LINKED),
        ]
    )

    assert codes(results) == ["linked_event_failed", "linked_event_chain_open"]
    assert await balance(ledger, provider) == Balance()


async def test_a_hold_reserves_funds_and_a_partial_post_releases_the_rest(ledger: Ledger) -> None:
    _, wallet, provider = await wallet_setup(ledger, funds=100)
    hold = transfer(wallet, provider, 60, flags=TransferFlags.PENDING, timeout=3600)
    [held] = await ledger.create_transfers([hold])
    assert held.code is R.OK
    assert (await balance(ledger, wallet)).available == 40
    [too_much] = await ledger.create_transfers([transfer(wallet, provider, 41)])
    assert too_much.code is R.EXCEEDS_CREDITS

    [posted] = await ledger.create_transfers([Transfer.post(uuid4(), hold.id, 45)])

    assert posted.code is R.OK
    assert posted.transfer is not None and posted.transfer.amount == 45
    assert posted.transfer.debit_account_id == wallet
    assert await balance(ledger, wallet) == Balance(debits_posted=45, credits_posted=100)
    assert await balance(ledger, provider) == Balance(credits_posted=45)
    assert await ledger.pending_state(hold.id) is TransferKind.POST
    await assert_healthy(ledger)


async def test_a_hold_resolves_exactly_once(ledger: Ledger) -> None:
    _, wallet, provider = await wallet_setup(ledger, funds=100)
    hold = transfer(wallet, provider, 60, flags=TransferFlags.PENDING)
    other = transfer(wallet, provider, 10, flags=TransferFlags.PENDING)
    await ledger.create_transfers([hold, other])

    results = await ledger.create_transfers(
        [
            Transfer.post(uuid4(), hold.id, 61),
            Transfer.post(uuid4(), hold.id),
            Transfer.post(uuid4(), hold.id, 1),
            Transfer.void(uuid4(), hold.id),
            Transfer(id=uuid4(), pending_id=other.id, amount=3, flags=TransferFlags.VOID_PENDING_TRANSFER),
            Transfer.void(uuid4(), other.id),
            Transfer.post(uuid4(), other.id),
            Transfer.post(uuid4(), uuid4()),
            Transfer.post(uuid4(), wallet),
        ]
    )

    assert codes(results) == [
        "exceeds_pending_transfer_amount",
        "ok",
        "pending_transfer_already_posted",
        "pending_transfer_already_posted",
        "pending_transfer_has_different_amount",
        "ok",
        "pending_transfer_already_voided",
        "pending_transfer_not_found",
        "pending_transfer_not_found",
    ]
    assert await balance(ledger, wallet) == Balance(debits_posted=60, credits_posted=100)
    await assert_healthy(ledger)


async def test_a_post_must_agree_with_its_hold(ledger: Ledger) -> None:
    pool, wallet, provider = await wallet_setup(ledger)
    hold = transfer(wallet, provider, 10, flags=TransferFlags.PENDING)
    plain = transfer(wallet, provider, 10)
    await ledger.create_transfers([hold, plain])
    post = TransferFlags.POST_PENDING_TRANSFER

    results = await ledger.create_transfers(
        [
            Transfer(id=uuid4(), pending_id=hold.id, debit_account_id=pool, flags=post),
            Transfer(id=uuid4(), pending_id=hold.id, credit_account_id=pool, flags=post),
            Transfer(id=uuid4(), pending_id=hold.id, ledger=5, flags=post),
            Transfer(id=uuid4(), pending_id=hold.id, code=9, flags=post),
            Transfer(id=uuid4(), pending_id=plain.id, flags=post),
            Transfer(id=uuid4(), flags=post),
        ]
    )

    assert codes(results) == [
        "pending_transfer_has_different_debit_account_id",
        "pending_transfer_has_different_credit_account_id",
        "pending_transfer_has_different_ledger",
        "pending_transfer_has_different_code",
        "pending_transfer_not_pending",
        "pending_id_must_not_be_zero",
    ]


async def test_an_expired_hold_cannot_be_posted_and_expires_once(ledger: Ledger, clock: FakeClock) -> None:
    _, wallet, provider = await wallet_setup(ledger, funds=100)
    hold = transfer(wallet, provider, 70, flags=TransferFlags.PENDING, timeout=600)
    await ledger.create_transfers([hold])
    assert await ledger.expire_pending_transfers() == []

    clock.advance(600)
    [late] = await ledger.create_transfers([Transfer.post(uuid4(), hold.id, 10)])
    expired = await ledger.expire_pending_transfers()
    again = await ledger.expire_pending_transfers()
    [after] = await ledger.create_transfers([Transfer.void(uuid4(), hold.id)])

    assert late.code is R.PENDING_TRANSFER_EXPIRED
    assert [r.id for r in expired] == [expiry_id(hold.id)]
    assert expired[0].transfer is not None and expired[0].transfer.kind is TransferKind.EXPIRE
    assert again == []
    assert after.code is R.PENDING_TRANSFER_EXPIRED
    assert await balance(ledger, wallet) == Balance(credits_posted=100)
    assert await ledger.pending_state(hold.id) is TransferKind.EXPIRE
    await assert_healthy(ledger)


async def test_a_balancing_transfer_sweeps_what_is_left(ledger: Ledger) -> None:
    _, wallet, _ = await wallet_setup(ledger, funds=100)
    [expired] = await open_accounts(ledger, 1)
    [provider] = await open_accounts(ledger, 1)
    await ledger.create_transfers([transfer(wallet, provider, 30)])
    sweep = TransferFlags.BALANCING_DEBIT

    [swept] = await ledger.create_transfers([transfer(wallet, expired, 10**12, flags=sweep)])
    [nothing] = await ledger.create_transfers([transfer(wallet, expired, 10**12, flags=sweep)])

    assert swept.code is R.OK and swept.transfer is not None and swept.transfer.amount == 70
    assert nothing.code is R.BALANCING_AMOUNT_IS_ZERO
    assert (await balance(ledger, wallet)).available == 0
    assert await balance(ledger, expired) == Balance(credits_posted=70)


async def test_a_balancing_credit_fills_up_to_the_debit_balance(ledger: Ledger) -> None:
    [source] = await open_accounts(ledger, 1)
    [capped] = await open_accounts(ledger, 1, CMNED)
    await ledger.create_transfers([transfer(capped, source, 25)])

    [filled] = await ledger.create_transfers(
        [transfer(source, capped, 100, flags=TransferFlags.BALANCING_CREDIT)]
    )

    assert filled.transfer is not None and filled.transfer.amount == 25


async def test_history_and_balance_as_of_follow_the_journal(ledger: Ledger, clock: FakeClock) -> None:
    _, wallet, provider = await wallet_setup(ledger, funds=100)
    t0 = clock.now
    t1 = clock.advance(10)
    hold = transfer(wallet, provider, 20, flags=TransferFlags.PENDING)
    await ledger.create_transfers([hold])
    t2 = clock.advance(10)
    await ledger.create_transfers([Transfer.post(uuid4(), hold.id, 15)])
    clock.advance(10)
    await ledger.create_transfers([transfer(wallet, provider, 5)])

    history = await ledger.get_account_history(wallet)

    assert [e.transfer.kind for e in history] == ["posted", "pending", "post", "posted"]
    assert [e.balance.available for e in history] == [100, 80, 85, 80]
    assert history[-1].balance == await balance(ledger, wallet)
    assert await ledger.get_balance(wallet, as_of=t0) == Balance(credits_posted=100)
    assert await ledger.get_balance(wallet, as_of=t1) == Balance(debits_pending=20, credits_posted=100)
    assert await ledger.get_balance(wallet, as_of=t2) == Balance(debits_posted=15, credits_posted=100)
    assert len(await ledger.get_account_history(wallet, since=t2)) == 2
    assert len(await ledger.get_account_history(wallet, limit=1)) == 1


async def test_accounts_are_created_once_and_conflicts_are_reported(ledger: Ledger) -> None:
    account = Account(
        id=uuid4(), ledger=EUR, code=10, flags=DMNEC, tenant="71022", metadata={"kind": "wallet"}
    )
    [created] = await ledger.create_accounts([account])

    results = await ledger.create_accounts(
        [
            account,
            Account(id=account.id, ledger=EUR, code=11),
            Account(id=uuid4(), ledger=EUR, code=1, flags=DMNEC | CMNED),
            Account(id=uuid4(), ledger=0, code=1),
            Account(id=uuid4(), ledger=EUR, code=0),
            Account(id=uuid4(), ledger=EUR, code=1, balance=Balance(credits_posted=5)),
        ]
    )

    assert created.code is CreateAccountResult.OK
    assert [r.code for r in results] == [
        CreateAccountResult.EXISTS,
        CreateAccountResult.EXISTS_WITH_DIFFERENT_FIELDS,
        CreateAccountResult.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        CreateAccountResult.LEDGER_MUST_NOT_BE_ZERO,
        CreateAccountResult.CODE_MUST_NOT_BE_ZERO,
        CreateAccountResult.BALANCES_MUST_BE_ZERO,
    ]
    [stored] = await ledger.lookup_accounts([account.id])
    assert stored.tenant == "71022" and stored.metadata == {"kind": "wallet"} and stored.flags == DMNEC


async def test_a_sharded_pool_spreads_transfers_and_sums_its_shards(ledger: Ledger) -> None:
    pool = ShardedAccount(uuid4(), shards=4)
    await ledger.create_accounts(pool.accounts(Account(id=pool.base_id, ledger=EUR, code=2)))
    wallets = await open_accounts(ledger, 12, DMNEC)

    results = await ledger.create_transfers([transfer(pool.pick(w), w, 10) for w in wallets])

    assert all(r.ok for r in results)
    assert pool.pick(wallets[0]) == pool.pick(wallets[0])
    assert len({pool.pick(w) for w in wallets}) > 1
    assert await ledger.get_balances(pool.shard_ids) == Balance(debits_posted=120)


async def test_stored_transfers_cannot_be_changed_or_deleted(ledger: Ledger) -> None:
    _, wallet, provider = await wallet_setup(ledger)
    [result] = await ledger.create_transfers([transfer(wallet, provider, 5)])

    for statement in ("UPDATE ledger_transfers SET amount = 6", "DELETE FROM ledger_transfers"):
        with pytest.raises(sa.exc.DBAPIError, match="immutable"):
            async with ledger.engine.begin() as conn:
                await conn.execute(sa.text(statement))

    [stored] = await ledger.lookup_transfers([result.id])
    assert stored.amount == 5


async def test_verify_detects_a_tampered_journal(ledger: Ledger) -> None:
    _, wallet, provider = await wallet_setup(ledger)
    await ledger.create_transfers([transfer(wallet, provider, 5)])
    await assert_healthy(ledger)
    async with ledger.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                sa.text("ALTER TABLE ledger_transfers DISABLE TRIGGER ledger_transfers_immutable")
            )
        else:
            await conn.execute(sa.text("DROP TRIGGER ledger_transfers_no_update"))
        await conn.execute(sa.text("UPDATE ledger_transfers SET amount = 6 WHERE amount = 5"))

    report = await ledger.verify()

    assert not report.ok
    assert not report.journal_ok and not report.balances_ok


def test_the_verify_command_checks_a_database(tmp_path: object) -> None:
    import asyncio

    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"

    async def prepare() -> None:
        store = Ledger.from_url(url, clock=FakeClock())
        await store.create_schema()
        _, wallet, provider = await wallet_setup(store)
        await store.create_transfers([transfer(wallet, provider, 5)])
        await store.close()

    asyncio.run(prepare())
    done = subprocess.run(
        [sys.executable, "-m", "ledger", "verify", url], capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True
    assert json.loads(done.stdout)["records"] == 2


async def test_an_atomic_batch_with_one_rejection_changes_nothing(ledger: Ledger) -> None:
    pool, wallet, provider = await wallet_setup(ledger, funds=100)

    rejected = await ledger.create_transfers(
        [transfer(pool, provider, 5), transfer(wallet, provider, 101), transfer(pool, wallet, 1)], atomic=True
    )
    accepted = await ledger.create_transfers(
        [transfer(pool, provider, 5), transfer(pool, wallet, 1)], atomic=True
    )

    assert codes(rejected) == ["linked_event_failed", "exceeds_credits", "linked_event_failed"]
    assert codes(accepted) == ["ok", "ok"]
    assert await balance(ledger, provider) == Balance(credits_posted=5)
    assert accepted[0].transfer is not None and accepted[0].transfer.flags == TransferFlags.NONE


async def test_a_session_inside_the_callers_transaction_rolls_back_with_it(ledger: Ledger) -> None:
    _, wallet, provider = await wallet_setup(ledger)

    with pytest.raises(RuntimeError, match="business rule"):
        async with ledger.engine.begin() as conn:
            await conn.execute(sa.text("SELECT 1"))
            [result] = await ledger.session(conn).create_transfers([transfer(wallet, provider, 9)])
            assert result.ok
            raise RuntimeError("a business rule failed after the payment")
    async with ledger.engine.begin() as conn:
        [kept] = await ledger.session(conn).create_transfers([transfer(wallet, provider, 4)])

    assert kept.ok
    assert await balance(ledger, provider) == Balance(credits_posted=4)
    await assert_healthy(ledger)
