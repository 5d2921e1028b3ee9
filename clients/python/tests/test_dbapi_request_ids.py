"""Request ids (issue 23) in the DB-API drivers (sync and asyncio) and the
SQLAlchemy dialects (sqlgate:// and sqlgate+aio://), against the real gateway
of conftest.py: a commit rerun with the same id is answered as a replay and
the work is applied once; an id reused for other work is refused."""
import asyncio
import uuid

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

import sqlgate_client.sqlalchemy_dialect  # noqa: F401 (registers the dialects)
from sqlgate_client import aio_dbapi, dbapi


def _rid():
    return uuid.uuid4().hex


def _count(cur, table):
    cur.execute(f"SELECT COUNT(*) FROM {table}")
    return cur.fetchone()[0]


def _assert_reused(error):
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION and error.reason == "REQUEST_ID_REUSED"


def test_dbapi_commit_with_a_request_id_replays_on_the_second_attempt(gateway_address):
    with dbapi.connect(gateway_address, autocommit=True) as setup:
        setup.cursor().execute("CREATE TABLE rid_db (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    conn = dbapi.connect(gateway_address)
    try:
        cur = conn.cursor()
        rid = _rid()
        # Attempt 1 commits; say its answer was lost. Attempt 2 reruns the
        # transaction with the same id (here through the attribute).
        cur.execute("INSERT INTO rid_db (v) VALUES (?)", [1])
        conn.commit(request_id=rid)
        assert conn.replayed is False
        cur.execute("INSERT INTO rid_db (v) VALUES (?)", [1])
        conn.request_id = rid
        conn.commit()
        assert conn.replayed is True and conn.request_id is None
        assert _count(cur, "rid_db") == 1
        conn.commit()
        # The id named one commit: the next transaction commits normally.
        cur.execute("INSERT INTO rid_db (v) VALUES (?)", [2])
        conn.commit()
        assert conn.replayed is False and _count(cur, "rid_db") == 2
        conn.commit()
        # A statement's id needs autocommit; nothing is sent.
        with pytest.raises(dbapi.ProgrammingError, match="needs autocommit"):
            cur.execute("INSERT INTO rid_db (v) VALUES (?)", [3], request_id=_rid())
        assert conn.transaction_id is None
    finally:
        conn.close()


def test_dbapi_autocommit_statements_and_reused_ids(gateway_address):
    conn = dbapi.connect(gateway_address, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE rid_ac (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        rid = _rid()
        cur.execute("INSERT INTO rid_ac (v) VALUES (?)", [1], request_id=rid)
        first = (cur.rowcount, cur.lastrowid, cur.replayed)
        cur.execute("INSERT INTO rid_ac (v) VALUES (?)", [1], request_id=rid)
        assert first[2] is False and (cur.rowcount, cur.lastrowid, cur.replayed) == (first[0], first[1], True)
        bid = _rid()
        rows = [(2,), (3,)]
        assert cur.executemany("INSERT INTO rid_ac (v) VALUES (?)", rows, request_id=bid) == 2
        assert cur.replayed is False
        assert cur.executemany("INSERT INTO rid_ac (v) VALUES (?)", rows, request_id=bid) == 2
        assert cur.replayed is True
        assert _count(cur, "rid_ac") == 3
        # Too big for one ExecuteBatch: inline begin, batches, and the id on
        # the Commit; the replay has no counts.
        conn.max_batch_statements = 2
        mid, rows = _rid(), [(4,), (5,), (6,)]
        assert cur.executemany("INSERT INTO rid_ac (v) VALUES (?)", rows, request_id=mid) == 3
        assert cur.replayed is False
        assert cur.executemany("INSERT INTO rid_ac (v) VALUES (?)", rows, request_id=mid) == -1
        assert cur.replayed is True
        assert _count(cur, "rid_ac") == 6
        # The same id with other work: refused, nothing ran.
        with pytest.raises(dbapi.ProgrammingError) as refused:
            cur.execute("INSERT INTO rid_ac (v) VALUES (?)", [9], request_id=rid)
        _assert_reused(refused.value)
        # An Execute's id given to the commit of a transaction: refused too,
        # and that transaction is rolled back.
        conn.autocommit = False
        cur.execute("INSERT INTO rid_ac (v) VALUES (?)", [10])
        with pytest.raises(dbapi.ProgrammingError) as refused:
            conn.commit(request_id=rid)
        _assert_reused(refused.value)
        assert conn.replayed is False
        assert _count(cur, "rid_ac") == 6
        conn.rollback()
    finally:
        conn.close()


def test_aio_dbapi_passes_request_ids(gateway_address):
    async def main():
        conn = await aio_dbapi.connect(gateway_address)
        try:
            cur = conn.cursor()
            await conn.set_autocommit(True)
            await cur.execute("CREATE TABLE rid_aio_db (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
            rid = _rid()
            await cur.execute("INSERT INTO rid_aio_db (v) VALUES (?)", [1], request_id=rid)
            assert cur.replayed is False
            await cur.execute("INSERT INTO rid_aio_db (v) VALUES (?)", [1], request_id=rid)
            assert cur.replayed is True
            await conn.set_autocommit(False)
            cid = _rid()
            for attempt in (1, 2):
                await cur.execute("INSERT INTO rid_aio_db (v) VALUES (?)", [2])
                await conn.commit(request_id=cid)
                assert conn.replayed is (attempt == 2)
            with pytest.raises(aio_dbapi.ProgrammingError) as refused:
                await cur.execute("INSERT INTO rid_aio_db (v) VALUES (?)", [3], request_id=rid)
            assert "needs autocommit" in str(refused.value)
            await cur.execute("INSERT INTO rid_aio_db (v) VALUES (?)", [3])
            with pytest.raises(aio_dbapi.ProgrammingError) as refused:
                await conn.commit(request_id=rid)
            _assert_reused(refused.value)
            await conn.rollback()
            await cur.execute("SELECT v, COUNT(*) FROM rid_aio_db GROUP BY v ORDER BY v")
            assert await cur.fetchall() == [(1, 1), (2, 1)]
            await conn.commit()
        finally:
            await conn.close()
    asyncio.run(main())


def test_sqlalchemy_request_id_option_reaches_the_gateway(gateway_address):
    # One pooled connection, so every checkout reuses it.
    engine = sa.create_engine(f"sqlgate://{gateway_address}", pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE rid_sa (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        rid = _rid()
        replays = []
        for _ in (1, 2):  # the second attempt is the retry after a lost answer
            with engine.connect() as conn:
                conn.execution_options(request_id=rid)
                conn.execute(sa.text("INSERT INTO rid_sa (v) VALUES (1)"))
                dbapi_conn = conn.connection.dbapi_connection
                conn.commit()
                replays.append(dbapi_conn.replayed)
        assert replays == [False, True]
        # The ORM: the option on the Session's connection.
        oid = _rid()
        replays = []
        for _ in (1, 2):
            with Session(engine) as session:
                session.connection(execution_options={"request_id": oid})
                session.execute(sa.text("INSERT INTO rid_sa (v) VALUES (2)"))
                dbapi_conn = session.connection().connection.dbapi_connection
                session.commit()
                replays.append(dbapi_conn.replayed)
        assert replays == [False, True]
        # An id set but not committed is dropped when the connection goes
        # back to the pool: the next checkout commits normally.
        with engine.connect() as conn:
            conn.execution_options(request_id=oid)
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection.request_id is None
            conn.execute(sa.text("INSERT INTO rid_sa (v) VALUES (3)"))
            conn.commit()
        # AUTOCOMMIT: a statement's option names its write.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            insert = sa.text("INSERT INTO rid_sa (v) VALUES (4)")
            sid = _rid()
            results = [conn.execute(insert, execution_options={"request_id": sid}) for _ in (1, 2)]
            assert [r.context.cursor.replayed for r in results] == [False, True]
            with pytest.raises(exc.ProgrammingError) as refused:
                conn.execute(sa.text("INSERT INTO rid_sa (v) VALUES (5)"), execution_options={"request_id": sid})
            _assert_reused(refused.value.orig)
            counts = conn.execute(sa.text("SELECT v, COUNT(*) FROM rid_sa GROUP BY v ORDER BY v")).all()
        assert [tuple(r) for r in counts] == [(1, 1), (2, 1), (3, 1), (4, 1)]
        with pytest.raises(exc.ArgumentError, match="not on the Engine"):
            engine.execution_options(request_id=rid)
    finally:
        engine.dispose()


def test_sqlalchemy_aio_request_id_option_reaches_the_gateway(gateway_address):
    async def main():
        engine = create_async_engine(f"sqlgate+aio://{gateway_address}")
        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql("CREATE TABLE rid_sa_aio (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
            rid = _rid()
            replays = []
            for _ in (1, 2):
                async with engine.connect() as conn:
                    await conn.execution_options(request_id=rid)
                    await conn.execute(sa.text("INSERT INTO rid_sa_aio (v) VALUES (1)"))
                    raw = await conn.get_raw_connection()
                    await conn.commit()
                    replays.append(raw.dbapi_connection.replayed)
            assert replays == [False, True]
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                sid = _rid()
                results = [await conn.execute(sa.text("INSERT INTO rid_sa_aio (v) VALUES (2)"),
                                              execution_options={"request_id": sid}) for _ in (1, 2)]
                assert [r.context.cursor.replayed for r in results] == [False, True]
                counts = (await conn.execute(sa.text("SELECT v, COUNT(*) FROM rid_sa_aio GROUP BY v ORDER BY v"))).all()
            assert [tuple(r) for r in counts] == [(1, 1), (2, 1)]
        finally:
            await engine.dispose()
    asyncio.run(main())


def test_ddl_in_a_transaction_with_a_request_id_is_refused_not_committed_implicitly(gateway_address):
    # The implicit commit before DDL would spend the id on the work before it
    # and leave the work after it unprotected (a retry would run it twice).
    engine = sa.create_engine(f"sqlgate://{gateway_address}", pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE rid_ddl (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        rid = _rid()
        replays = []
        for attempt in (1, 2):  # the second attempt is the retry after a lost answer
            with engine.connect() as conn:
                conn.execution_options(request_id=rid)
                conn.execute(sa.text("INSERT INTO rid_ddl (v) VALUES (1)"))
                if attempt == 1:
                    with pytest.raises(exc.ProgrammingError, match="request_id") as refused:
                        conn.execute(sa.text("CREATE INDEX rid_ddl_v ON rid_ddl (v)"))
                    assert "implicit commit" in str(refused.value)
                # Nothing was committed: the transaction goes on, with its id.
                conn.execute(sa.text("INSERT INTO rid_ddl (v) VALUES (2)"))
                dbapi_conn = conn.connection.dbapi_connection
                conn.commit()
                replays.append(dbapi_conn.replayed)
        assert replays == [False, True]
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT v, COUNT(*) FROM rid_ddl GROUP BY v ORDER BY v")).all()
            assert [tuple(r) for r in rows] == [(1, 1), (2, 1)]
            indexes = conn.execute(sa.text("SHOW INDEX FROM rid_ddl WHERE Key_name = 'rid_ddl_v'")).all()
            assert indexes == []
        # Without a request id the DDL still commits implicitly, as in MySQL.
        with engine.connect() as conn:
            conn.execute(sa.text("INSERT INTO rid_ddl (v) VALUES (3)"))
            conn.execute(sa.text("CREATE INDEX rid_ddl_v ON rid_ddl (v)"))
            conn.rollback()
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT COUNT(*) FROM rid_ddl WHERE v = 3")) == 1
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS rid_ddl")
        engine.dispose()
