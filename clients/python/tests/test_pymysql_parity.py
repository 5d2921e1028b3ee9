"""The same programs through sqlgate and through PyMySQL on the same MariaDB
(the gateway's private server, reached directly over its unix socket), side
by side: what must not differ (issue 22)."""
import pandas
import pytest
from sqlalchemy import Integer, String, create_engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import sqlgate_client.sqlalchemy_dialect  # noqa: F401 (registers sqlgate://)


class Base(DeclarativeBase):
    pass


class Slot(Base):
    __tablename__ = "parity_slots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    owner: Mapped[str] = mapped_column(String(20))


@pytest.fixture
def engines(gateway_address, pymysql_url):
    sqlgate = create_engine(f"sqlgate://{gateway_address}")
    pymysql = create_engine(pymysql_url)
    yield {"sqlgate": sqlgate, "pymysql": pymysql}
    sqlgate.dispose()
    pymysql.dispose()


def lock_then_nowait(engine, first_id):
    """INSERT, then with_for_update(nowait=True) on a row another session
    holds (error 1205), then commit. Returns (error, commit error or None)."""
    holder = engine.connect()
    holder.begin()
    holder.execute(text("SELECT * FROM parity_slots WHERE id = 1 FOR UPDATE"))
    try:
        with Session(engine) as session:
            session.add(Slot(id=first_id, owner="before the error"))
            with pytest.raises(OperationalError) as locked:
                session.execute(select(Slot).where(Slot.id == 1).with_for_update(nowait=True)).all()
            try:
                session.commit()
                commit_error = None
            except OperationalError as error:
                commit_error = error
                session.rollback()
        return locked.value, commit_error
    finally:
        holder.rollback()
        holder.close()


def test_a_lock_wait_timeout_never_loses_earlier_work_silently(engines):
    """PyMySQL: MariaDB rolls back only the failed statement, so commit()
    commits the INSERT. sqlgate: either the same (the gateway keeps the
    transaction and says so), or commit() raises — never a commit that
    silently drops the INSERT."""
    Base.metadata.drop_all(engines["pymysql"])
    Base.metadata.create_all(engines["pymysql"])
    with Session(engines["pymysql"]) as session:
        session.add(Slot(id=1, owner="locked"))
        session.commit()

    locked, commit_error = lock_then_nowait(engines["pymysql"], 2)
    assert locked.orig.args[0] == 1205 and commit_error is None

    locked, commit_error = lock_then_nowait(engines["sqlgate"], 3)
    assert locked.orig.errno == 1205
    kept = locked.orig.metadata.get("transaction_open") == "true"
    assert kept, "the gateway (since issue 22) keeps the transaction after 1205, as MariaDB does"
    with engines["pymysql"].connect() as conn:
        ids = set(conn.execute(text("SELECT id FROM parity_slots")).scalars())
    if kept:
        assert commit_error is None and ids == {1, 2, 3}, (commit_error, ids)
    else:
        assert commit_error is not None and commit_error.orig.errno == 1205, commit_error
        assert "call rollback()" in str(commit_error.orig)
        assert ids == {1, 2}
    Base.metadata.drop_all(engines["pymysql"])


MIXED_COLUMNS = """(id INT PRIMARY KEY, big BIGINT, price DECIMAL(12, 2), ratio DOUBLE, name VARCHAR(40),
                   born DATE, seen DATETIME(6), flag TINYINT(1), note TEXT NULL)"""
MIXED_ROWS = """SELECT seq, CAST(seq AS SIGNED) * 1000000007 - 1099511627776, (seq MOD 100000) / 100, seq / 7e0,
                       CONCAT('näme ', seq, ' 😀'), DATE '1970-01-01' + INTERVAL (seq MOD 20000) DAY,
                       TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND + INTERVAL (seq MOD 999999) MICROSECOND,
                       seq MOD 2, IF(seq MOD 3, NULL, CONCAT('note ', seq))
                FROM seq_1_to_{}"""


