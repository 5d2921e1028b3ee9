"""The Transaction stream, read consistency and commit tokens of the small
client, against the real gateway of conftest.py."""
import grpc
import pytest

from sqlgate_client import SqlgateError


def count(client, table):
    return client.execute(f"SELECT COUNT(*) FROM {table}").rows[0][0]


def test_a_transaction_stream_commits_and_answers_statement_errors_in_band(client):
    client.execute("CREATE TABLE stream_kv (k INT PRIMARY KEY, v INT NOT NULL)")
    with client.transaction_stream() as tx:
        assert len(tx.id) >= 32
        assert tx.execute("INSERT INTO stream_kv VALUES (?, ?)", [1, 10]).rows_affected == 1
        with pytest.raises(SqlgateError) as duplicate:
            tx.execute("INSERT INTO stream_kv VALUES (?, ?)", [1, 11])
        assert duplicate.value.code == grpc.StatusCode.ALREADY_EXISTS
        assert duplicate.value.errno == 1062
        assert duplicate.value.reason == "MYSQL_ERROR"
        tx.execute("INSERT INTO stream_kv VALUES (?, ?)", [2, 20])
        assert tx.execute("SELECT COUNT(*) FROM stream_kv").rows[0][0] == 2
        assert count(client, "stream_kv") == 0, "not visible before commit"
        token = tx.commit()
    assert token == "", "no replicas, no commit token"
    assert count(client, "stream_kv") == 2


def test_leaving_a_transaction_stream_without_commit_rolls_back_at_once(client):
    client.execute("CREATE TABLE stream_lock (k INT PRIMARY KEY)")
    with client.transaction_stream() as tx:
        tx.execute("INSERT INTO stream_lock VALUES (1)")
    # The row lock is gone: the same key goes in at once.
    client.execute("INSERT INTO stream_lock VALUES (1)")
    with client.transaction_stream() as tx:
        tx.execute("INSERT INTO stream_lock VALUES (2)")
        assert tx.rollback() is True
    assert count(client, "stream_lock") == 1


def test_read_consistency_options_allow_reads_only(client):
    client.execute("CREATE TABLE stream_rc (k INT PRIMARY KEY)")
    client.execute("INSERT INTO stream_rc VALUES (1)")
    # Without replicas, bounded reads are served by the primary.
    assert client.execute("SELECT k FROM stream_rc", max_staleness=5).rows == [(1,)]
    assert list(client.stream("SELECT k FROM stream_rc", max_staleness=5)) == [(1,)]
    with pytest.raises(SqlgateError) as refused:
        client.execute("DELETE FROM stream_rc", max_staleness=5)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert count(client, "stream_rc") == 1
