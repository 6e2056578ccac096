"""Small named values the pipeline keeps between runs (last tick, ...)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from syndicate.store.schema import meta


def get(conn: Connection, key: str, default: Any = None) -> Any:
    """The JSON value stored under ``key``, or ``default``."""
    value = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
    return default if value is None else json.loads(value)


def put(conn: Connection, key: str, value: Any) -> None:
    """Store ``value`` (JSON-encodable) under ``key``."""
    encoded = json.dumps(value, sort_keys=True)
    updated = conn.execute(meta.update().where(meta.c.key == key).values(value=encoded))
    if updated.rowcount == 0:
        conn.execute(meta.insert().values(key=key, value=encoded))