def test_pandas_read_sql_and_to_sql_match_pymysql_on_50k_rows(engines):
    """pandas read_sql (whole, and chunksize=10000) through sqlgate gives the
    DataFrame PyMySQL gives; to_sql through sqlgate writes what PyMySQL then
    reads back identically. 50k rows of mixed types, NULLs included."""
    n = 50_000
    with engines["pymysql"].begin() as conn:
        for table in ("parity_ref", "parity_copy"):
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
            conn.execute(text(f"CREATE TABLE {table} {MIXED_COLUMNS}"))
        conn.execute(text("INSERT INTO parity_ref " + MIXED_ROWS.format(n)))
    query = text("SELECT * FROM parity_ref ORDER BY id")
    reference = pandas.read_sql(query, engines["pymysql"])
    assert len(reference) == n and reference["note"].isna().sum() == n - n // 3
    pandas.testing.assert_frame_equal(pandas.read_sql(query, engines["sqlgate"]), reference)
    chunks = list(pandas.read_sql(query, engines["sqlgate"], chunksize=10_000))
    assert [len(c) for c in chunks] == [10_000] * 5
    pandas.testing.assert_frame_equal(pandas.concat(chunks, ignore_index=True), reference)

    written = reference.to_sql("parity_copy", engines["sqlgate"], if_exists="append", index=False)
    assert written == n
    copy = pandas.read_sql(text("SELECT * FROM parity_copy ORDER BY id"), engines["pymysql"])
    pandas.testing.assert_frame_equal(copy, reference)
    with engines["pymysql"].begin() as conn:
        conn.execute(text("DROP TABLE parity_ref, parity_copy"))


def test_executemany_matches_pymysql(gateway_address, pymysql_connect):
    """executemany of an INSERT (which the gateway sends as multi-row
    INSERTs) writes the same rows, and reports the same rowcount, lastrowid
    and error (a duplicate key in the middle: nothing written) as PyMySQL's
    (which rewrites it into one multi-row INSERT too)."""
    from sqlgate_client import dbapi
    reference = pymysql_connect()
    conn = dbapi.connect(gateway_address)
    try:
        seen = {}
        for name, connection, marker in (("pymysql", reference, "%s"), ("sqlgate", conn, "?")):
            cur = connection.cursor()
            table = f"parity_many_{name}"
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(f"CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) UNIQUE,"
                        " price DECIMAL(8, 2), born DATE NULL)")
            connection.commit()
            rows = [(f"näme {i}", f"{i}.25", None if i % 3 else f"2024-01-{i % 28 + 1:02d}") for i in range(2000)]
            sql = f"INSERT INTO {table} (name, price, born) VALUES ({marker}, {marker}, {marker})"
            rowcount = cur.executemany(sql, rows)
            lastrowid = cur.lastrowid
            connection.commit()
            bad = [(f"new {i}", "1", None) for i in range(10)]
            bad[7] = ("näme 5", "1", None)
            with pytest.raises(Exception) as caught:
                cur.executemany(sql, bad)
            connection.rollback()
            errno = getattr(caught.value, "errno", None) or caught.value.args[0]
            cur.execute(f"SELECT id, name, CAST(price AS CHAR), CAST(born AS CHAR) FROM {table} ORDER BY id")
            seen[name] = (rowcount, lastrowid, errno, [tuple(r) for r in cur.fetchall()])
            connection.commit()
        assert seen["sqlgate"] == seen["pymysql"]
        assert seen["pymysql"][:3] == (2000, 1, 1062) and len(seen["pymysql"][3]) == 2000
    finally:
        conn.close()


def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_stream_results_partitions_stay_flat(engines):
    """stream_results + yield_per with partitions() on text(): partitions of
    yield_per rows, and the client does not grow with the result (it grew by
    ~70 MiB for these 200k rows when partitions() fetched everything)."""
    rows = 200_000
    with engines["sqlgate"].connect() as conn:
        conn.execute(text("SELECT 1"))
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(
            text(f"SELECT seq, CONCAT('row ', seq), seq * 1.5 FROM seq_1_to_{rows}"))
        start, peak, sizes, seen = rss_mib(), 0.0, set(), 0
        for partition in result.partitions():
            seen += len(partition)
            sizes.add(len(partition))
            peak = max(peak, rss_mib() - start)
    assert seen == rows and sizes == {2000}
    assert peak < 25, f"the client grew by {peak:.0f} MiB while reading {rows} rows in partitions"
