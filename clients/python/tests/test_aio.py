"""The asyncio client against the real gateway of conftest.py (each test runs
its own event loop with asyncio.run: no plugin needed)."""
import asyncio
import decimal
import random

import grpc
import pytest

from sqlgate_client import RetryPolicy, SqlgateError, TransactionAborted, TransactionEnded
from sqlgate_client.aio import AsyncClient


def test_calls_values_and_streams(gateway_address):
    async def main():
        async with AsyncClient(gateway_address) as db:
            await db.execute("CREATE TABLE aio_t (id INT PRIMARY KEY, d DECIMAL(30,10), s VARCHAR(10))")
            result = await db.execute("INSERT INTO aio_t VALUES (?, ?, ?)",
                                      [1, decimal.Decimal("12345678901234567890.0123456789"), "😀"])
            assert result.rows_affected == 1
            rows = (await db.execute("SELECT d, s FROM aio_t WHERE id = ?", [1])).rows
            assert rows == [(decimal.Decimal("12345678901234567890.0123456789"), "😀")]
            streamed = [row async for row in db.stream("SELECT seq FROM seq_1_to_50000")]
            assert len(streamed) == 50000 and streamed[-1] == (50000,)
            with pytest.raises(SqlgateError) as duplicate:
                await db.execute("INSERT INTO aio_t VALUES (1, 0, 'x')")
            assert duplicate.value.code == grpc.StatusCode.ALREADY_EXISTS
            assert duplicate.value.errno == 1062
    asyncio.run(main())


def test_concurrent_transfers_retry_deadlocks_and_keep_the_total(gateway_address):
    async def main():
        async with AsyncClient(gateway_address) as db:
            await db.execute("CREATE TABLE aio_accounts (id INT PRIMARY KEY, balance INT NOT NULL)")
            await db.execute("INSERT INTO aio_accounts VALUES (1, 100), (2, 100), (3, 100)")

            async def transfer(source, target):
                async def work(tx):
                    for account, delta in ((source, -1), (target, 1)):
                        await tx.execute("UPDATE aio_accounts SET balance = balance + ? WHERE id = ?",
                                         [delta, account])
                try:
                    await db.transaction(work)
                except TransactionAborted:
                    raise AssertionError("a deadlock victim was not retried")

            pairs = [(1 + i % 3, 1 + (i + 1 + i // 3) % 3) for i in range(60)]
            await asyncio.gather(*(transfer(a, b) for a, b in pairs if a != b))
            total = (await db.execute("SELECT SUM(balance) FROM aio_accounts")).rows[0][0]
            assert int(total) == 300
    asyncio.run(main())


def test_a_failed_transaction_rolls_back(gateway_address):
    async def main():
        async with AsyncClient(gateway_address) as db:
            await db.execute("CREATE TABLE aio_rb (id INT PRIMARY KEY)")

            async def work(tx):
                await tx.execute("INSERT INTO aio_rb VALUES (1)")
                raise RuntimeError("the work fails")

            with pytest.raises(RuntimeError):
                await db.transaction(work)
            assert (await db.execute("SELECT COUNT(*) FROM aio_rb")).rows[0][0] == 0
    asyncio.run(main())


def test_a_hot_spot_of_4_accounts_holds_at_100_tasks(gateway_address):
    """100 asyncio tasks x 4 transfers between random pairs of 4 accounts:
    deadlocks all the time, each retried by transaction(fn)'s jittered
    exponential back-off (RetryPolicy): no transfer fails, the total is kept."""
    async def main():
        async with AsyncClient(gateway_address) as db:
            await db.execute("CREATE TABLE aio_hot (id INT PRIMARY KEY, balance INT NOT NULL)")
            await db.execute("INSERT INTO aio_hot VALUES (1, 1000), (2, 1000), (3, 1000), (4, 1000)")
            rng = random.Random(22)
            runs, failures = [0], []

            async def worker():
                for _ in range(4):
                    source, target = rng.sample([1, 2, 3, 4], 2)

                    async def work(tx):
                        runs[0] += 1
                        await tx.execute("UPDATE aio_hot SET balance = balance - 1 WHERE id = ?", [source])
                        await tx.execute("UPDATE aio_hot SET balance = balance + 1 WHERE id = ?", [target])
                    try:
                        await db.transaction(work)
                    except SqlgateError as error:
                        failures.append(error)

            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(100))), 60)
            assert failures == []
            assert runs[0] > 400, "no transfer was retried: the test did not make a hot spot"
            rows = (await db.execute("SELECT id, balance FROM aio_hot ORDER BY id")).rows
            assert sum(balance for _, balance in rows) == 4000
    asyncio.run(main())


