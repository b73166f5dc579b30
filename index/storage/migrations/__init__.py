"""Schema migrations (Alembic), run on start: a database is brought to this quotebot's head revision.

- A fresh database gets every migration.
- A database created before migrations existed (quotebot's tables, no `alembic_version`) is stamped
  as revision 0001 when its tables hold 0001's columns, then upgraded.
- A database at a revision this code does not know was written by a newer quotebot: refused.

No alembic.ini is needed: the configuration is built here, pointing at this folder. To add a
revision, copy the newest file under `versions/`, give it the next number and set `down_revision`
(or autogenerate one with a scratch alembic.ini whose `script_location` is this folder and whose
`sqlalchemy.url` is a database at head); `tests/index/test_migrations.py` checks that the
migrations and the SQLModel tables agree.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from index.errors import StoreError

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
BASELINE = "0001"
# The tables and columns quotebot created before Alembic (with SQLModel's create_all) == revision 0001.
BASELINE_TABLES: dict[str, set[str]] = {
    "article": {
        "id",
        "collection",
        "source_id",
        "title",
        "url",
        "kind",
        "text",
        "content_hash",
        "n_sentences",
        "n_chunks",
        "added_by",
        "created_at",
    },
    "sentence": {"id", "collection", "article_id", "ordinal", "start", "end", "vector"},
    "chunk": {"id", "collection", "article_id", "first", "last", "start", "end"},
    "question": {
        "id",
        "collection",
        "user_id",
        "text",
        "answered",
        "article_id",
        "start",
        "end",
        "score",
        "created_at",
    },
    "feedback": {"id", "question_id", "collection", "user_id", "helpful", "created_at"},
    "meta": {"key", "value"},
}
_PG_LOCK_KEY = 0x71756F7465  # "quote"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for this package (optionally bound to an open connection)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revisions(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: this code's head); see the module docstring."""
    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    known = {s.revision for s in script.walk_revisions()}
    if revision == "head":
        # The common case, a database already at head, takes no lock: a long write by another
        # process (an ingest holding SQLite's write lock) must not keep this one from starting.
        with engine.connect() as conn:
            if current_revisions(conn) == {script.get_current_head()}:
                return
    with engine.begin() as conn:
        # Processes starting together (a bot, a CLI, several shards) must not migrate at the same time.
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now; DDL then runs inside it
        current = current_revisions(conn)
        if unknown := current - known:
            raise StoreError(
                f"The database was written by a newer quotebot (schema revision {', '.join(sorted(unknown))}; "
                f"this one knows up to {script.get_current_head()}); upgrade quotebot."
            )
        cfg.attributes["connection"] = conn
        try:
            if not current and _has_baseline_tables(conn):
                log.info("database created before migrations: stamping it as revision %s", BASELINE)
                command.stamp(cfg, BASELINE)
            command.upgrade(cfg, revision)
        except CommandError as e:
            raise StoreError(f"Cannot migrate the database: {e}") from e


def _has_baseline_tables(conn: Connection) -> bool:
    """True for a pre-Alembic quotebot database; False for an empty one (or one with only others' tables)."""
    insp = inspect(conn)
    present = set(insp.get_table_names()) & set(BASELINE_TABLES)
    if not present:
        return False
    problems = [f"table {t} is missing" for t in sorted(set(BASELINE_TABLES) - present)]
    for t in sorted(present):
        columns = {c["name"] for c in insp.get_columns(t)}
        if missing := BASELINE_TABLES[t] - columns:
            problems.append(f"{t} lacks {', '.join(sorted(missing))}")
    if problems:
        raise StoreError(
            "The database holds some of quotebot's tables but not the schema quotebot expects "
            f"({'; '.join(problems)}): use an empty database, or restore a backup."
        )
    return True
