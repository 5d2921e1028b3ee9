"""Request ids (issue 23): a write with a request_id runs once; transaction(fn)
gives every run's commit one id, so a commit whose answer was lost is rerun
safely."""
import asyncio
import uuid

import grpc

from sqlgate_client import Client, SqlgateError
from sqlgate_client.aio import AsyncClient


def _lose_first_answer(commit):
    """Wraps a commit function: the first call commits, then its answer is
    "lost" (raises UNKNOWN / COMMIT_OUTCOME_UNKNOWN as the gateway does when
    the database connection broke during COMMIT)."""
    calls = []

    def lossy(*args, **kwargs):
        calls.append(kwargs.get("request_id"))
        result = commit(*args, **kwargs)
        if len(calls) == 1:
            raise SqlgateError(grpc.StatusCode.UNKNOWN, "answer lost", "COMMIT_OUTCOME_UNKNOWN")
        return result

    return lossy, calls


def test_a_write_with_a_request_id_runs_once(client):
    client.execute("CREATE TABLE rid_t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    rid = uuid.uuid4().hex
    first = client.execute("INSERT INTO rid_t (v) VALUES (?)", [1], request_id=rid)
    again = client.execute("INSERT INTO rid_t (v) VALUES (?)", [1], request_id=rid)
    assert not first.replayed and again.replayed
    assert again.last_insert_id == first.last_insert_id
    batch = [("INSERT INTO rid_t (v) VALUES (?)", [2]), ("INSERT INTO rid_t (v) VALUES (?)", [3])]
    bid = uuid.uuid4().hex
    assert not any(r.replayed for r in client.batch(batch, request_id=bid))
    replay = client.batch(batch, request_id=bid)
    assert all(r.replayed for r in replay) and [r.rows_affected for r in replay] == [1, 1]
    assert client.execute("SELECT COUNT(*) FROM rid_t").rows == [(3,)]
    try:
        client.execute("INSERT INTO rid_t (v) VALUES (?)", [9], request_id=rid)
        raise AssertionError("a reused request id must be refused")
    except SqlgateError as error:
        assert error.code == grpc.StatusCode.FAILED_PRECONDITION
        assert error.reason == "REQUEST_ID_REUSED"


def test_transaction_reruns_a_lost_commit_answer_and_applies_once(client):
    client.execute("CREATE TABLE rid_balance (id INT PRIMARY KEY, n INT)")
    client.execute("INSERT INTO rid_balance VALUES (1, 0)")
    runs = []

    def bump(tx):
        runs.append(1)
        tx.execute("UPDATE rid_balance SET n = n + 1 WHERE id = 1")

    client.commit, calls = _lose_first_answer(client.commit)
    try:
        client.transaction(bump)
    finally:
        del client.commit
    assert len(runs) == 2, "the lost answer made the helper run fn again"
    assert calls[0] and calls[0] == calls[1], "both runs' commits carried one request id"
    assert client.execute("SELECT n FROM rid_balance WHERE id = 1").rows == [(1,)]
    # The gateway answered the rerun's commit as a replay.
    tx = client.begin()
    client.execute("UPDATE rid_balance SET n = n + 1 WHERE id = 1", transaction_id=tx)
    assert client.commit_result(tx, request_id=calls[0]).replayed
    assert client.execute("SELECT n FROM rid_balance WHERE id = 1").rows == [(1,)]


def test_the_async_client_passes_request_ids_too(gateway_address):
    async def main():
        async with AsyncClient(gateway_address) as db:
            await db.execute("CREATE TABLE rid_aio (id INT PRIMARY KEY, n INT)")
            await db.execute("INSERT INTO rid_aio VALUES (1, 0)")
            rid = uuid.uuid4().hex
            first = await db.execute("UPDATE rid_aio SET n = n + 1", request_id=rid)
            again = await db.execute("UPDATE rid_aio SET n = n + 1", request_id=rid)
            assert not first.replayed and again.replayed
            real_commit = db.commit
            calls = []

            async def lossy(transaction_id, *, request_id=None):
                calls.append(request_id)
                token = await real_commit(transaction_id, request_id=request_id)
                if len(calls) == 1:
                    raise SqlgateError(grpc.StatusCode.UNAVAILABLE, "gateway gone", "DATABASE_UNAVAILABLE")
                return token

            db.commit = lossy

            async def bump(tx):
                await tx.execute("UPDATE rid_aio SET n = n + 10")

            await db.transaction(bump)
            assert len(calls) == 2 and calls[0] == calls[1]
            assert (await db.execute("SELECT n FROM rid_aio")).rows == [(11,)]
    asyncio.run(main())


def test_a_read_only_transaction_is_not_recorded(client):
    # Nothing to record: the helper's id is ignored by the gateway.
    assert client.transaction(lambda tx: tx.execute("SELECT 1").rows, read_only=True) == [(1,)]


def test_client_module_is_importable_without_a_gateway():
    assert Client.transaction.__doc__ and "request id" in Client.transaction.__doc__
