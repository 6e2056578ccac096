"""Small named values the pipeline keeps between runs (last tick, ...)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from syndicate.store.db import dialect_insert, upsert
from syndicate.store.schema import meta

LAST_CHECK = "last_check"  # what the last `syndicate check` (or the daemon's start) found, for the console


def get(conn: Connection, key: str, default: Any = None) -> Any:
    """The JSON value stored under ``key``, or ``default``."""
    value = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
    return default if value is None else json.loads(value)


def put_new(conn: Connection, key: str, value: Any) -> None:
    """Store ``value`` under ``key`` unless something is stored there already."""
    query = dialect_insert(conn, meta).values(key=key, value=json.dumps(value, sort_keys=True))
    conn.execute(query.on_conflict_do_nothing(index_elements=["key"]))


def put(conn: Connection, key: str, value: Any) -> None:
    """Store ``value`` (JSON-encodable) under ``key``."""
    upsert(conn, meta, {"key": key, "value": json.dumps(value, sort_keys=True)}, ["key"])
