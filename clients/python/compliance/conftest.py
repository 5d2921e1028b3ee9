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

pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402,F401,F403
