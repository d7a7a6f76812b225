"""Hypothesis drives the SQLite store and an in-memory model side by side, checking invariants every step."""

from __future__ import annotations

import asyncio
import copy
import os
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger import (
    Account,
    AccountFlags,
    Balance,
    CreateTransferResult,
    Ledger,
    Transfer,
    TransferFlags,
    TransferKind,
)
from ledger.tables import metadata
from ledger.testing import FakeClock

R = CreateTransferResult
# Every step runs several queries, so shrinking a failure takes minutes: the fast tier reports it unshrunk.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
EXAMPLES = int(os.environ.get("LEDGER_STATEFUL_EXAMPLES", "20"))
T = TypeVar("T")
DMNEC = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
CMNED = AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS


@dataclass
class ModelAccount:
    ledger: int
    flags: AccountFlags
    balance: list[int] = field(default_factory=lambda: [0, 0, 0, 0])


@dataclass
class Hold:
    debit: UUID
    credit: UUID
    amount: int
    expires_at: datetime | None
    resolution: TransferKind | None = None


@dataclass
class ModelState:
    accounts: dict[UUID, ModelAccount] = field(default_factory=dict)
    sent: dict[UUID, Transfer] = field(default_factory=dict)
    holds: dict[UUID, Hold] = field(default_factory=dict)


def apply_model(state: ModelState, t: Transfer, now: datetime) -> CreateTransferResult:
    """The expected result of one transfer, mutating `state` on success: the rules written out plainly."""
    if t.id in state.sent:
        return R.EXISTS if state.sent[t.id] == t else R.EXISTS_WITH_DIFFERENT_FIELDS
    if t.amount < 0:
        return R.AMOUNT_MUST_BE_POSITIVE
    if t.flags & (TransferFlags.POST_PENDING_TRANSFER | TransferFlags.VOID_PENDING_TRANSFER):
        code = _resolve(state, t, now)
    else:
        code = _create(state, t, now)
    if code is R.OK:
        state.sent[t.id] = t
    return code


def _create(state: ModelState, t: Transfer, now: datetime) -> CreateTransferResult:
    assert t.debit_account_id is not None and t.credit_account_id is not None
    if t.debit_account_id == t.credit_account_id:
        return R.ACCOUNTS_MUST_BE_DIFFERENT
    if t.amount == 0:
        return R.AMOUNT_MUST_NOT_BE_ZERO
    dr = state.accounts.get(t.debit_account_id)
    if dr is None:
        return R.DEBIT_ACCOUNT_NOT_FOUND
    cr = state.accounts.get(t.credit_account_id)
    if cr is None:
        return R.CREDIT_ACCOUNT_NOT_FOUND
    if dr.ledger != cr.ledger:
        return R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
    if t.ledger != dr.ledger:
        return R.LEDGER_MUST_MATCH
    amount = t.amount
    if t.flags & TransferFlags.BALANCING_DEBIT:
        amount = min(amount, max(0, dr.balance[3] - dr.balance[1] - dr.balance[0]))
        if amount == 0:
            return R.BALANCING_AMOUNT_IS_ZERO
    if dr.flags & DMNEC and dr.balance[0] + dr.balance[1] + amount > dr.balance[3]:
        return R.EXCEEDS_CREDITS
    if cr.flags & CMNED and cr.balance[2] + cr.balance[3] + amount > cr.balance[1]:
        return R.EXCEEDS_DEBITS
    pending = bool(t.flags & TransferFlags.PENDING)
    dr.balance[0 if pending else 1] += amount
    cr.balance[2 if pending else 3] += amount
    if pending:
        expires = now + timedelta(seconds=t.timeout) if t.timeout else None
        state.holds[t.id] = Hold(t.debit_account_id, t.credit_account_id, amount, expires)
    return R.OK


def _resolve(state: ModelState, t: Transfer, now: datetime) -> CreateTransferResult:
    assert t.pending_id is not None
    hold = state.holds.get(t.pending_id)
    if hold is None:
        return R.PENDING_TRANSFER_NOT_PENDING if t.pending_id in state.sent else R.PENDING_TRANSFER_NOT_FOUND
    posting = bool(t.flags & TransferFlags.POST_PENDING_TRANSFER)
    if posting and t.amount > hold.amount:
        return R.EXCEEDS_PENDING_TRANSFER_AMOUNT
    if hold.resolution is TransferKind.POST:
        return R.PENDING_TRANSFER_ALREADY_POSTED
    if hold.resolution is TransferKind.VOID:
        return R.PENDING_TRANSFER_ALREADY_VOIDED
    if hold.resolution is TransferKind.EXPIRE or (hold.expires_at is not None and now >= hold.expires_at):
        return R.PENDING_TRANSFER_EXPIRED
    _release(state, hold)
    if posting:
        amount = t.amount or hold.amount
        state.accounts[hold.debit].balance[1] += amount
        state.accounts[hold.credit].balance[3] += amount
    hold.resolution = TransferKind.POST if posting else TransferKind.VOID
    return R.OK


