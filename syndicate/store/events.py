"""Partner events: one per revision, or one per replay (the outbox plans their deliveries)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from syndicate.model import Change, Revision
from syndicate.store import statements as statement_store
from syndicate.store.db import dialect_insert
from syndicate.store.schema import events, revisions


@dataclass(frozen=True)
class Event:
    """A stored event: one revision, to be pushed to partners."""

    id: int
    key: str
    seq: int
    statement_id: str
    change: Change
    replay_of: int | None
    created_at: datetime


def create(conn: Connection, key: str, revision: Revision, now: datetime, replay_of: int | None = None) -> int | None:
    """Insert the event under ``key``; None if it exists already (planned once, whoever came first)."""
    values = {
        "key": key,
        "seq": revision.seq,
        "statement_id": revision.statement_id,
        "change": revision.change.value,
        "replay_of": replay_of,
        "created_at": now,
    }
    query = dialect_insert(conn, events).values(**values).on_conflict_do_nothing(index_elements=["key"])
    found = conn.execute(query.returning(events.c.id)).scalar()
    return int(found) if found is not None else None


def of_statement(statement_id: str) -> Select[Any]:
    """The ids of a statement's events."""
    return select(events.c.id).where(events.c.statement_id == statement_id)


def load(conn: Connection, ids: Iterable[int]) -> dict[int, tuple[Event, Revision]]:
    """Events by id, each with the revision it pushes."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    found = [_event(row) for row in conn.execute(select(events).where(events.c.id.in_(wanted)))]
    revs = statement_store.load_revisions(conn, {e.seq for e in found})
    return {e.id: (e, revs[e.seq]) for e in found}


def retracted_later(conn: Connection, found: Iterable[Event]) -> set[int]:
    """Ids of publication and update events whose statement was retracted after them."""
    pushes = [e for e in found if e.change != Change.RETRACTED]
    if not pushes:
        return set()
    query = (
        select(revisions.c.statement_id, func.max(revisions.c.seq))
        .where(revisions.c.change == Change.RETRACTED, revisions.c.statement_id.in_({e.statement_id for e in pushes}))
        .group_by(revisions.c.statement_id)
    )
    last_retraction = {statement_id: seq for statement_id, seq in conn.execute(query)}
    return {e.id for e in pushes if last_retraction.get(e.statement_id, 0) > e.seq}


def in_order(conn: Connection, ids: Iterable[int]) -> list[Event]:
    """These events, in the order of the record (by revision, then by id)."""
    wanted = sorted(set(ids))
    query = select(events).where(events.c.id.in_(wanted)).order_by(events.c.seq, events.c.id)
    return [_event(row) for row in conn.execute(query)] if wanted else []


def _event(row: Any) -> Event:
    return Event(row.id, row.key, row.seq, row.statement_id, Change(row.change), row.replay_of, row.created_at)
