"""A thread-per-request money-transfer server written the classic way:
one SQLAlchemy engine, a scoped_session (a session per thread), one
transaction per request that moves an amount between two accounts, and a
retry loop for deadlock victims. Nothing in it is specific to sqlgate: it
runs against MySQL with `mysql+pymysql://user:pass@host/db` and against
sqlgate with `sqlgate://host:port` — only the URL changes.

    python examples/transfers.py --url sqlgate://127.0.0.1:50051 --listen 127.0.0.1:8080
    curl -X POST 'http://127.0.0.1:8080/transfer?src=1&dst=2&amount=5.00'
    curl http://127.0.0.1:8080/total

Rows are locked in request order (src first), so two opposite transfers
between the same accounts deadlock: MySQL rolls one back (error 1213; the
gateway answers ABORTED) and the request runs again from the start.
"""
import argparse
import decimal
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from sqlalchemy import Numeric, create_engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker

try:  # registers sqlgate:// when running from a source tree (the installed package has entry points)
    import sqlgate_client.sqlalchemy_dialect  # noqa: F401
except ImportError:
    pass


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "transfer_accounts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    balance: Mapped[decimal.Decimal] = mapped_column(Numeric(12, 2))


class InsufficientFunds(Exception):
    pass


def is_retryable(error):
    """A deadlock victim or a lock wait timeout: the transaction is gone, run it again.
    With sqlgate the driver's error has errno 1213/1205 and code ABORTED; with
    MySQL drivers the error number is args[0]."""
    orig = error.orig
    errno = getattr(orig, "errno", None) or (orig.args[0] if orig.args else None)
    code = getattr(orig, "code", None)
    return errno in (1213, 1205) or getattr(code, "name", None) == "ABORTED"


class TransferApp:
    def __init__(self, url, retries=20, **engine_options):
        engine_options.setdefault("pool_size", 32)
        engine_options.setdefault("max_overflow", 0)
        self.engine = create_engine(url, **engine_options)
        self.Session = scoped_session(sessionmaker(self.engine, expire_on_commit=False))
        self.retries = retries
        self.lock = threading.Lock()
        self.deadlocks = 0
        self.transfers = 0

    def create_schema(self, accounts, balance):
        Base.metadata.drop_all(self.engine)
        Base.metadata.create_all(self.engine)
        with self.Session() as session:
            session.add_all(Account(id=i, balance=decimal.Decimal(balance)) for i in accounts)
            session.commit()
        self.Session.remove()

    def transfer(self, src, dst, amount):
        """One request: one transaction, retried when it was a deadlock victim."""
        amount = decimal.Decimal(amount)
        for attempt in range(self.retries):
            session = self.Session()
            try:
                source = session.get(Account, src, with_for_update=True)
                target = session.get(Account, dst, with_for_update=True)
                if source.balance < amount:
                    raise InsufficientFunds(src)
                source.balance -= amount
                target.balance += amount
                session.commit()
                with self.lock:
                    self.transfers += 1
                return
            except OperationalError as error:
                session.rollback()
                if not is_retryable(error) or attempt == self.retries - 1:
                    raise
                with self.lock:
                    self.deadlocks += 1
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
            except BaseException:
                session.rollback()
                raise
            finally:
                self.Session.remove()

    def total(self):
        try:
            return self.Session().scalar(select(func.sum(Account.balance)))
        finally:
            self.Session.remove()

    def server(self, host="127.0.0.1", port=8080):
        """A ThreadingHTTPServer: one thread per request."""
        app = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802
                url = urlparse(self.path)
                if url.path != "/transfer":
                    return self._reply(404, {"error": "not found"})
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                try:
                    app.transfer(int(q["src"]), int(q["dst"]), q["amount"])
                except InsufficientFunds:
                    return self._reply(409, {"error": "insufficient funds"})
                except Exception as error:  # noqa: BLE001
                    return self._reply(500, {"error": str(error)})
                self._reply(200, {"ok": True})

            def do_GET(self):  # noqa: N802
                if urlparse(self.path).path != "/total":
                    return self._reply(404, {"error": "not found"})
                self._reply(200, {"total": str(app.total())})

            def log_message(self, *args):
                pass

        return ThreadingHTTPServer((host, port), Handler)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="sqlgate://127.0.0.1:50051")
    parser.add_argument("--listen", default="127.0.0.1:8080")
    parser.add_argument("--accounts", type=int, default=4)
    args = parser.parse_args()
    app = TransferApp(args.url)
    app.create_schema(range(1, args.accounts + 1), "1000.00")
    host, port = args.listen.rsplit(":", 1)
    server = app.server(host, int(port))
    print(f"listening on http://{args.listen}")
    server.serve_forever()


if __name__ == "__main__":
    main()
