"""A real gateway (`sqlgate serve` with its own private MariaDB, on
127.0.0.1:0) for the client's tests and the compliance suite: started, waited
for, stopped. Test support; not part of the package."""
import json
import os
import signal
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.environ.get("SQLGATE_BIN") or os.path.join(HERE, "..", "..", "target", "debug", "sqlgate")


def start(data_dir, extra_args=(), log=None):
    """Starts the gateway with its private database in `data_dir`; returns
    (process, "host:port"); `process.database_socket` is the private
    server's unix socket (for tests that compare with a MySQL driver). Its log goes to `log` (a file) if given, else
    is read and dropped. Raises RuntimeError if it exits before listening."""
    process = subprocess.Popen(
        [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(data_dir, "mysql"),
         "--log-format", "json", *extra_args],
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    address = None
    process.database_socket = None  # the private server's unix socket, from its log line
    for line in process.stderr:
        if log:
            log.write(line)
        if '"socket"' in line and process.database_socket is None:
            try:
                process.database_socket = json.loads(line).get("socket")
            except ValueError:
                pass
        if "listening for gRPC" in line:
            address = json.loads(line)["address"]
            break
    if not address:
        process.wait()
        raise RuntimeError(f"the gateway did not start (exit status {process.returncode})")

    def drain():
        for rest in process.stderr:
            if log:
                log.write(rest)
                log.flush()

    threading.Thread(target=drain, daemon=True).start()
    return process, address


def wait_ready(address, within):
    """Waits (at most `within` seconds) until the private database answers."""
    from sqlgate_client import Client

    db = Client(address)
    deadline = time.monotonic() + within
    try:
        while True:
            try:
                db.execute("SELECT 1")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        db.close()


def stop(process, within):
    """SIGTERM, then its exit status; killed if it has not exited within
    `within` seconds (the status is then the kill's, never 0)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
