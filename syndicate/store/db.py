"""The database handle: one engine, two dialects (SQLite, PostgreSQL), three kinds of transaction.

- ``read()``: a plain transaction for queries;
- ``write()``: a transaction that writes; on SQLite it begins ``IMMEDIATE`` so
  two writers queue instead of failing half-way with "database is locked";
- ``exclusive(name)``: a write that only one process at a time may run under
  ``name`` (ingest, schema upgrade): a PostgreSQL advisory lock, or SQLite's
  single writer.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import DateTime, Table, create_engine, event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeDecorator

SQLITE_BUSY_MS = 30_000


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, whatever the engine keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; times must carry a zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Database:
    """An engine and the transactions syndicate needs of it.

    ``read_only`` is for commands that only look (``status``): every transaction
    is read-only (SQLite opens the file read-only and never creates it), so
    looking can neither change the database nor upgrade it.
    """

    def __init__(self, url: str, *, read_only: bool = False, **engine_options: Any) -> None:
        self.url = url
        self.read_only = read_only
        self.engine: Engine = _engine(url, read_only, **engine_options)
        self.dialect = self.engine.dialect.name

    def exists(self) -> bool:
        """Whether the database is there to be opened (an SQLite file; a server's database is assumed)."""
        path = make_url(self.url).database if self.dialect == "sqlite" else None
        return not path or path == ":memory:" or Path(path.removeprefix("file:").split("?")[0]).exists()

    @property
    def shown(self) -> str:
        """The URL as it may be shown: without its password."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction for reading."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that writes; on SQLite it takes the write lock at BEGIN."""
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn

    @contextmanager
    def exclusive(self, name: str) -> Iterator[Connection]:
        """A write transaction no other process runs under ``name`` at the same time."""
        with self.write() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(name)})
            yield conn

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold ``name`` against other processes for a while, without holding a transaction open.

        On PostgreSQL a session advisory lock (other nodes wait for it); on
        SQLite nothing: an SQLite database belongs to one machine, where the
        write lock already orders what matters.
        """
        if self.dialect != "postgresql":
            yield
            return
        with self.engine.connect() as conn:
            key = {"key": advisory_key(name)}
            conn.execute(text("SELECT pg_advisory_lock(:key)"), key)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                conn.commit()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def unusable(key: str, url: str, exc: SQLAlchemyError) -> str:
    """One line saying the database at ``url`` (set by ``key``) failed, and why; never its password."""
    shown = make_url(url).render_as_string(hide_password=True) if "://" in url else url
    # A driver's own error says why in its first line; SQLAlchemy's wrapping adds the SQL and a link.
    cause = getattr(exc, "orig", None)
    reason = str(cause if cause is not None else exc).strip().splitlines()
    return f"{key}: the database {shown} cannot be used: {reason[0] if reason else type(exc).__name__}"


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT that knows ON CONFLICT, for the engine ``conn`` talks to."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def upsert(conn: Connection, table: Table, values: dict[str, Any], keys: list[str]) -> None:
    """Insert ``values``, or update the row with the same ``keys``: safe when two nodes do it at once."""
    query = dialect_insert(conn, table).values(**values)
    changes = {name: query.excluded[name] for name in values if name not in keys}
    conn.execute(
        query.on_conflict_do_update(index_elements=keys, set_=changes)
        if changes
        else query.on_conflict_do_nothing(index_elements=keys)
    )


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock named ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _engine(url: str, read_only: bool, **options: Any) -> Engine:
    if not url.startswith("sqlite"):
        options.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **options)
        if read_only:
            event.listen(engine, "connect", _postgresql_read_only)
        return engine
    connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_MS / 1000}
    if read_only:  # opened read-only as an SQLite URI: a missing file is an error, not a new database
        url = f"sqlite:///file:{quote(make_url(url).database or '')}?mode=ro&uri=true"
    engine = create_engine(url, connect_args=connect_args, **options)
    event.listen(engine, "connect", partial(_sqlite_connect, read_only))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _postgresql_read_only(dbapi_connection: Any, record: Any) -> None:
    # Set on the session, so whatever options the URL carries (a search_path) still apply.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    dbapi_connection.commit()


def _sqlite_connect(read_only: bool, dbapi_connection: Any, record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    if read_only:  # opened with mode=ro: only what reads may be set (WAL is the writers' business)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        return
    _write_ahead_log(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA cache_size=-16384")  # 16 MiB: the hot end of a large outbox stays in memory
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _write_ahead_log(cursor: Any) -> None:
    """Switch the file to WAL (readers never wait for the writer); it stays so once set.

    Switching needs the file to itself, and SQLite does not wait for that, so
    two processes opening a new database together retry for a moment.
    """
    deadline = time.monotonic() + SQLITE_BUSY_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
