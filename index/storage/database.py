"""The database itself: the engine (SQLite by default, any SQLAlchemy URL), migrations on open,
short sessions, failures in one plain line, the write generation of each collection and the
advisory lock that serialises a collection's writers across hosts (PostgreSQL)."""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, create_engine, select, update

from index.errors import InputError, StoreError
from index.storage import migrations
from index.storage.models import (
    SCHEMA_VERSION,
    Article,
    CollectionState,
    Meta,
)

_COLLECTION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_collection(collection: str) -> str:
    if not _COLLECTION.match(collection or ""):
        raise InputError(f"Invalid collection name {collection!r} (letters, digits, . _ - only).")
    return collection


def describe_db_error(e: BaseException, path: Path | None = None) -> str:
    """A database failure in one plain line (no SQL, no SQLAlchemy links). `path`: the SQLite file,
    whose disk is looked at when SQLite only says "disk I/O error" (it cannot map its shared-memory
    file on a full disk)."""
    orig = getattr(e, "orig", None) or e
    msg = " ".join(str(orig).split())
    low = msg.lower()
    full = "disk is full" in low or "no space left" in low or "disk full" in low
    if not full and "disk i/o error" in low and path is not None:
        with contextlib.suppress(OSError):
            full = shutil.disk_usage(path.parent).free < 1 << 20
    if full:
        return "the disk is full; free some space and try again"
    if "database is locked" in low:
        return "the database is busy (another quotebot process is writing); try again in a moment"
    if "could not decode" in low or "malformed" in low or "not a database" in low or "disk i/o error" in low:
        return (
            f"the database file is damaged ({msg[:120]}); restore a backup "
            "(quotebot export / import) or a copy of the file"
        )
    return f"{orig.__class__.__name__}: {msg[:200]}"


def db_reason(e: BaseException) -> str:
    """A database failure (or a StoreError wrapping one) in one plain line."""
    cause = e.__cause__ if isinstance(e, StoreError) and e.__cause__ is not None else e
    return describe_db_error(cause) if isinstance(cause, SQLAlchemyError) else str(e)


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys and a busy timeout for a bot + a CLI."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as e:
        raise StoreError(f"Cannot use database URL {url!r}: {e}") from e
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


class Database:
    """One engine and its short sessions (thread-safe)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        try:
            migrations.upgrade(self.engine)
            with Session(self.engine) as s:
                row = s.get(Meta, "schema_version")
                if row is None:
                    s.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
                    try:
                        s.commit()
                    except IntegrityError:
                        s.rollback()  # another process starting at the same moment wrote it
                elif int(row.value) > SCHEMA_VERSION:
                    raise StoreError(
                        f"The database was written by a newer quotebot (schema {row.value}, this one knows "
                        f"{SCHEMA_VERSION}); upgrade quotebot."
                    )
        except SQLAlchemyError as e:
            raise StoreError(
                f"Cannot open the database {self._safe_url()}: {describe_db_error(e, self.sqlite_path)}"
            ) from e

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for a server database."""
        if self.engine.dialect.name != "sqlite" or not self.engine.url.database:
            return None
        return Path(self.engine.url.database)

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session; a database failure inside it becomes a StoreError with one plain line."""
        try:
            with Session(self.engine, expire_on_commit=False) as s:
                yield s
        except SQLAlchemyError as e:
            raise StoreError(f"Database error: {describe_db_error(e, self.sqlite_path)}") from e

    def close(self) -> None:
        self.engine.dispose()

    def damage(self) -> str | None:
        """What is wrong with the database file itself (SQLite's quick_check, and every text read
        back), or None when it is sound."""
        try:
            with self.engine.connect() as conn:
                if conn.dialect.name == "sqlite":
                    rows = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
                    if rows != ["ok"]:
                        return "; ".join(rows[:3])
            with self.session() as s:
                for _ in s.exec(select(Article.id, Article.title, Article.text, Article.source_id)):
                    pass
        except (SQLAlchemyError, StoreError) as e:
            cause = e.__cause__ if isinstance(e, StoreError) and e.__cause__ is not None else e
            return describe_db_error(cause, self.sqlite_path)
        return None

    @contextmanager
    def collection_lock(self, collection: str, *, wait: bool = True) -> Iterator[bool]:
        """On PostgreSQL, a session advisory lock per collection held for the block: writers on other
        hosts (their file locks are per machine) wait for it; released by the server if this
        process dies. Yields whether the lock is held (always True when `wait`); SQLite: a no-op
        (one machine; the library's file lock serialises writers)."""
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        key = int.from_bytes(
            hashlib.sha256(b"quotebot-collection:" + collection.encode()).digest()[:8], "big", signed=True
        )
        try:
            conn = self.engine.connect()
        except SQLAlchemyError as e:
            raise StoreError(f"Database error: {describe_db_error(e)}") from e
        try:
            if wait:
                conn.execute(sql_text("SELECT pg_advisory_lock(:k)"), {"k": key})
                held = True
            else:
                held = bool(conn.execute(sql_text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
            try:
                yield held
            finally:
                if held:
                    with contextlib.suppress(SQLAlchemyError):
                        conn.execute(sql_text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        conn.commit()
        finally:
            conn.close()

    def generation(self, collection: str) -> int:
        """The collection's write generation (0 before its first write)."""
        with self.session() as s:
            row = s.get(CollectionState, collection)
            return int(row.generation) if row is not None else 0

    @staticmethod
    def bump(s: Session, collection: str) -> None:
        """Advance the collection's generation inside the caller's write transaction (writers of one
        collection are serialised by the library's collection lock)."""
        done = s.exec(
            update(CollectionState)  # type: ignore[call-overload]
            .where(col(CollectionState.collection) == collection)
            .values(generation=col(CollectionState.generation) + 1)
        )
        if not done.rowcount:
            s.add(CollectionState(collection=collection, generation=1))

    def get_meta(self, key: str) -> str | None:
        with self.session() as s:
            row = s.get(Meta, key)
            return row.value if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.session() as s:
            row = s.get(Meta, key)
            if row is None:
                s.add(Meta(key=key, value=value))
            else:
                row.value = value
                s.add(row)
            s.commit()


@dataclass(frozen=True)
class Probe:
    """What a look at a database found: its schema revisions and its collections."""

    revisions: set[str]
    collections: list[str]


def probe(url: str) -> Probe:
    """Look at a database without changing it (no migration, no table created): for health checks.
    Raises StoreError with the reason in words ("database unreachable: ...")."""
    try:
        engine = make_engine(url)
    except StoreError as e:
        raise StoreError(f"database: {e}") from e
    try:
        with engine.connect() as conn:
            conn.execute(sql_text("SELECT 1"))
            revs = migrations.current_revisions(conn)
            collections = (
                [r[0] for r in conn.execute(sql_text("SELECT DISTINCT collection FROM article")).fetchall()]
                if revs
                else []
            )
    except SQLAlchemyError as e:
        raise StoreError(f"database unreachable: {describe_db_error(e)}") from e
    finally:
        engine.dispose()
    return Probe(set(revs), collections)
