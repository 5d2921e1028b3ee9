"""SQLAlchemy's compliance suite for third-party dialects, run unchanged
except where the suite itself cannot know about a third-party driver."""
from sqlalchemy.testing.suite import *  # noqa: F401,F403
from sqlalchemy.testing.suite import ServerSideCursorsTest as _ServerSideCursorsTest

from sqlgate_client import dbapi


class ServerSideCursorsTest(_ServerSideCursorsTest):
    # The suite recognises server-side cursors only of the drivers it knows
    # by name ("TODO: this is a huge issue as it prevents these tests from
    # being usable by third party dialects") and answers False for others.
    # The driver's server-side cursor is dbapi.SSCursor (ExecuteStream).
    # On the asyncio dialect it is the adapted cursor over
    # aio_dbapi.AsyncSSCursor, which says so (server_side), as aiomysql's does.
    def _is_server_side(self, cursor):
        return isinstance(cursor, dbapi.SSCursor) or getattr(cursor, "server_side", False)
