"""SQLAlchemy's compliance suite for third-party dialects, run unchanged."""
from sqlalchemy.testing.suite import *  # noqa: F401,F403
