"""The SQLAlchemy dialect against a real gateway (conftest.py starts it)."""
import decimal
import json
import os
import random
import sys
import threading
import urllib.request

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlgate_client import dbapi
from sqlgate_client.sqlalchemy_dialect import SqlgateDialect

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))


@pytest.fixture(scope="module")
def engine(gateway_address):
    engine = sa.create_engine(f"sqlgate://{gateway_address}")
    yield engine
    engine.dispose()


def test_url_maps_to_connect_arguments():
    dialect = SqlgateDialect()
    url = sa.engine.make_url("sqlgate://gw.example:6000/?token=s3cret&tls=true&timeout=2.5")
    assert dialect.create_connect_args(url) == (["gw.example:6000"], {"token": "s3cret", "tls": True, "timeout": 2.5})
    url = sa.engine.make_url("sqlgate://:tok@gw.example/?tls=/etc/ca.pem")
    assert dialect.create_connect_args(url) == (["gw.example:50051"], {"token": "tok", "tls": "/etc/ca.pem"})
    assert dialect.create_connect_args(sa.engine.make_url("sqlgate://h:1?tls=false")) == (["h:1"], {"tls": None})
    with pytest.raises(exc.ArgumentError, match="one database"):
        dialect.create_connect_args(sa.engine.make_url("sqlgate://h:1/shop"))
    with pytest.raises(exc.ArgumentError, match="unknown sqlgate URL option"):
        dialect.create_connect_args(sa.engine.make_url("sqlgate://h:1/?charset=utf8"))


def test_engine_is_mysql_over_sqlgate(engine, gateway_address):
    assert engine.dialect.name == "mysql" and engine.dialect.driver == "sqlgate"
    assert engine.dialect.dbapi is dbapi and engine.dialect.paramstyle == "qmark"
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT 1 + :n"), {"n": 1}) == 2
    assert engine.dialect.server_version_info >= (5,)
    assert engine.dialect.default_schema_name
    assert engine.dialect.default_isolation_level in SqlgateDialect().get_isolation_level_values(None)
    other = sa.create_engine(f"mysql+sqlgate://{gateway_address}")
    with other.connect() as conn:
        assert conn.scalar(sa.select(sa.literal(7))) == 7
    other.dispose()


def test_core_create_insert_select_update_delete(engine):
    metadata = sa.MetaData()
    items = sa.Table(
        "sa_items", metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(40), nullable=False, unique=True),
        sa.Column("price", sa.Numeric(10, 2)),
        sa.Column("created", sa.DateTime),
        sa.Column("attrs", sa.JSON),
        mysql_engine="InnoDB",
    )
    metadata.drop_all(engine)
    metadata.create_all(engine)  # DDL runs as autocommit calls
    try:
        with engine.begin() as conn:
            result = conn.execute(items.insert(), {"name": "pen", "price": decimal.Decimal("1.50"), "attrs": {"c": "blue"}})
            assert result.inserted_primary_key == (1,)
            conn.execute(items.insert(), [
                {"name": "ink", "price": decimal.Decimal("7.25")},
                {"name": "pad", "price": decimal.Decimal("3.00")},
            ])
        with engine.connect() as conn:
            rows = conn.execute(sa.select(items.c.name, items.c.price).where(items.c.price > 2)
                                .order_by(items.c.price.desc())).all()
            assert rows == [("ink", decimal.Decimal("7.25")), ("pad", decimal.Decimal("3.00"))]
            assert conn.scalar(sa.select(items.c.attrs).where(items.c.name == "pen")) == {"c": "blue"}
            assert conn.execute(items.update().where(items.c.name == "pad").values(price=items.c.price * 2)).rowcount == 1
            assert conn.execute(items.delete().where(items.c.name == "pen")).rowcount == 1
            conn.commit()
            assert conn.execute(sa.select(items.c.name, items.c.price).order_by(items.c.id)).all() == [
                ("ink", decimal.Decimal("7.25")), ("pad", decimal.Decimal("6.00"))]
            # RETURNING (MariaDB 10.5+)
            if engine.dialect.insert_returning:
                returned = conn.execute(items.insert().returning(items.c.id, items.c.name), {"name": "cap"}).one()
                assert returned.name == "cap"
            conn.rollback()
            assert conn.scalar(sa.select(sa.func.count()).select_from(items)) == 2
    finally:
        metadata.drop_all(engine)


