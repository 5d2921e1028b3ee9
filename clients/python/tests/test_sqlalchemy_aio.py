"""SQLAlchemy's asyncio extension on the sqlgate+aio:// dialect (the asyncio
DB-API, aio_dbapi), against the real gateway of conftest.py."""
import asyncio
import os
import sys

import pytest
from sqlalchemy import Integer, String, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import sqlgate_client.sqlalchemy_dialect  # noqa: F401 (registers sqlgate+aio://)
from sqlgate_client import aio_dbapi
from sqlgate_client.sqlalchemy_aio import SqlgateAsyncDialect

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
import async_orders  # noqa: E402


def test_the_fastapi_style_example_runs(gateway_address):
    """20 concurrent requests for 15 widgets: 15 orders, 5 refusals, stock 0."""
    results, stock = asyncio.run(async_orders.main(f"sqlgate+aio://{gateway_address}", requests=20))
    orders = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, async_orders.OutOfStock)]
    assert (len(orders), len(refused), stock) == (15, 5, {"widget": 0}), results
    assert len({o["order"] for o in orders}) == 15 and all(o["total"] == "2.50" for o in orders)


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "aio_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    body: Mapped[str] = mapped_column(String(20))


def test_async_engine_core_orm_streams_and_big_results(gateway_address):
    async def main():
        engine = create_async_engine(f"sqlgate+aio://{gateway_address}")
        assert isinstance(engine.dialect, SqlgateAsyncDialect) and engine.dialect.is_async
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with AsyncSession(engine) as session:
            session.add_all([Note(id=i, body=f"note {i}") for i in range(1, 2001)])
            await session.commit()  # an executemany of multi-row INSERTs
            assert (await session.scalar(select(Note.body).where(Note.id == 7))) == "note 7"
            await session.rollback()
        async with engine.connect() as conn:
            # Buffered past the gateway's unary cap, as with aiomysql.
            rows = (await conn.execute(text("SELECT seq FROM seq_1_to_25000"))).all()
            assert len(rows) == 25000 and rows[-1] == (25000,)
            # Streamed: AsyncResult over the server-side cursor (ExecuteStream).
            result = await conn.stream(text("SELECT seq FROM seq_1_to_30000"))
            assert isinstance(result._real_result.cursor._cursor, aio_dbapi.AsyncSSCursor)
            total = 0
            async for partition in result.partitions(1000):
                assert len(partition) == 1000
                total += sum(seq for (seq,) in partition)
            assert total == 30000 * 30001 // 2
            await conn.rollback()
            assert (await conn.scalar(text("SELECT COUNT(*) FROM aio_notes"))) == 2000
        await engine.dispose()
    asyncio.run(main())


def test_async_engine_never_commits_past_an_ended_transaction(gateway_address):
    """The ORM lock scenario through the async engine: INSERT, then
    with_for_update(nowait=True) on a row another session holds, then
    commit: the INSERT is committed (the gateway kept the transaction) or
    commit raises — never a commit without it."""
    async def main():
        engine = create_async_engine(f"sqlgate+aio://{gateway_address}")
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE aio_locks (id INT PRIMARY KEY, body VARCHAR(20))"))
            await conn.execute(text("INSERT INTO aio_locks VALUES (1, 'locked')"))
        holder = await engine.connect()
        await holder.execute(text("SELECT * FROM aio_locks WHERE id = 1 FOR UPDATE"))
        try:
            async with AsyncSession(engine) as session:
                await session.execute(text("INSERT INTO aio_locks VALUES (2, 'before')"))
                with pytest.raises(OperationalError) as locked:
                    await session.execute(text("SELECT * FROM aio_locks WHERE id = 1 FOR UPDATE NOWAIT"))
                assert locked.value.orig.errno == 1205
                kept = locked.value.orig.metadata.get("transaction_open") == "true"
                assert kept  # the gateway keeps the transaction after 1205, as MariaDB does
                try:
                    await session.commit()
                    committed = True
                except OperationalError as error:
                    assert "call rollback()" in str(error.orig)
                    committed = False
                    await session.rollback()
        finally:
            await holder.rollback()
            await holder.close()
        async with engine.connect() as conn:
            ids = set((await conn.execute(text("SELECT id FROM aio_locks"))).scalars())
        assert committed == kept and ids == ({1, 2} if kept else {1})
        await engine.dispose()
    asyncio.run(main())


def test_aio_dbapi_raises_until_rollback_after_the_transaction_is_gone(gateway_address):
    async def main():
        conn = await aio_dbapi.connect(gateway_address)
        try:
            cur = conn.cursor()
            await cur.execute("SELECT 1")
            await conn._unary("Rollback", aio_dbapi.pb.RollbackRequest(transaction_id=conn.transaction_id))
            with pytest.raises(aio_dbapi.Error) as gone:
                await cur.execute("SELECT 2")
            assert conn.transaction_ended_by is gone.value
            for call in (lambda: cur.execute("SELECT 3"), conn.commit):
                with pytest.raises(type(gone.value), match="call rollback"):
                    await call()
            await conn.rollback()
            await cur.execute("SELECT seq FROM seq_1_to_15000")  # buffered past the unary cap
            assert len(await cur.fetchall()) == 15000 and conn.transaction_id
            big = conn.cursor(aio_dbapi.AsyncSSCursor)
            await big.execute("SELECT seq FROM seq_1_to_3000")
            assert [r async for r in big][-1] == (3000,) and big.rowcount == 3000
            await conn.commit()
        finally:
            await conn.close()
    asyncio.run(main())
