"""What the store remembers of written feed documents and of WebSub pings still owed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from syndicate.store.db import upsert
from syndicate.store.schema import feed_documents, pings


@dataclass(frozen=True)
class Written:
    """A feed document as last written: the digest of its inputs, and its size on disk."""

    path: str
    inputs: str
    digest: str
    size: int


@dataclass(frozen=True)
class Ping:
    """A publish ping owed to a hub, as it stood when read (``due_at`` fences later updates)."""

    hub: str
    topic: str
    attempts: int
    due_at: datetime


def written(conn: Connection) -> dict[str, Written]:
    """Every feed document written so far, by path."""
    rows = conn.execute(
        select(feed_documents.c.path, feed_documents.c.inputs, feed_documents.c.digest, feed_documents.c.size)
    )
    return {r.path: Written(r.path, r.inputs, r.digest, r.size) for r in rows}


def record_written(conn: Connection, documents: Iterable[Written], now: datetime) -> None:
    """Remember what each document was made from (replacing what was known)."""
    rows = [
        {"path": d.path, "inputs": d.inputs, "digest": d.digest, "size": d.size, "written_at": now} for d in documents
    ]
    if rows:
        conn.execute(delete(feed_documents).where(feed_documents.c.path.in_([r["path"] for r in rows])))
        conn.execute(feed_documents.insert(), rows)


def owe_pings(conn: Connection, hubs: Iterable[str], topics: Iterable[str], now: datetime) -> None:
    """Owe each hub a ping for each topic, due now; one owed ping per pair however often it changes."""
    for hub in hubs:
        for topic in topics:
            upsert(conn, pings, {"hub": hub, "topic": topic, "due_at": now, "attempts": 0}, ["hub", "topic"])


def due_pings(conn: Connection, now: datetime) -> list[Ping]:
    """Pings whose time has come."""
    cols = (pings.c.hub, pings.c.topic, pings.c.attempts, pings.c.due_at)
    query = select(*cols).where(pings.c.due_at <= now).order_by(pings.c.due_at, pings.c.hub, pings.c.topic)
    return [Ping(r.hub, r.topic, r.attempts, r.due_at) for r in conn.execute(query)]


def ping_done(conn: Connection, ping: Ping) -> None:
    """The hub took the ping; one owed since it was read (the feed changed again) still stands."""
    conn.execute(delete(pings).where(*_same(ping)))


def ping_failed(conn: Connection, ping: Ping, retry_at: datetime, error: str) -> None:
    """The hub did not take the ping; try again at ``retry_at`` (unless it is owed anew already)."""
    values = {"attempts": ping.attempts + 1, "due_at": retry_at, "last_error": error}
    conn.execute(pings.update().where(*_same(ping)).values(**values))


def _same(ping: Ping) -> tuple[Any, ...]:
    return pings.c.hub == ping.hub, pings.c.topic == ping.topic, pings.c.due_at == ping.due_at


def pending_pings(conn: Connection) -> int:
    """How many pings are still owed."""
    return int(conn.execute(select(func.count()).select_from(pings)).scalar_one())
