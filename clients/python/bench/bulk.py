"""Bulk inserts through sqlgate and through PyMySQL on the same MariaDB (the
gateway's private server, over its unix socket), side by side in one run:
pandas to_sql, an ORM bulk insert, DB-API executemany. Not a test: prints a
table (see BENCHMARKS.md). Usage:

    SQLGATE_BIN=target/release/sqlgate clients/python/.venv/bin/python clients/python/bench/bulk.py [--repeat N]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import pandas  # noqa: E402
from sqlalchemy import Integer, String, create_engine, insert, text  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402

import gateway_process  # noqa: E402
import sqlgate_client.sqlalchemy_dialect  # noqa: E402,F401
from sqlgate_client import dbapi  # noqa: E402
# The 50k rows of mixed types (NULLs included) the parity test writes with to_sql.
from tests.test_pymysql_parity import MIXED_COLUMNS as MIXED  # noqa: E402
from tests.test_pymysql_parity import MIXED_ROWS  # noqa: E402


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "bench_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(40))
    qty: Mapped[int] = mapped_column(Integer)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def to_sql(engine, frame):
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_copy"))
        conn.execute(text(f"CREATE TABLE bench_copy {MIXED}"))
    return timed(lambda: frame.to_sql("bench_copy", engine, if_exists="append", index=False))


def orm_add_all(engine, n):
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)

    def run():
        with Session(engine) as session:
            session.add_all([Item(name=f"item {i}", qty=i) for i in range(n)])
            session.commit()
    return timed(run)


def orm_bulk(engine, n):
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)

    def run():
        with Session(engine) as session:
            session.execute(insert(Item), [{"name": f"item {i}", "qty": i} for i in range(n)])
            session.commit()
    return timed(run)


def executemany(connect, marker, n):
    conn = connect()
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS bench_many")
    cur.execute("CREATE TABLE bench_many (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), qty INT)")
    conn.commit()
    rows = [(f"item {i}", i) for i in range(n)]

    def run():
        cur.executemany(f"INSERT INTO bench_many (name, qty) VALUES ({marker}, {marker})", rows)
        conn.commit()
    elapsed = timed(run)
    conn.close()
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--orm-rows", type=int, default=5_000)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="sqlgate-bench-bulk-")
    process, address = gateway_process.start(data_dir)
    try:
        gateway_process.wait_ready(address, within=60)
        socket = process.database_socket
        import pymysql
        engines = {
            "pymysql": create_engine(f"mysql+pymysql://root@localhost/sqlgate?unix_socket={socket}&charset=utf8mb4"),
            "sqlgate": create_engine(f"sqlgate://{address}"),
        }
        connects = {
            "pymysql": (lambda: pymysql.connect(unix_socket=socket, user="root", database="sqlgate",
                                                charset="utf8mb4"), "%s"),
            "sqlgate": (lambda: dbapi.connect(address), "?"),
        }
        with engines["pymysql"].begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS bench_ref"))
            conn.execute(text(f"CREATE TABLE bench_ref {MIXED}"))
            conn.execute(text("INSERT INTO bench_ref " + MIXED_ROWS.format(args.rows)))
        frame = pandas.read_sql(text("SELECT * FROM bench_ref ORDER BY id"), engines["pymysql"])
        cases = {
            f"pandas to_sql, {args.rows} rows x 9 columns": lambda name: to_sql(engines[name], frame),
            f"ORM add_all + commit, {args.orm_rows} rows": lambda name: orm_add_all(engines[name], args.orm_rows),
            f"ORM insert(Item) bulk, {args.orm_rows} rows": lambda name: orm_bulk(engines[name], args.orm_rows),
            f"DB-API executemany, {args.orm_rows} rows": lambda name: executemany(*connects[name], args.orm_rows),
        }
        print(f"| case | PyMySQL (s) | sqlgate (s) | ratio |  (best of {args.repeat}, alternating)")
        print("|---|---|---|---|")
        for case, run in cases.items():
            if args.only and args.only not in case:
                continue
            best = {"pymysql": float("inf"), "sqlgate": float("inf")}
            for _ in range(args.repeat):
                for name in best:
                    best[name] = min(best[name], run(name))
            print(f"| {case} | {best['pymysql']:.2f} | {best['sqlgate']:.2f} | "
                  f"{best['sqlgate'] / best['pymysql']:.2f}x |", flush=True)
        for engine in engines.values():
            engine.dispose()
    finally:
        gateway_process.stop(process, within=30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
