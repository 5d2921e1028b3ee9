"""The DB-API 2.0 driver against a real gateway (conftest.py starts it)."""
import datetime
import decimal
import threading

import grpc
import pytest

from sqlgate_client import dbapi


@pytest.fixture
def connect(gateway_address):
    opened = []

    def connect(**kwargs):
        conn = dbapi.connect(gateway_address, **kwargs)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


class Recorder(grpc.UnaryUnaryClientInterceptor):
    """Records (method, request) of every unary call."""

    def __init__(self):
        self.calls = []

    def intercept_unary_unary(self, continuation, details, request):
        self.calls.append((details.method.rsplit("/", 1)[-1], request))
        return continuation(details, request)


def count(conn, table):
    cur = conn.cursor()
    cur.execute(f"SELECT COUNT(*) FROM {table}")
    return cur.fetchone()[0]


def test_module_globals():
    assert dbapi.apilevel == "2.0" and dbapi.threadsafety == 1 and dbapi.paramstyle == "qmark"
    for name in ("Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
                 "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError"):
        assert getattr(dbapi.Connection, name) is getattr(dbapi, name)
    assert issubclass(dbapi.IntegrityError, dbapi.DatabaseError)
    assert issubclass(dbapi.DatabaseError, dbapi.Error)
    assert issubclass(dbapi.InterfaceError, dbapi.Error)


def test_transactions_begin_inline_and_commit_or_roll_back(gateway_address, connect):
    setup = connect(autocommit=True)
    setup.cursor().execute("CREATE TABLE dbapi_tx (id INT PRIMARY KEY)")
    recorder = Recorder()
    channel = grpc.intercept_channel(grpc.insecure_channel(gateway_address), recorder)
    conn = dbapi.Connection(gateway_address, channel=channel)
    other = connect(autocommit=True)
    try:
        cur = conn.cursor()
        assert conn.transaction_id is None
        cur.execute("INSERT INTO dbapi_tx VALUES (?)", [1])
        first_id = conn.transaction_id
        assert first_id
        cur.execute("INSERT INTO dbapi_tx VALUES (?)", [2])
        assert count(other, "dbapi_tx") == 0  # not committed yet
        conn.commit()
        assert conn.transaction_id is None
        assert count(other, "dbapi_tx") == 2

        cur.execute("INSERT INTO dbapi_tx VALUES (?)", [3])
        assert conn.transaction_id not in (None, first_id)  # a new transaction
        conn.rollback()
        assert count(other, "dbapi_tx") == 2
        conn.commit()  # no transaction open: no call
        conn.rollback()

        methods = [m for m, _ in recorder.calls]
        assert methods == ["Execute", "Execute", "Commit", "Execute", "Rollback"]
        first, second = recorder.calls[0][1], recorder.calls[1][1]
        assert first.HasField("begin") and first.transaction_id == ""  # begun inline, no Begin call
        assert not second.HasField("begin") and second.transaction_id == first_id
    finally:
        conn.close()


