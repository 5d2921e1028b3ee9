#!/usr/bin/env python3
"""Runs the README's first command as a newcomer would: `scripts/run`.

It builds the gateway (release, the `sqlgate` binary only) and serves with a
private MariaDB of its own; the only arguments added are a free port and a
scratch data directory (`--listen 127.0.0.1:0 --data-dir DIR`: scripts/run
passes its arguments to `sqlgate serve`), so that it never collides with a
gateway already running. Then: its health is answered (grpcurl
grpc.health.v1.Health/Check → SERVING), a grpcurl Execute returns its row,
and SIGTERM stops it cleanly (exit status 0, "shutdown complete" logged).
Prints how long the build and start took.

Usage: tests/readme/scripts_run.py  (needs grpcurl: scripts/install-test-tools)
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The release build of a fresh clone is most of this wait.
START_WITHIN = 1500
READY_WITHIN = 60
STOP_WITHIN = 30
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def grpcurl(*args):
    return subprocess.run(["grpcurl", "-plaintext", *args], capture_output=True, text=True, timeout=30)


def main():
    if not shutil.which("grpcurl"):
        raise SystemExit("grpcurl not found: scripts/install-test-tools installs it")
    data_dir = tempfile.mkdtemp(prefix="sqlgate-scripts-run-")
    log_lines = []
    listening = threading.Event()
    address = []
    started = time.monotonic()
    process = subprocess.Popen(
        [os.path.join(ROOT, "scripts", "run"), "--listen", "127.0.0.1:0",
         "--data-dir", os.path.join(data_dir, "mysql")],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )

    def read():
        for line in process.stdout:
            line = ANSI.sub("", line)
            log_lines.append(line)
            found = re.search(r"listening for gRPC.*address=(\S+)", line)
            if found and not address:
                address.append(found.group(1))
                listening.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = started + START_WITHIN
        while not listening.wait(1):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("scripts/run did not start listening")
        print(f"scripts/run: built and listening on {address[0]} after {time.monotonic() - started:.0f} s")
        target = address[0]
        deadline = time.monotonic() + READY_WITHIN
        while True:
            health = grpcurl(target, "grpc.health.v1.Health/Check")
            if '"SERVING"' in health.stdout:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"health never SERVING: {health.stdout}{health.stderr}")
            time.sleep(0.2)
        execute = grpcurl("-d", '{"sql": "SELECT 1 + 1 AS two"}', target, "sqlgate.v1.Database/Execute")
        assert execute.returncode == 0, execute.stderr
        assert '"int64Value": "2"' in execute.stdout, execute.stdout
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=STOP_WITHIN)
        reader.join(timeout=5)
        assert status == 0, f"exit status {status}"
        assert any("shutdown complete" in line for line in log_lines), "no 'shutdown complete' logged"
        print("scripts/run: health SERVING, Execute answered, stopped cleanly on SIGTERM")
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait()
        sys.stderr.write("".join(log_lines[-40:]))
        raise
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
