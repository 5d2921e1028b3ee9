"""Starts a real gateway (with its own private MariaDB, as tests/conftest.py
does: --listen 127.0.0.1:0, address from the "listening for gRPC" log line),
runs SQLAlchemy's compliance suite against it with pytest, and stops the
gateway whatever happens.

    run_suite.py [--ci] [--gateway-log FILE] [pytest arguments...]

--ci runs the CI subset (CI_SUBSET in sqlgate_suite_plugin.py, less the
known failures) instead of the whole suite;
other arguments go to pytest (e.g. -k, -x, -v, a test id). Exits with
pytest's status."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
sys.path.insert(0, PYTHON_DIR)

BINARY = os.environ.get("SQLGATE_BIN") or os.path.join(PYTHON_DIR, "..", "..", "target", "debug", "sqlgate")


def start_gateway(data_dir, log_path):
    """Starts the gateway; returns (process, "host:port")."""
    process = subprocess.Popen(
        [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(data_dir, "mysql"),
         "--log-format", "json",
         # When the run is interrupted, what is still in flight is the
         # interrupted run's: no need to wait the default 15 s for it.
         "--shutdown-grace", "2s"],
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    log = open(log_path, "w") if log_path else None
    address = None
    for line in process.stderr:
        if log:
            log.write(line)
        if "listening for gRPC" in line:
            address = json.loads(line)["address"]
            break
    if not address:
        process.wait()
        raise SystemExit(f"the gateway did not start (exit status {process.returncode})")

    def drain():
        for rest in process.stderr:
            if log:
                log.write(rest)
                log.flush()

    threading.Thread(target=drain, daemon=True).start()
    return process, address


def wait_ready(address):
    from sqlgate_client import Client

    db = Client(address)
    deadline = time.monotonic() + 60
    try:
        while True:  # ready once the private database answers
            try:
                db.execute("SELECT 1")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        db.close()


def stop_gateway(process):
    if process.poll() is None:
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(f"gateway stopped ({time.monotonic() - started:.1f} s)", file=sys.stderr, flush=True)


def main(argv):
    ci = "--ci" in argv
    argv = [a for a in argv if a != "--ci"]
    log_path = None
    if "--gateway-log" in argv:
        i = argv.index("--gateway-log")
        log_path = os.path.abspath(argv[i + 1])
        del argv[i:i + 2]

    # SIGTERM/SIGHUP (e.g. a CI job cancelled) unwind through finally below.
    def interrupted(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    data_dir = tempfile.mkdtemp(prefix="sqlgate-sasuite-")
    process = None
    try:
        process, address = start_gateway(data_dir, log_path)
        wait_ready(address)
        command = [sys.executable, "-m", "pytest", "test_suite.py", "--dburi", f"mysql+sqlgate://{address}/",
                   *argv]
        env = dict(os.environ, SQLGATE_SUITE_CI="1" if ci else "0")
        print("gateway at", address, "(SQLAlchemy suite:", "CI subset)" if ci else "whole suite)", flush=True)
        return subprocess.call(command, cwd=HERE, env=env)
    finally:
        if process is not None:
            stop_gateway(process)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
