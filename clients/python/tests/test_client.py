import datetime
import decimal
import threading

import grpc
import pytest

from sqlgate_client import Json, SqlgateError, TransactionAborted


def test_every_python_type_round_trips(client):
    client.execute(
        "CREATE TABLE types (id INT PRIMARY KEY, big BIGINT UNSIGNED, neg BIGINT, d DECIMAL(65,30), "
        "dt DATETIME(6), day DATE, t TIME(6), b BLOB, s VARCHAR(20), f DOUBLE, n INT, j JSON)"
    )
    values = (
        1,
        18446744073709551615,
        -9223372036854775808,
        decimal.Decimal("12345678901234567890123456789012345.123456789012345678901234567890"),
        datetime.datetime(9999, 12, 31, 23, 59, 59, 999999),
        datetime.date(2024, 2, 29),
        -datetime.timedelta(hours=838, minutes=59, seconds=59),
        b"",
        "😀𝄞",
        0.1,
        None,
        Json({"k": [1, 2]}),
    )
    client.execute("INSERT INTO types VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
    row = client.execute("SELECT * FROM types").rows[0]
    assert row[:11] == values[:11]
    assert isinstance(row[3], decimal.Decimal)
    assert row[7] == b"" and row[10] is None
    # MariaDB's JSON is LONGTEXT: text comes back.
    assert row[11] == '{"k": [1, 2]}'


def test_datetimes_before_year_1000_round_trip(client):
    # The year goes as four digits ("0001-03-04 ..."): strftime("%Y") would
    # send "1-03-04", which the gateway rejects as a malformed datetime_value.
    client.execute("CREATE TABLE old_times (id INT PRIMARY KEY, dt DATETIME(6), day DATE)")
    years = [1, 99, 100, 999, 1000, 1752]
    for i, year in enumerate(years):
        client.execute("INSERT INTO old_times VALUES (?, ?, ?)",
                       [i, datetime.datetime(year, 3, 4, 5, 6, 7, 8), datetime.date(year, 3, 4)])
    rows = client.execute("SELECT dt, day FROM old_times ORDER BY id").rows
    assert rows == [(datetime.datetime(y, 3, 4, 5, 6, 7, 8), datetime.date(y, 3, 4)) for y in years]
    aware = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert client.execute("SELECT CAST(? AS DATETIME)", [aware]).rows == [(datetime.datetime(2024, 1, 2, 3, 4, 5),)]

def test_streams_are_counted_exactly(client):
    rows = list(client.stream("SELECT seq FROM seq_1_to_100000"))
    assert len(rows) == 100000
    assert sum(r[0] for r in rows) == 100000 * 100001 // 2


def test_errors_carry_reason_and_errno(client):
    client.execute("CREATE TABLE uniq (id INT PRIMARY KEY)")
    client.execute("INSERT INTO uniq VALUES (1)")
    with pytest.raises(SqlgateError) as caught:
        client.execute("INSERT INTO uniq VALUES (1)")
    assert caught.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert caught.value.reason == "MYSQL_ERROR"
    assert caught.value.errno == 1062 and caught.value.sqlstate == "23000"


def test_batch_rolls_back_and_names_the_statement(client):
    client.execute("CREATE TABLE batch (id INT PRIMARY KEY)")
    with pytest.raises(SqlgateError) as caught:
        client.batch([("INSERT INTO batch VALUES (?)", [1]), ("INSERT INTO batch VALUES (?)", [1])])
    assert caught.value.statement_index == 1
    assert client.execute("SELECT COUNT(*) FROM batch").rows[0][0] == 0


def test_transaction_reruns_on_deadlock(client):
    client.execute("CREATE TABLE acct (id INT PRIMARY KEY, balance INT NOT NULL)")
    client.execute("INSERT INTO acct VALUES (1, 100), (2, 100)")
    barrier = threading.Barrier(2, timeout=10)
    attempts = {"a": 0, "b": 0}

    def transfer(name, first, second, amount):
        def work(tx):
            attempts[name] += 1
            tx.execute("UPDATE acct SET balance = balance - ? WHERE id = ?", [amount, first])
            if attempts[name] == 1:
                barrier.wait()  # both hold their first row: a real deadlock follows
            tx.execute("UPDATE acct SET balance = balance + ? WHERE id = ?", [amount, second])
        client.transaction(work)

    threads = [
        threading.Thread(target=transfer, args=("a", 1, 2, 10)),
        threading.Thread(target=transfer, args=("b", 2, 1, 5)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    rows = client.execute("SELECT balance FROM acct ORDER BY id").rows
    assert rows == [(95,), (105,)]
    assert attempts["a"] + attempts["b"] == 3, attempts  # exactly one rerun


def test_other_errors_are_not_retried(client):
    calls = []

    def work(tx):
        calls.append(1)
        tx.execute("SELECT * FROM no_such_table")

    with pytest.raises(SqlgateError) as caught:
        client.transaction(work)
    assert not isinstance(caught.value, TransactionAborted)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert len(calls) == 1