def test_retry_policy_backs_off_with_jitter_up_to_its_limit():
    policy = RetryPolicy(attempts=5, backoff=0.01, max_backoff=0.1, rng=random.Random(1))
    for failed_runs, bound in ((1, 0.01), (2, 0.02), (3, 0.04), (4, 0.08), (5, 0.1), (40, 0.1)):
        delays = [policy.delay(failed_runs) for _ in range(200)]
        assert all(bound / 2 <= d <= bound for d in delays) and len(set(delays)) > 100
    aborted = SqlgateError(grpc.StatusCode.ABORTED, "deadlock", "MYSQL_ERROR", {"errno": "1213"})
    lock_wait = SqlgateError(grpc.StatusCode.FAILED_PRECONDITION, "lock wait", "MYSQL_ERROR", {"errno": "1205"})
    busy = SqlgateError(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", "TOO_MANY_TRANSACTIONS")
    too_big = SqlgateError(grpc.StatusCode.RESOURCE_EXHAUSTED, "big", "RESULT_TOO_LARGE")
    duplicate = SqlgateError(grpc.StatusCode.ALREADY_EXISTS, "dup", "MYSQL_ERROR", {"errno": "1062"})
    assert [RetryPolicy.retryable(e) for e in (aborted, lock_wait, busy, too_big, duplicate)] == [
        True, True, True, False, False]
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_attempts_limit_then_the_last_error(gateway_address):
    async def main():
        async with AsyncClient(gateway_address) as db:
            runs = []

            async def always_aborted(tx):
                runs.append(tx.id)
                raise TransactionAborted(grpc.StatusCode.ABORTED, "deadlock", "MYSQL_ERROR", {"errno": "1213"})

            with pytest.raises(TransactionAborted):
                await db.transaction(always_aborted, policy=RetryPolicy(attempts=3, backoff=0.001))
            assert len(runs) == 3 and len(set(runs)) == 3  # three transactions, then the error
    asyncio.run(main())


def test_a_transaction_ended_under_fn_raises_until_the_helper_gives_up(gateway_address):
    """fn that swallows the error that ended its transaction cannot get a
    commit: later calls raise TransactionEnded, and so does transaction()."""
    async def main():
        async with AsyncClient(gateway_address) as db:
            await db.execute("CREATE TABLE aio_ended (id INT PRIMARY KEY)")
            seen = []

            async def swallowing(tx):
                await tx.execute("INSERT INTO aio_ended VALUES (1)")
                await db.rollback(tx.id)  # behind the helper's back: the transaction is gone
                try:
                    await tx.execute("INSERT INTO aio_ended VALUES (2)")
                except SqlgateError as error:
                    seen.append(error)
                with pytest.raises(TransactionEnded):
                    await tx.execute("INSERT INTO aio_ended VALUES (3)")

            with pytest.raises(TransactionEnded) as ended:
                await db.transaction(swallowing, policy=RetryPolicy(attempts=2, backoff=0.001))
            assert len(seen) == 1 and ended.value.cause is seen[0]
            assert (await db.execute("SELECT COUNT(*) FROM aio_ended")).rows[0][0] == 0
    asyncio.run(main())
