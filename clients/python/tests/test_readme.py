"""Runs the Python examples of the top-level README's "## Clients" section
word for word, as a user who ran `pip install './clients/python[sqlalchemy]'`
would.

Each ```python block of that section is written to a file in a temporary
directory and run there by this interpreter in its own process, with the
package importable from this source tree (PYTHONPATH) and registered the way
an installed package is: a `sqlgate_client-<version>.dist-info` next to it
carries the `sqlalchemy.dialects` entry points of pyproject.toml, so
`create_engine("sqlgate://...")` works without importing anything first.
(tests/test_packaging.py checks a real `pip install` registers them.) The only
change made to a block is the address, localhost:50051 -> the session
gateway's. Before each block the `accounts` table of the README's grpcurl
section is created afresh with alice (id 1, 100.00) and bob (id 2, 50.00);
afterwards the block's output and the balances it left are checked. If an
example changes, its expectation below changes with it.
"""
import os
import re
import subprocess
import sys
from decimal import Decimal

import pytest

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(PACKAGE, "..", "..", "README.md")

# (a phrase that identifies the block, its exact stdout, the balances of ids 1 and 2 after it)
EXPECTATIONS = [
    ('create_engine("sqlgate://', "alice 95.00\nbob 55.00\n", ("95.00", "55.00")),
    ("dbapi.connect(", "('bob', Decimal('51.00'))\n", ("100.00", "51.00")),
    ("db.transaction(transfer)", "[(Decimal('90.00'),)]\nalice 90.00\nbob 60.00\n", ("90.00", "60.00")),
]


def readme_blocks():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    assert "\n## Clients\n" in text, 'README.md has a "## Clients" section'
    section = text.split("\n## Clients\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def _block(phrase):
    matching = [b for b in readme_blocks() if phrase in b]
    assert len(matching) == 1, f"{len(matching)} README examples match {phrase!r}"
    return matching[0]


def _entry_points():
    """The [project.entry-points.*] tables of pyproject.toml, as entry_points.txt text."""
    with open(os.path.join(PACKAGE, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    out = []
    for group, body in re.findall(r'^\[project\.entry-points\."([^"]+)"\]\n(.*?)(?=^\[|\Z)', text, re.S | re.M):
        out.append(f"[{group}]")
        out += [f"{name} = {value}" for name, value in re.findall(r'^"?([\w.]+)"?\s*=\s*"([^"]+)"', body, re.M)]
    assert out, "pyproject.toml declares entry points"
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    """A directory to run the examples in, and the environment that makes the
    package importable and its entry points visible there."""
    work = tmp_path_factory.mktemp("readme")
    site = work / "site"
    dist_info = site / "sqlgate_client-0.0.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: sqlgate-client\nVersion: 0.0.0\n")
    (dist_info / "entry_points.txt").write_text(_entry_points())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE, str(site)])
    return work, env


def test_every_example_has_an_expectation_and_every_expectation_an_example():
    blocks = readme_blocks()
    assert blocks, "the Clients section has ```python blocks"
    for block in blocks:
        matching = [e for e in EXPECTATIONS if e[0] in block]
        assert len(matching) == 1, f"a README example matches {len(matching)} expectations:\n{block}"
    for phrase, _, _ in EXPECTATIONS:
        assert any(phrase in b for b in blocks), f"no README example matches {phrase!r}"


@pytest.mark.parametrize("phrase,stdout,balances", EXPECTATIONS, ids=["sqlalchemy", "dbapi", "client"])
def test_readme_example_runs_word_for_word(phrase, stdout, balances, gateway_address, client, user_dir):
    block = _block(phrase)
    assert block.count("localhost:50051") == 1, "the example names localhost:50051 once"

    client.execute("DROP TABLE IF EXISTS accounts")
    # The grpcurl section's table and rows.
    client.execute("CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(50), balance DECIMAL(12,2))")
    client.execute("INSERT INTO accounts VALUES (1, 'alice', 100.00), (2, 'bob', 50.00)")

    work, env = user_dir
    path = work / f"example_{EXPECTATIONS.index((phrase, stdout, balances)) + 1}.py"
    path.write_text(block.replace("localhost:50051", gateway_address))
    done = subprocess.run([sys.executable, str(path)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the example failed:\n{done.stderr}\n{done.stdout}"
    assert done.stdout == stdout

    rows = client.execute("SELECT id, balance FROM accounts ORDER BY id").rows
    assert rows == [(1, Decimal(balances[0])), (2, Decimal(balances[1]))]