def test_autocommit_mode_runs_plain_execute_calls(gateway_address, connect):
    recorder = Recorder()
    channel = grpc.intercept_channel(grpc.insecure_channel(gateway_address), recorder)
    conn = dbapi.Connection(gateway_address, channel=channel, autocommit=True)
    other = connect(autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE dbapi_auto (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO dbapi_auto VALUES (?)", [1])
        assert conn.transaction_id is None
        assert count(other, "dbapi_auto") == 1  # visible at once
        conn.rollback()  # nothing to roll back
        assert count(other, "dbapi_auto") == 1
        assert [m for m, _ in recorder.calls] == ["Execute", "Execute"]
        assert all(not r.HasField("begin") and not r.transaction_id for _, r in recorder.calls)
    finally:
        conn.close()


def test_turning_autocommit_on_commits_the_open_transaction(connect):
    conn = connect()
    other = connect(autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE dbapi_switch (id INT PRIMARY KEY)")  # DDL: run on its own
    cur.execute("INSERT INTO dbapi_switch VALUES (1)")
    assert count(other, "dbapi_switch") == 0
    conn.autocommit = True
    assert conn.transaction_id is None and count(other, "dbapi_switch") == 1
    cur.execute("INSERT INTO dbapi_switch VALUES (2)")
    assert conn.transaction_id is None and count(other, "dbapi_switch") == 2


def test_closing_rolls_back_and_frees_the_locks(connect):
    other = connect(autocommit=True, timeout=10)
    other.cursor().execute("CREATE TABLE dbapi_close (id INT PRIMARY KEY)")
    conn = connect()
    conn.cursor().execute("INSERT INTO dbapi_close VALUES (1)")
    conn.close()
    assert conn.closed
    # Were the row lock still held, this would wait (and fail at the deadline).
    other.cursor().execute("INSERT INTO dbapi_close VALUES (1)")
    assert count(other, "dbapi_close") == 1
    with pytest.raises(dbapi.InterfaceError):
        conn.cursor()


def test_a_commit_that_got_no_answer_rolls_back_by_id(connect):
    # The Commit is lost on the way (as through a gateway instance that dies
    # before forwarding it to the owner): the driver rolls the transaction
    # back by id, so that it does not hold its locks until its idle timeout.
    other = connect(autocommit=True, timeout=10)
    other.cursor().execute("CREATE TABLE dbapi_lost_commit (id INT PRIMARY KEY)")
    conn = connect()
    conn.cursor().execute("INSERT INTO dbapi_lost_commit VALUES (1)")
    unary = conn._unary
    sent = []

    def lossy(method, request):
        sent.append(method)
        if method == "Commit":
            raise dbapi.OperationalError("the instance went away", code=grpc.StatusCode.UNAVAILABLE)
        return unary(method, request)

    conn._unary = lossy
    with pytest.raises(dbapi.OperationalError):
        conn.commit()
    assert sent == ["Commit"]
    # Were the row lock still held, this would wait (and fail at the deadline).
    other.cursor().execute("INSERT INTO dbapi_lost_commit VALUES (1)")
    assert count(other, "dbapi_lost_commit") == 1


def test_context_manager_commits_or_rolls_back(gateway_address, connect):
    other = connect(autocommit=True)
    other.cursor().execute("CREATE TABLE dbapi_with (id INT PRIMARY KEY)")
    with dbapi.connect(gateway_address) as conn:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO dbapi_with VALUES (1)")
    assert conn.closed and count(other, "dbapi_with") == 1
    with pytest.raises(ZeroDivisionError):
        with dbapi.connect(gateway_address) as conn:
            conn.cursor().execute("INSERT INTO dbapi_with VALUES (2)")
            1 / 0
    assert count(other, "dbapi_with") == 1


def test_executemany_uses_batches(gateway_address, connect):
    other = connect(autocommit=True)
    other.cursor().execute("CREATE TABLE dbapi_many (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
    recorder = Recorder()
    channel = grpc.intercept_channel(grpc.insecure_channel(gateway_address), recorder)
    conn = dbapi.Connection(gateway_address, channel=channel, autocommit=True)
    try:
        cur = conn.cursor()
        assert cur.executemany("INSERT INTO dbapi_many (v) VALUES (?)", [[i] for i in range(10)]) == 10
        # One multi-row INSERT at the gateway (combine_inserts): lastrowid is
        # its first id, as PyMySQL's executemany reports it.
        assert cur.rowcount == 10 and cur.lastrowid == 1
        assert [m for m, _ in recorder.calls] == ["ExecuteBatch"]
        assert recorder.calls[0][1].transaction_id == "" and len(recorder.calls[0][1].statements) == 10
        assert recorder.calls[0][1].combine_inserts

        # Transactional, in chunks: an inline begin, then batches in the transaction.
        recorder.calls.clear()
        conn.autocommit = False
        conn.max_batch_statements = 100
        cur.executemany("INSERT INTO dbapi_many (v) VALUES (?)", [[i] for i in range(250)])
        assert cur.rowcount == 250
        assert [m for m, _ in recorder.calls] == ["Execute", "ExecuteBatch", "ExecuteBatch", "ExecuteBatch"]
        assert recorder.calls[0][1].HasField("begin")
        assert all(r.transaction_id == conn.transaction_id and r.combine_inserts for _, r in recorder.calls[1:])
        assert [len(r.statements) for _, r in recorder.calls[1:]] == [100, 100, 49]
        assert count(other, "dbapi_many") == 10
        conn.commit()
        assert count(other, "dbapi_many") == 260

        # A failure (statement 150 repeats a key) undoes everything the call did.
        rows = [[1000 + i, i] for i in range(250)]
        rows[150] = [1000, 0]
        with pytest.raises(dbapi.IntegrityError) as caught:
            cur.executemany("INSERT INTO dbapi_many (id, v) VALUES (?, ?)", rows)
        assert caught.value.errno == 1062 and caught.value.statement_index == 150
        assert conn.transaction_id is None  # it held only this call's work
        assert count(other, "dbapi_many") == 260
        assert cur.executemany("INSERT INTO dbapi_many (v) VALUES (?)", []) == 0
    finally:
        conn.close()


def test_fetch_variants(connect):
    cur = connect().cursor()
    assert cur.rowcount == -1 and cur.description is None and cur.arraysize == 1
    with pytest.raises(dbapi.ProgrammingError):
        cur.fetchone()
    cur.execute("SELECT seq FROM seq_1_to_10")
    assert cur.rowcount == 10
    assert cur.fetchone() == (1,)
    assert cur.fetchmany() == [(2,)]  # arraysize
    assert cur.fetchmany(3) == [(3,), (4,), (5,)]
    cur.arraysize = 2
    assert cur.fetchmany() == [(6,), (7,)]
    assert list(cur) == [(8,), (9,), (10,)]
    assert cur.fetchone() is None and cur.fetchmany(5) == [] and cur.fetchall() == []
    cur.execute("SELECT seq, seq * 2 FROM seq_1_to_3")
    assert cur.fetchall() == [(1, 2), (2, 4), (3, 6)]
    cur.close()
    with pytest.raises(dbapi.InterfaceError):
        cur.execute("SELECT 1")


def test_description_rowcount_lastrowid(connect):
    conn = connect(autocommit=True)
    cur = conn.cursor()
    cur.execute(
        "CREATE TABLE dbapi_desc (id INT UNSIGNED NOT NULL PRIMARY KEY AUTO_INCREMENT, "
        "price DECIMAL(10,2), name VARCHAR(20) NOT NULL, at DATETIME(3), data BLOB)"
    )
    assert cur.description is None and cur.lastrowid is None
    cur.execute("INSERT INTO dbapi_desc (price, name) VALUES (?, ?)", [decimal.Decimal("1.50"), "a"])
    assert cur.rowcount == 1 and cur.lastrowid == 1
    cur.execute("INSERT INTO dbapi_desc (price, name) VALUES (?, ?), (?, ?)",
                [decimal.Decimal("2"), "b", None, "c"])
    assert cur.rowcount == 2 and cur.lastrowid == 2  # MySQL: the first id of a multi-row insert
    cur.execute("UPDATE dbapi_desc SET name = 'x' WHERE id >= ?", [2])
    assert cur.rowcount == 2 and cur.lastrowid is None
    cur.execute("SELECT id, price, name, at, data FROM dbapi_desc ORDER BY id")
    assert cur.rowcount == 3
    d = cur.description
    assert [c[0] for c in d] == ["id", "price", "name", "at", "data"]
    assert all(len(c) == 7 for c in d)
    assert d[0][1] == "INT" and d[0][1] == dbapi.NUMBER and d[0][6] is False
    assert d[1][1] == dbapi.NUMBER and (d[1][4], d[1][5]) == (10, 2) and d[1][6] is True
    assert d[2][1] == dbapi.STRING and d[2][1] != dbapi.NUMBER and d[2][6] is False
    assert d[3][1] == dbapi.DATETIME and d[3][5] == 3
    assert d[4][1] == dbapi.BINARY
    assert cur.fetchone() == (1, decimal.Decimal("1.50"), "a", None, None)


def test_type_constructors_round_trip(connect):
    cur = connect(autocommit=True).cursor()
    cur.execute("CREATE TABLE dbapi_types (d DATE, t TIME(6), ts DATETIME(6), b BLOB)")
    values = [dbapi.Date(2024, 2, 29), dbapi.Time(13, 14, 15, 16), dbapi.Timestamp(2024, 1, 2, 3, 4, 5, 6),
              dbapi.Binary(b"\x00\xff")]
    cur.execute("INSERT INTO dbapi_types VALUES (?, ?, ?, ?)", values)
    cur.execute("SELECT * FROM dbapi_types")
    d, t, ts, b = cur.fetchone()
    assert d == values[0] and ts == values[2] and b == b"\x00\xff"
    assert t == datetime.timedelta(hours=13, minutes=14, seconds=15, microseconds=16)
    assert dbapi.DateFromTicks(0) == datetime.date.fromtimestamp(0)
    assert dbapi.TimestampFromTicks(86400.5) == datetime.datetime.fromtimestamp(86400).replace(microsecond=0)
    assert dbapi.TimeFromTicks(0) == datetime.datetime.fromtimestamp(0).time()
    with pytest.raises(dbapi.ProgrammingError):
        cur.execute("SELECT ?", [object()])


def test_sscursor_streams_a_large_result_lazily(connect):
    conn = connect(autocommit=True)
    cur = conn.cursor(dbapi.SSCursor)
    cur.execute("SELECT seq FROM seq_1_to_100000")
    assert cur.rowcount == -1 and cur.description[0][0] == "seq"
    assert cur.fetchone() == (1,)
    assert 0 < len(cur._batch) < 100000  # one batch held, not the result
    assert cur.fetchmany(4) == [(2,), (3,), (4,), (5,)]
    total, n, largest_batch = 15, 5, 0
    for (seq,) in cur:
        total += seq
        n += 1
        largest_batch = max(largest_batch, len(cur._batch))
        assert cur.rowcount == -1 or n == 100000
    assert n == 100000 and total == 100000 * 100001 // 2
    assert largest_batch < 100000
    assert cur.rowcount == 100000 and cur.fetchone() is None


def test_sscursor_in_a_transaction(connect):
    conn = connect()
    other = connect(autocommit=True)
    other.cursor().execute("CREATE TABLE dbapi_ss (id INT PRIMARY KEY)")
    ss = conn.cursor(dbapi.SSCursor)
    ss.execute("INSERT INTO dbapi_ss VALUES (?)", [1])  # begins the transaction inline
    assert conn.transaction_id and ss.rowcount == 1 and ss.description is None
    ss.execute("SELECT seq FROM seq_1_to_50000")
    assert ss.fetchmany(2) == [(1,), (2,)]
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM dbapi_ss")  # ends the stream first
    assert cur.fetchone() == (1,)
    with pytest.raises(dbapi.ProgrammingError):
        ss.fetchone()  # its rest was discarded
    conn.commit()
    assert count(other, "dbapi_ss") == 1
    # Re-executing an unfinished SSCursor keeps the transaction.
    ss.execute("INSERT INTO dbapi_ss VALUES (?)", [2])
    tid = conn.transaction_id
    ss.execute("SELECT seq FROM seq_1_to_50000")
    assert ss.fetchone() == (1,)
    ss.execute("SELECT COUNT(*) FROM dbapi_ss")
    assert ss.fetchall() == [(2,)] and conn.transaction_id == tid
    conn.commit()
    assert count(other, "dbapi_ss") == 2
    # A stream read to its end leaves nothing to discard.
    ss.execute("SELECT seq FROM seq_1_to_3")
    assert ss.fetchall() == [(1,), (2,), (3,)] and ss.rowcount == 3
    ss.close()
    conn.rollback()


def test_sscursor_closed_early_in_autocommit(connect):
    conn = connect(autocommit=True)
    ss = conn.cursor(dbapi.SSCursor)
    ss.execute("SELECT seq FROM seq_1_to_1000000")
    assert ss.fetchone() == (1,)
    ss.close()  # cancelled, not read to the end
    cur = conn.cursor()
    cur.execute("SELECT 42")
    assert cur.fetchone() == (42,)


def test_duplicate_key_is_an_integrity_error(connect):
    conn = connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE dbapi_dup (id INT PRIMARY KEY, n INT NOT NULL)")
    cur.execute("INSERT INTO dbapi_dup VALUES (1, 1)")
    tid = conn.transaction_id
    with pytest.raises(dbapi.IntegrityError) as caught:
        cur.execute("INSERT INTO dbapi_dup VALUES (1, 1)")
    e = caught.value
    assert isinstance(e, conn.IntegrityError) and isinstance(e, dbapi.DatabaseError)
    assert (e.errno, e.sqlstate, e.reason, e.code) == (1062, "23000", "MYSQL_ERROR", grpc.StatusCode.ALREADY_EXISTS)
    assert conn.transaction_id == tid  # still open, as in MySQL
    with pytest.raises(dbapi.IntegrityError) as caught:
        cur.execute("INSERT INTO dbapi_dup VALUES (2, ?)", [None])
    assert caught.value.errno == 1048
    conn.commit()
    assert count(conn, "dbapi_dup") == 1


def test_programming_and_data_errors(connect):
    conn = connect(autocommit=True)
    cur = conn.cursor()
    with pytest.raises(dbapi.ProgrammingError) as caught:
        cur.execute("SELEC 1")
    e = caught.value
    assert (e.errno, e.sqlstate, e.reason, e.code) == (1064, "42000", "MYSQL_ERROR", grpc.StatusCode.INVALID_ARGUMENT)
    with pytest.raises(dbapi.ProgrammingError) as caught:
        cur.execute("SELECT * FROM dbapi_no_such_table")
    assert caught.value.errno == 1146 and caught.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(dbapi.ProgrammingError) as caught:
        cur.execute("SELECT ?", [1, 2])
    assert caught.value.reason == "INVALID_REQUEST" and caught.value.errno is None
    cur.execute("CREATE TABLE dbapi_data (n TINYINT)")
    with pytest.raises(dbapi.DataError) as caught:
        cur.execute("INSERT INTO dbapi_data VALUES (?)", [1000])
    assert caught.value.errno == 1264 and caught.value.sqlstate == "22003"
    # DDL inside an open transaction is refused (it would commit implicitly).
    conn.autocommit = False
    cur.execute("INSERT INTO dbapi_data VALUES (1)")
    with pytest.raises(dbapi.ProgrammingError) as caught:
        cur.execute("CREATE TABLE dbapi_never (id INT)")
    assert caught.value.reason == "IMPLICIT_COMMIT_IN_TRANSACTION"
    assert conn.transaction_id is not None
    conn.rollback()


def test_deadlock_victim_raises_until_rollback_then_begins_a_fresh_transaction(connect):
    setup = connect(autocommit=True)
    setup.cursor().execute("CREATE TABLE dbapi_dead (id INT PRIMARY KEY, v INT)")
    setup.cursor().execute("INSERT INTO dbapi_dead VALUES (1, 0), (2, 0)")
    a, b = connect(), connect()
    a.cursor().execute("UPDATE dbapi_dead SET v = v + 1 WHERE id = 1")
    b.cursor().execute("UPDATE dbapi_dead SET v = v + 1 WHERE id = 2")
    ids = {a: a.transaction_id, b: b.transaction_id}
    outcome = {}

    def cross(conn, row):
        try:
            conn.cursor().execute("UPDATE dbapi_dead SET v = v + 10 WHERE id = ?", [row])
            outcome[conn] = "ok"
        except dbapi.Error as error:
            outcome[conn] = error

    threads = [threading.Thread(target=cross, args=(a, 2)), threading.Thread(target=cross, args=(b, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    errors = [(c, e) for c, e in outcome.items() if e != "ok"]
    assert len(outcome) == 2 and len(errors) == 1, outcome
    victim, error = errors[0]
    survivor = b if victim is a else a
    assert isinstance(error, dbapi.OperationalError)
    assert error.code == grpc.StatusCode.ABORTED and error.errno == 1213 and error.sqlstate == "40001"
    assert victim.transaction_id is None  # the gateway rolled it back
    assert victim.transaction_ended_by is error
    survivor.commit()
    cur = victim.cursor()
    # Never a silent new transaction: every call raises until rollback().
    for call in (lambda: cur.execute("UPDATE dbapi_dead SET v = v + 1000 WHERE id = 1"),
                 lambda: cur.executemany("UPDATE dbapi_dead SET v = v + ? WHERE id = 1", [(1000,)]),
                 lambda: victim.cursor(dbapi.SSCursor).execute("SELECT * FROM dbapi_dead"),
                 victim.commit):
        with pytest.raises(dbapi.OperationalError, match="call rollback") as again:
            call()
        assert again.value.errno == 1213 and again.value.code == grpc.StatusCode.ABORTED
    assert victim.ping()  # an autocommit check, outside any transaction
    victim.rollback()
    assert victim.transaction_ended_by is None
    cur.execute("UPDATE dbapi_dead SET v = v + 100 WHERE id = 1")  # a fresh transaction
    assert victim.transaction_id not in (None, ids[victim])
    victim.commit()
    cur = setup.cursor()
    cur.execute("SELECT SUM(v) FROM dbapi_dead")
    # The survivor's +1 and +10, the victim's fresh +100; the victim's first +1 was rolled back.
    assert cur.fetchone()[0] == decimal.Decimal(1 + 10 + 100)


def test_isolation_level_and_read_only_go_into_the_inline_begin(gateway_address, connect):
    recorder = Recorder()
    channel = grpc.intercept_channel(grpc.insecure_channel(gateway_address), recorder)
    connect(autocommit=True).cursor().execute("CREATE TABLE dbapi_ro (id INT)")
    conn = dbapi.Connection(gateway_address, channel=channel, isolation_level="read-committed")
    try:
        assert conn.isolation_level == "READ COMMITTED"
        conn.cursor().execute("SELECT 1")
        (method, request), = recorder.calls
        assert method == "Execute" and request.HasField("begin")
        assert request.begin.isolation == dbapi.pb.ISOLATION_LEVEL_READ_COMMITTED
        assert not request.begin.read_only
        conn.rollback()
        conn.isolation_level = None
        conn.read_only = True
        recorder.calls.clear()
        cur = conn.cursor()
        cur.execute("SELECT 1")
        request = recorder.calls[0][1]
        assert request.HasField("begin") and request.begin.isolation == dbapi.pb.ISOLATION_LEVEL_DEFAULT
        assert request.begin.read_only
        with pytest.raises(dbapi.ProgrammingError) as raised:
            cur.execute("INSERT INTO dbapi_ro VALUES (1)")
        assert raised.value.errno == 1792  # write in a READ ONLY transaction
        conn.rollback()
        with pytest.raises(dbapi.ProgrammingError, match="isolation level"):
            conn.isolation_level = "SNAPSHOT"
    finally:
        conn.close()


def test_ping_leaves_the_transaction_alone(gateway_address, connect):
    conn = connect()
    assert conn.ping() is True
    assert conn.transaction_id is None  # a ping begins nothing
    conn.cursor().execute("SELECT 1")
    tx = conn.transaction_id
    assert tx and conn.ping() and conn.transaction_id == tx
    conn.rollback()
    dead = connect(timeout=2)
    dead._channel.close()
    dead._channel = grpc.insecure_channel("127.0.0.1:1")
    dead._stub = dbapi.pb_grpc.DatabaseStub(dead._channel)
    with pytest.raises(dbapi.OperationalError) as raised:
        dead.ping()
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE


def test_plain_cursor_buffers_results_of_any_size(gateway_address, connect):
    """As PyMySQL's Cursor: a result over the gateway's unary caps (10,000
    rows, 4 MiB) is read through ExecuteStream and buffered; reads run again
    after the refusal, writes that return rows stream from the start (once)."""
    setup = connect(autocommit=True).cursor()
    setup.execute("CREATE TABLE dbapi_big (id INT PRIMARY KEY, s VARCHAR(20))")
    setup.execute("INSERT INTO dbapi_big SELECT seq, CONCAT('s', seq) FROM seq_1_to_30000")
    recorder = Recorder()
    channel = grpc.intercept_channel(grpc.insecure_channel(gateway_address), recorder)
    conn = dbapi.Connection(gateway_address, channel=channel)
    try:
        cur = conn.cursor()
        assert cur.execute("SELECT id, s FROM dbapi_big ORDER BY id") == 30000
        assert cur.description[1][0] == "s" and cur.rowcount == 30000
        rows = cur.fetchall()
        assert len(rows) == 30000 and rows[0] == (1, "s1") and rows[-1] == (30000, "s30000")
        tx = conn.transaction_id
        assert tx  # begun inline by the refused Execute's retry, kept
        cur.execute("/* big */ SELECT seq FROM seq_1_to_12000")
        assert len(cur.fetchall()) == 12000 and conn.transaction_id == tx
        # A write returning more rows than the cap streams from the start: it runs once.
        cur.execute("DELETE FROM dbapi_big WHERE id > 15000 RETURNING id")
        assert cur.rowcount == 15000 and sorted(cur.fetchall())[0] == (15001,)
        cur.execute("SELECT COUNT(*) FROM dbapi_big")
        assert cur.fetchone() == (15000,)
        conn.rollback()
        # A non-read refused as too large is not run again.
        assert [m for m, _ in recorder.calls].count("Execute") == 3  # both big reads, the COUNT
    finally:
        conn.close()
    assert dbapi._is_read("  -- note\n# more\n/* c */ (SELECT 1)") and dbapi._is_read("with x as (select 1) select 1")
    assert not dbapi._is_read("/*!SELECT*/ DELETE FROM t") and not dbapi._is_read("INSERT INTO t SELECT 1")


def test_a_lock_wait_timeout_keeps_the_transaction_as_mysql_does(connect):
    """FOR UPDATE NOWAIT on a row another transaction holds: 1205, only the
    statement undone (transaction_open: true); the driver keeps the
    transaction and commit() commits the work before the error."""
    setup = connect(autocommit=True).cursor()
    setup.execute("CREATE TABLE dbapi_nowait (id INT PRIMARY KEY)")
    setup.execute("INSERT INTO dbapi_nowait VALUES (1)")
    holder, conn = connect(), connect()
    holder.cursor().execute("SELECT * FROM dbapi_nowait WHERE id = 1 FOR UPDATE")
    cur = conn.cursor()
    cur.execute("INSERT INTO dbapi_nowait VALUES (2)")
    tx = conn.transaction_id
    with pytest.raises(dbapi.OperationalError) as locked:
        cur.execute("SELECT * FROM dbapi_nowait WHERE id = 1 FOR UPDATE NOWAIT")
    assert locked.value.errno == 1205 and locked.value.metadata.get("transaction_open") == "true"
    assert conn.transaction_id == tx and conn.transaction_ended_by is None
    conn.commit()
    holder.rollback()
    setup.execute("SELECT id FROM dbapi_nowait ORDER BY id")
    assert setup.fetchall() == [(1,), (2,)]


def test_a_transaction_gone_behind_the_drivers_back_raises_until_rollback(connect):
    conn = connect()
    cur = conn.cursor()
    cur.execute("SELECT 1")
    conn._unary("Rollback", dbapi.pb.RollbackRequest(transaction_id=conn.transaction_id))
    with pytest.raises(dbapi.Error) as gone:
        cur.execute("SELECT 2")
    assert conn.transaction_ended_by is gone.value and conn.transaction_id is None
    with pytest.raises(type(gone.value), match="call rollback"):
        cur.execute("SELECT 3")
    conn.rollback()
    cur.execute("SELECT 4")
    assert cur.fetchone() == (4,) and conn.transaction_id
    conn.rollback()