def test_ddl_inside_a_transaction_commits_it_first_as_mysql_does(engine, gateway_address):
    metadata = sa.MetaData()
    t = sa.Table("sa_ddl", metadata, sa.Column("id", sa.Integer, primary_key=True))
    metadata.drop_all(engine)
    with engine.begin() as conn:
        metadata.create_all(conn)  # DESCRIBE began the transaction; CREATE TABLE commits it
        conn.execute(t.insert(), {"id": 1})
        conn.execute(sa.text("CREATE INDEX sa_ddl_i ON sa_ddl (id)"))  # commits the insert, as in MySQL
        conn.execute(t.insert(), {"id": 2})
        conn.rollback()  # undoes id 2 only
    with engine.connect() as conn:
        assert conn.scalars(sa.select(t.c.id)).all() == [1]
    strict = sa.create_engine(f"sqlgate://{gateway_address}", implicit_commit_ddl=False)
    with strict.connect() as conn:
        conn.execute(t.insert(), {"id": 3})
        with pytest.raises(exc.ProgrammingError) as raised:
            conn.execute(sa.text("DROP INDEX sa_ddl_i ON sa_ddl"))
        assert raised.value.orig.reason == "IMPLICIT_COMMIT_IN_TRANSACTION"
        conn.rollback()
    strict.dispose()
    metadata.drop_all(engine)


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "sa_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40), unique=True)
    credit: Mapped[decimal.Decimal] = mapped_column(sa.Numeric(10, 2), default=decimal.Decimal("0"))


@pytest.fixture
def customers(engine):
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield
    Base.metadata.drop_all(engine)


def test_orm_session_add_commit_query_rollback(engine, customers):
    with Session(engine) as session:
        session.add_all([Customer(name="ann", credit=decimal.Decimal("10.00")), Customer(name="bob")])
        session.commit()
        ann = session.scalars(sa.select(Customer).where(Customer.name == "ann")).one()
        assert ann.id and ann.credit == decimal.Decimal("10.00")
        ann.credit += 5
        session.add(Customer(name="cid"))
        session.flush()
        assert session.scalar(sa.select(sa.func.count(Customer.id))) == 3
        session.rollback()  # discards the flushed insert and the update
        assert session.scalars(sa.select(Customer.name).order_by(Customer.name)).all() == ["ann", "bob"]
        assert session.get(Customer, ann.id).credit == decimal.Decimal("10.00")
        bob = session.scalars(sa.select(Customer).filter_by(name="bob")).one()
        bob.credit = decimal.Decimal("0")  # the same value: counted as matched (CLIENT_FOUND_ROWS); no StaleDataError
        session.delete(ann)
        session.commit()
    with Session(engine) as session:
        assert [c.name for c in session.scalars(sa.select(Customer))] == ["bob"]


def test_integrity_error_on_a_duplicate_key(engine, customers):
    with Session(engine) as session:
        session.add(Customer(name="dup"))
        session.commit()
        session.add(Customer(name="dup"))
        with pytest.raises(exc.IntegrityError) as raised:
            session.commit()
        assert isinstance(raised.value.orig, dbapi.IntegrityError)
        assert raised.value.orig.errno == 1062
        session.rollback()
        assert session.scalar(sa.select(sa.func.count(Customer.id))) == 1


