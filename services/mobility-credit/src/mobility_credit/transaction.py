"""One command, one transaction: retries on races, the ledger inside it, stored idempotent answers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from eventbus import UnitOfWork, UnitOfWorkFactory
from ledger import CreateTransferResult, LedgerSession, Transfer, TransferResult, is_retryable
from mobility_credit import domain, store

T = TypeVar("T")
_ATTEMPTS = 8
INSERT_ANSWER = sa.insert(store.idempotency_keys)
_K = store.idempotency_keys
_SELECT_ANSWERS = sa.select(_K.c.scope, _K.c.key, _K.c.request_hash, _K.c.status_code, _K.c.response).where(
    sa.tuple_(_K.c.scope, _K.c.key).in_(sa.bindparam("keys", expanding=True))
)

# Ledger result codes that are the client's problem, each as the service's own named error.
_LEDGER_ERRORS: dict[CreateTransferResult, type[domain.MobilityCreditError]] = {
    CreateTransferResult.EXCEEDS_CREDITS: domain.InsufficientBudget,
    CreateTransferResult.PENDING_TRANSFER_EXPIRED: domain.HoldExpired,
    CreateTransferResult.EXCEEDS_PENDING_TRANSFER_AMOUNT: domain.CaptureExceedsHold,
    CreateTransferResult.PENDING_TRANSFER_ALREADY_POSTED: domain.HoldNotOpen,
    CreateTransferResult.PENDING_TRANSFER_ALREADY_VOIDED: domain.HoldNotOpen,
    CreateTransferResult.EXISTS_WITH_DIFFERENT_FIELDS: domain.Conflict,
    CreateTransferResult.DEBIT_ACCOUNT_NOT_FOUND: domain.NotFound,
    CreateTransferResult.CREDIT_ACCOUNT_NOT_FOUND: domain.NotFound,
}


def now() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def run_command(uow_factory: UnitOfWorkFactory, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run `work` in one unit of work; a deadlock or a race on the same id is run again from the start."""
    for attempt in range(_ATTEMPTS):
        try:
            async with uow_factory() as uow:
                return await work(uow)
        except domain.MobilityCreditError:
            raise
        except Exception as error:
            if attempt + 1 >= _ATTEMPTS or not is_retryable(error):
                raise
            await asyncio.sleep(random.uniform(0, 0.003 * (attempt + 1)))
    raise AssertionError("unreachable")


async def ledger_session(uow: UnitOfWork) -> LedgerSession:
    return LedgerSession(await uow.session.connection())


async def transfer(uow: UnitOfWork, transfers: Sequence[Transfer]) -> list[TransferResult]:
    """Write transfers in this transaction, all or nothing; a refusal raises (the transaction rolls back)."""
    session = await ledger_session(uow)
    results = await session.create_transfers(transfers, atomic=len(transfers) > 1)
    for result in results:
        if not result.ok:
            raise ledger_error(result)
    return results


def ledger_error(result: TransferResult) -> domain.MobilityCreditError:
    error_type = _LEDGER_ERRORS.get(result.code)
    if error_type is None:
        return domain.LedgerRejected(f"the ledger refused the transfer: {result.code.value}")
    error = error_type(f"the ledger refused the transfer: {result.code.value}")
    return error


def request_hash(operation: str, body: Any) -> str:
    text = json.dumps({"op": operation, "body": body}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


StoredAnswer = tuple[str, int, dict[str, Any]]  # request hash, status code, response body


async def stored_answers(
    uow: UnitOfWork, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], StoredAnswer]:
    """The answers stored under these (scope, key) pairs, read in one statement."""
    if not keys:
        return {}
    connection = await uow.session.connection()
    rows = await connection.execute(_SELECT_ANSWERS, {"keys": sorted(set(keys))})
    return {(row.scope, row.key): (row.request_hash, row.status_code, dict(row.response)) for row in rows}


def replayed(stored: StoredAnswer, digest: str) -> tuple[int, dict[str, Any]]:
    """The earlier answer to this request; another body under the same key is a conflict."""
    request_hash, status, response = stored
    if request_hash != digest:
        raise domain.IdempotencyConflict("this Idempotency-Key was used for another request")
    return status, response


async def stored_answer(
    uow: UnitOfWork, scope: str, key: str, digest: str
) -> tuple[int, dict[str, Any]] | None:
    """The answer given to an earlier request with this key; another body under the same key is a conflict."""
    stored = (await stored_answers(uow, [(scope, key)])).get((scope, key))
    return None if stored is None else replayed(stored, digest)


def answer_row(scope: str, key: str, digest: str, status: int, response: dict[str, Any]) -> dict[str, Any]:
    return {
        "scope": scope,
        "key": key,
        "request_hash": digest,
        "status_code": status,
        "response": response,
        "created_at": now(),
    }


async def remember_answer(
    uow: UnitOfWork, scope: str, key: str, digest: str, status: int, response: dict[str, Any]
) -> None:
    # A concurrent request with the same key makes this insert fail; the retry then replays its answer.
    await uow.session.execute(INSERT_ANSWER, answer_row(scope, key, digest, status, response))


class _Replay(Exception):
    """An earlier answer found after the command failed; raised so that the failed attempt rolls back."""

    def __init__(self, answer: tuple[int, dict[str, Any]]) -> None:
        super().__init__("replay")
        self.answer = answer


async def idempotent(
    uow_factory: UnitOfWorkFactory,
    *,
    scope: str,
    key: str,
    operation: str,
    body: Any,
    work: Callable[[UnitOfWork], Awaitable[tuple[int, dict[str, Any]]]],
) -> tuple[int, dict[str, Any]]:
    """Run a provider command once per key: the answer is stored with the effect, in the same transaction.

    New keys are the common case, so the first attempt does not look the key up: a used key makes the final
    insert fail (a unique violation, retried), and the retry replays. A command refused on the first attempt
    looks the key up before answering, because a replay may be refused where the original was not.
    """
    digest = request_hash(operation, body)
    attempts = 0

    async def once(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            earlier = await stored_answer(uow, scope, key, digest)
            if earlier is not None:
                return earlier
        try:
            status, response = await work(uow)
        except domain.MobilityCreditError:
            earlier = await stored_answer(uow, scope, key, digest) if attempts == 1 else None
            if earlier is not None:
                raise _Replay(earlier) from None
            raise
        await remember_answer(uow, scope, key, digest, status, response)
        return status, response

    try:
        return await run_command(uow_factory, once)
    except _Replay as replay:
        return replay.answer