def _release(state: ModelState, hold: Hold) -> None:
    state.accounts[hold.debit].balance[0] -= hold.amount
    state.accounts[hold.credit].balance[2] -= hold.amount


class LedgerMachine(RuleBasedStateMachine):
    """Checks: balanced sums per ledger, positive amounts, never-negative accounts, idempotent replays and
    explicit conflicts, an immutable verified journal, balances equal to the fold of their entries (also as of
    past moments), and holds that resolve exactly once (DOMAIN.md 1-7)."""

    # A PostgreSQL database reused (emptied) for each example; None: a fresh SQLite file per example.
    url: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = tempfile.mkdtemp(prefix="ledger-stateful-")
        self.clock = FakeClock()
        url = self.url or f"sqlite+aiosqlite:///{self.folder}/ledger.db"
        self.ledger = Ledger.from_url(url, clock=self.clock, chains=2)
        if self.url:
            self.run(self.drop_tables())
        self.run(self.ledger.create_schema())
        self.model = ModelState()
        self.ids: list[UUID] = []
        self.snapshots: list[tuple[datetime, dict[UUID, list[int]]]] = []

    async def drop_tables(self) -> None:
        async with self.ledger.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def teardown(self) -> None:
        self.run(self.ledger.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def snapshot(self) -> None:
        self.snapshots.append((self.clock.now, {i: list(a.balance) for i, a in self.model.accounts.items()}))

    def account_id(self, index: int) -> UUID:
        accounts = list(self.model.accounts)
        return accounts[index % len(accounts)] if index >= 0 else UUID(int=abs(index) + 1)

    def submit(self, transfers: list[Transfer], expected: list[CreateTransferResult]) -> None:
        results = self.run(self.ledger.create_transfers(transfers))
        assert [r.code for r in results] == expected, (transfers, results)
        for result in results:
            if result.code is R.EXISTS:
                assert result.transfer is not None and result.transfer.id == result.id
        self.ids.extend(t.id for t in transfers)
        self.snapshot()

    @rule(ledger=st.sampled_from([1, 1, 2]), flags=st.sampled_from([AccountFlags.NONE, DMNEC, DMNEC, CMNED]))
    def open_account(self, ledger: int, flags: AccountFlags) -> None:
        account = Account(id=uuid4(), ledger=ledger, code=1, flags=flags)
        [result] = self.run(self.ledger.create_accounts([account]))
        assert result.ok
        self.model.accounts[account.id] = ModelAccount(ledger, flags)

    def make_transfer(self, debit: int, credit: int, amount: int, kind: str, wrong_ledger: bool) -> Transfer:
        debit_id, credit_id = self.account_id(debit), self.account_id(credit)
        found = self.model.accounts.get(debit_id)
        ledger = (found.ledger if found else 1) + (1 if wrong_ledger else 0)
        flags = {
            "plain": TransferFlags.NONE,
            "pending": TransferFlags.PENDING,
            "balancing": TransferFlags.BALANCING_DEBIT,
        }[kind]
        timeout = 60 if kind == "pending" and amount % 2 else 0
        return Transfer(uuid4(), debit_id, credit_id, amount, ledger, 1, flags, timeout=timeout)

    @precondition(lambda self: len(self.model.accounts) >= 2)
    @rule(
        debit=st.integers(-1, 8),
        credit=st.integers(-1, 8),
        amount=st.integers(-2, 120),
        kind=st.sampled_from(["plain", "plain", "pending", "balancing"]),
        wrong_ledger=st.integers(0, 9).map(lambda n: n == 0),
    )
    def transfer(self, debit: int, credit: int, amount: int, kind: str, wrong_ledger: bool) -> None:
        t = self.make_transfer(debit, credit, amount, kind, wrong_ledger)
        expected = apply_model(self.model, t, self.clock.now)
        self.submit([t], [expected])

    @precondition(lambda self: len(self.model.accounts) >= 2)
    @rule(
        first=st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(0, 150)),
        second=st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(0, 150)),
    )
    def linked_pair(self, first: tuple[int, int, int], second: tuple[int, int, int]) -> None:
        one = self.make_transfer(*first, "plain", False)
        two = self.make_transfer(*second, "plain", False)
        one = Transfer(one.id, one.debit_account_id, one.credit_account_id, one.amount, one.ledger, 1,
                       TransferFlags.LINKED)  # fmt: skip
        trial = copy.deepcopy(self.model)
        expected: list[CreateTransferResult]
        code_one = apply_model(trial, one, self.clock.now)
        if code_one is not R.OK:
            expected = [code_one, R.LINKED_EVENT_FAILED]
        else:
            code_two = apply_model(trial, two, self.clock.now)
            expected = [R.OK, R.OK] if code_two is R.OK else [R.LINKED_EVENT_FAILED, code_two]
            if code_two is R.OK:
                self.model = trial
        self.submit([one, two], expected)

    @precondition(lambda self: bool(self.model.holds))
    @rule(choice=st.integers(0, 50), amount=st.integers(0, 130), post=st.booleans())
    def resolve_hold(self, choice: int, amount: int, post: bool) -> None:
        holds = list(self.model.holds)
        pending_id = holds[choice % len(holds)]
        t = Transfer.post(uuid4(), pending_id, amount) if post else Transfer.void(uuid4(), pending_id)
        expected = apply_model(self.model, t, self.clock.now)
        self.submit([t], [expected])

    @precondition(lambda self: bool(self.ids))
    @rule(choice=st.integers(0, 500), change=st.booleans())
    def replay(self, choice: int, change: bool) -> None:
        original_id = self.ids[choice % len(self.ids)]
        original = self.model.sent.get(original_id)
        if original is None:
            return
        t = Transfer(**{**_fields(original), "code": 2}) if change else original
        expected = R.EXISTS_WITH_DIFFERENT_FIELDS if change else R.EXISTS
        if original.flags & TransferFlags.LINKED and not change:
            # Sent alone, the first member of a linked pair is a chain left open.
            expected = R.LINKED_EVENT_CHAIN_OPEN
        self.submit([t], [expected])

    @rule(seconds=st.sampled_from([1, 30, 61]))
    def advance_clock(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def expire_holds(self) -> None:
        due = [
            pid
            for pid, hold in self.model.holds.items()
            if hold.resolution is None and hold.expires_at is not None and self.clock.now >= hold.expires_at
        ]
        results = self.run(self.ledger.expire_pending_transfers())
        assert sorted(
            r.transfer.pending_id for r in results if r.transfer and r.transfer.pending_id
        ) == sorted(due)
        for pid in due:
            _release(self.model, self.model.holds[pid])
            self.model.holds[pid].resolution = TransferKind.EXPIRE
        self.snapshot()

    @invariant()
    def balances_match_the_model(self) -> None:
        stored = self.run(self.ledger.lookup_accounts(self.model.accounts))
        for account in stored:
            expected = self.model.accounts[account.id].balance
            assert list(_as_list(account.balance)) == expected, account

    @invariant()
    def journal_and_invariants_verify(self) -> None:
        report = self.run(self.ledger.verify())
        assert report.ok, report.problems

    @precondition(lambda self: bool(self.snapshots) and bool(self.model.accounts))
    @invariant()
    def balance_as_of_a_past_moment_matches(self) -> None:
        moment, balances = self.snapshots[len(self.snapshots) // 2]
        later = [s for s in self.snapshots if s[0] == moment]
        moment, balances = later[-1]
        for account_id, expected in list(balances.items())[:3]:
            as_of = self.run(self.ledger.get_balance(account_id, as_of=moment))
            assert list(_as_list(as_of)) == expected

    @invariant()
    def holds_resolve_at_most_once(self) -> None:
        for pending_id, hold in list(self.model.holds.items())[:5]:
            state = self.run(self.ledger.pending_state(pending_id))
            assert state == hold.resolution


def _fields(t: Transfer) -> dict[str, Any]:
    return {name: getattr(t, name) for name in Transfer.__dataclass_fields__}


def _as_list(balance: Balance) -> tuple[int, int, int, int]:
    return (balance.debits_pending, balance.debits_posted, balance.credits_pending, balance.credits_posted)


def machine_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        phases=PHASES,
    )


def test_the_store_behaves_like_the_model() -> None:
    run_state_machine_as_test(LedgerMachine, settings=machine_settings(EXAMPLES))


@pytest.mark.postgres
def test_the_postgres_batch_path_behaves_like_the_model(postgres_url: str) -> None:
    machine = type("PostgresLedgerMachine", (LedgerMachine,), {"url": postgres_url})
    run_state_machine_as_test(machine, settings=machine_settings(max(5, EXAMPLES // 3)))
