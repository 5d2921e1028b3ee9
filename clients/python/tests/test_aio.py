"""The asyncio client against the real gateway of conftest.py (each test runs
its own event loop with asyncio.run: no plugin needed)."""
import asyncio
import decimal

import grpc
import pytest

from sqlgate_client import SqlgateError, TransactionAborted
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
