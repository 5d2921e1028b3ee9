"""Starts a real gateway (with its own private MariaDB, as tests/conftest.py
does, with gateway_process.py),
runs SQLAlchemy's compliance suite against it with pytest, and stops the
gateway whatever happens.

    run_suite.py [--ci] [--aio] [--gateway-log FILE] [pytest arguments...]

--ci runs the CI subset (CI_SUBSET in sqlgate_suite_plugin.py, less the
known failures) instead of the whole suite; --aio runs it on the asyncio
dialect (mysql+sqlgate_aio://: SQLAlchemy's test plugin then runs each test
through the async adaptation, greenlets and all; with --ci, the smaller
AIO_CI_SUBSET of sqlgate_suite_plugin.py);
other arguments go to pytest (e.g. -k, -x, -v, a test id). Exits with
pytest's status."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
sys.path.insert(0, PYTHON_DIR)

import gateway_process  # noqa: E402  (clients/python, on the path above)


def stop_gateway(process):
    started = time.monotonic()
    gateway_process.stop(process, within=60)
    print(f"gateway stopped ({time.monotonic() - started:.1f} s)", file=sys.stderr, flush=True)


def main(argv):
    ci = "--ci" in argv
    aio = "--aio" in argv
    argv = [a for a in argv if a not in ("--ci", "--aio")]
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
        log = open(log_path, "w") if log_path else None
        # When the run is interrupted, what is still in flight is the
        # interrupted run's: no need to wait the default 15 s for it.
        process, address = gateway_process.start(data_dir, ["--shutdown-grace", "2s"], log)
        gateway_process.wait_ready(address, within=60)
        command = [sys.executable, "-m", "pytest", "test_suite.py", "--dburi",
                   f"mysql+{'sqlgate_aio' if aio else 'sqlgate'}://{address}/",
                   *argv]
        env = dict(os.environ, SQLGATE_SUITE_CI=("aio" if aio else "1") if ci else "0")
        print("gateway at", address, "(SQLAlchemy suite:", "CI subset" if ci else "whole suite",
              "on the asyncio dialect)" if aio else ")", flush=True)
        return subprocess.call(command, cwd=HERE, env=env)
    finally:
        if process is not None:
            stop_gateway(process)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
