"""Bootstraps SQLAlchemy's pytest plugin for the compliance suite, as an
external dialect does (README.dialects.rst): the dialect is registered with
SQLAlchemy's registry (no installed entry point needed), and requirements.py
(next to this file) says what the gateway + MariaDB support."""
import os
import sys

import pytest
from sqlalchemy.dialects import registry

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # requirements.py
sys.path.insert(0, os.path.dirname(HERE))  # sqlgate_client from the source tree

registry.register("sqlgate", "sqlgate_client.sqlalchemy_dialect", "SqlgateDialect")
registry.register("mysql.sqlgate", "sqlgate_client.sqlalchemy_dialect", "SqlgateDialect")
# The test plugin's MySQL provisioning (below) rewrites the --dburi to
# "mariadb+sqlgate://" once it sees a MariaDB server.
registry.register("mariadb.sqlgate", "sqlgate_client.sqlalchemy_dialect", "SqlgateDialect")
registry.register("mysql.sqlgate_aio", "sqlgate_client.sqlalchemy_aio", "SqlgateAsyncDialect")
registry.register("mariadb.sqlgate_aio", "sqlgate_client.sqlalchemy_aio", "SqlgateAsyncDialect")

# SQLAlchemy loads a dialect's test provisioning from <its package>.provision;
# this dialect is SQLAlchemy's MySQL dialect underneath, so MySQL's hooks
# apply (foreign_key_checks off while emptying tables between tests, ...).
import sqlalchemy.dialects.mysql.provision  # noqa: E402,F401

pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

# Known failures: deselected in the CI subset, sorted in the summary.
pytest_plugins = ["sqlgate_suite_plugin"]

from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402,F401,F403