def test_reflection(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS sa_lines"))
        conn.execute(sa.text("DROP TABLE IF EXISTS sa_orders"))
        conn.execute(sa.text(
            "CREATE TABLE sa_orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, "
            "placed DATETIME(3) NOT NULL, note VARCHAR(200) DEFAULT 'none', total DECIMAL(12,2), "
            "KEY sa_orders_placed (placed))"))
        conn.execute(sa.text(
            "CREATE TABLE sa_lines (id INT PRIMARY KEY, order_id BIGINT UNSIGNED NOT NULL, "
            "CONSTRAINT sa_lines_order FOREIGN KEY (order_id) REFERENCES sa_orders (id))"))
    try:
        inspector = sa.inspect(engine)
        assert {"sa_orders", "sa_lines"} <= set(inspector.get_table_names())
        assert inspector.has_table("sa_orders") and not inspector.has_table("sa_nothing")
        columns = {c["name"]: c for c in inspector.get_columns("sa_orders")}
        assert list(columns) == ["id", "placed", "note", "total"]
        assert isinstance(columns["id"]["type"], sa.BigInteger) and columns["id"]["autoincrement"]
        assert isinstance(columns["placed"]["type"], sa.DateTime) and not columns["placed"]["nullable"]
        assert columns["total"]["type"].precision == 12 and columns["total"]["type"].scale == 2
        assert inspector.get_pk_constraint("sa_orders")["constrained_columns"] == ["id"]
        assert [i["name"] for i in inspector.get_indexes("sa_orders")] == ["sa_orders_placed"]
        (fk,) = inspector.get_foreign_keys("sa_lines")
        assert fk["referred_table"] == "sa_orders" and fk["constrained_columns"] == ["order_id"]

        metadata = sa.MetaData()
        metadata.reflect(engine, only=["sa_orders", "sa_lines"])
        orders = metadata.tables["sa_orders"]
        with engine.begin() as conn:
            conn.execute(orders.insert().values(placed=sa.func.now()), {"total": decimal.Decimal("9.99")})
            assert conn.execute(sa.select(orders.c.note, orders.c.total)).one() == ("none", decimal.Decimal("9.99"))
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE sa_lines"))
            conn.execute(sa.text("DROP TABLE sa_orders"))


def test_window_frame_bounds_are_inline_not_placeholders(engine):
    # A prepared statement takes no placeholder in a window frame (MariaDB
    # and MySQL: syntax error), so the frame's bounds are rendered inline.
    seq = sa.table("seq_1_to_10", sa.column("seq"))
    moving = sa.func.sum(seq.c.seq).over(order_by=seq.c.seq, rows=(-2, 0))
    following = sa.func.max(seq.c.seq).over(order_by=seq.c.seq, range_=(0, 3))
    stmt = sa.select(seq.c.seq, moving, following).order_by(seq.c.seq)
    sql = str(stmt.compile(dialect=engine.dialect))
    assert "ROWS BETWEEN 2 PRECEDING AND CURRENT ROW" in sql
    assert "RANGE BETWEEN CURRENT ROW AND 3 FOLLOWING" in sql
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
        assert rows[:4] == [(1, 1, 4), (2, 3, 5), (3, 6, 6), (4, 9, 7)]
        assert rows[-1] == (10, 27, 10)
        # different bounds are different statements, not a stale cached one
        narrower = sa.select(sa.func.sum(seq.c.seq).over(order_by=seq.c.seq, rows=(-1, 0)))
        assert conn.execute(narrower.order_by(seq.c.seq)).scalars().all()[:3] == [1, 3, 5]


BIG = "SELECT seq FROM seq_1_to_100000"


def test_stream_results_and_yield_per_read_past_the_unary_cap(engine):
    with engine.connect() as conn:
        # Buffered, as with PyMySQL: the driver reads it through ExecuteStream.
        assert len(conn.execute(sa.text("SELECT seq FROM seq_1_to_20000")).all()) == 20_000
        conn.rollback()

        result = conn.execution_options(stream_results=True).execute(sa.text(BIG))
        assert isinstance(result.cursor, dbapi.SSCursor)
        total = count = 0
        for (seq,) in result:
            total += seq
            count += 1
        assert (count, total) == (100_000, 100_000 * 100_001 // 2)

        partitions = conn.execution_options(yield_per=5000).execute(sa.text(BIG)).partitions(5000)
        assert [len(p) for p in partitions] == [5000] * 20
        conn.commit()

    with Session(engine) as session:  # ORM yield_per
        seq = sa.literal_column("seq")
        rows = session.execute(sa.select(seq).select_from(sa.text("seq_1_to_100000"))
                               .execution_options(yield_per=1000))
        assert sum(1 for _ in rows) == 100_000

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT", stream_results=True) as conn:
        assert sum(1 for _ in conn.execute(sa.text(BIG))) == 100_000


def test_pool_pre_ping_replaces_a_dead_connection(gateway_address):
    engine = sa.create_engine(f"sqlgate://{gateway_address}", pool_pre_ping=True, pool_size=1, max_overflow=0)
    pings = []
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        real_ping = raw.ping
        raw.ping = lambda: pings.append(1) or real_ping()
        assert conn.scalar(sa.text("SELECT 1")) == 1
    with engine.connect() as conn:  # pre-ping on checkout: no transaction begun by it
        assert pings and conn.connection.dbapi_connection is raw and raw.transaction_id is None
        assert conn.scalar(sa.text("SELECT 2")) == 2
    raw.close()  # the connection dies while in the pool
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection is not raw  # pre-ping saw it dead and reconnected
        assert conn.scalar(sa.text("SELECT 3")) == 3
    engine.dispose()


def test_unreachable_gateway_is_a_disconnect():
    engine = sa.create_engine("sqlgate://127.0.0.1:1/?timeout=2")
    with pytest.raises(exc.OperationalError) as raised:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    assert raised.value.orig.code == grpc.StatusCode.UNAVAILABLE
    assert raised.value.connection_invalidated
    engine.dispose()


def test_isolation_levels_map_to_the_transaction_options(engine):
    metadata = sa.MetaData()
    t = sa.Table("sa_iso", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(t.insert(), {"id": 1, "n": 0})

    def sees_a_concurrent_commit(level):
        with engine.connect().execution_options(isolation_level=level) as conn:
            assert conn.get_isolation_level() == level
            before = conn.scalar(sa.select(t.c.n))
            with engine.begin() as other:
                other.execute(t.update().values(n=t.c.n + 1))
            after = conn.scalar(sa.select(t.c.n))
            conn.rollback()
            return after != before

    assert not sees_a_concurrent_commit("REPEATABLE READ")
    assert sees_a_concurrent_commit("READ COMMITTED")
    # The pool resets the level: a plain connection is back to the default.
    with engine.connect() as conn:
        assert conn.get_isolation_level() == engine.dialect.default_isolation_level

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(t.update().values(n=100))  # commits by itself
        assert conn.connection.dbapi_connection.transaction_id is None
        with engine.connect() as other:
            assert other.scalar(sa.select(t.c.n)) == 100
    metadata.drop_all(engine)


def test_savepoints_and_two_phase_are_refused(engine, customers):
    with Session(engine) as session:
        session.add(Customer(name="outer"))
        with pytest.raises(NotImplementedError, match="SAVEPOINT"):
            with session.begin_nested():
                session.execute(sa.select(sa.literal(1)))
        session.rollback()
    with engine.connect() as conn:
        with pytest.raises(NotImplementedError, match="XA"):
            conn.begin_twophase()


# -------------------------------------------------------- the seed scenario

def test_thread_per_request_transfers_keep_the_total(gateway_address):
    """examples/transfers.py: a classic thread-per-request server (engine +
    scoped_session, one transaction per request, deadlock victims retried),
    switched to sqlgate by its URL. 32 client threads make concurrent
    transfers in both directions between 3 accounts, so deadlocks happen; the
    total balance is preserved and every transfer is done exactly once."""
    from transfers import TransferApp

    app = TransferApp(f"sqlgate://{gateway_address}", retries=50)
    accounts = [1, 2, 3]
    app.create_schema(accounts, "1000.00")
    server = app.server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    threads, per_thread, failures = 32, 8, []

    def client(seed):
        rnd = random.Random(seed)
        for _ in range(per_thread):
            src, dst = rnd.sample(accounts, 2)
            amount = f"{rnd.randint(1, 500) / 100:.2f}"
            request = urllib.request.Request(f"{base}/transfer?src={src}&dst={dst}&amount={amount}", method="POST")
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    assert response.status == 200
            except Exception as error:  # noqa: BLE001
                failures.append(error)

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    try:
        assert not failures, failures[:3]
        assert app.transfers == threads * per_thread
        with urllib.request.urlopen(f"{base}/total") as response:
            assert decimal.Decimal(json.load(response)["total"]) == decimal.Decimal("3000.00")
        print(f"{app.transfers} transfers, {app.deadlocks} deadlock victims retried")
        assert app.deadlocks > 0, "no deadlock happened: the test did not exercise the retry"
    finally:
        server.shutdown()
        server.server_close()
        app.engine.dispose()
