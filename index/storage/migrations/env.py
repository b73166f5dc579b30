"""Alembic's environment: run migrations on the connection `index.storage.migrations.upgrade` hands over.

For developers, `alembic -c <ini>` with `sqlalchemy.url` set also works (e.g. to autogenerate a new
revision against a database at head); quotebot itself never needs an alembic.ini.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import index.storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from index.storage.database import make_engine


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if _connection is not None:
    _run(_connection)
else:
    _url = context.config.get_main_option("sqlalchemy.url")
    if not _url:
        raise SystemExit("set sqlalchemy.url (or call index.storage.migrations.upgrade from code)")
    with make_engine(_url).connect() as _conn:
        _run(_conn)
        _conn.commit()
