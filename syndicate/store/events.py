"""Partner events (one per revision, or one per replay) and their deliveries in the outbox."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from syndicate.model import Change, Revision
from syndicate.outbox import DeliveryState
from syndicate.store import statements as statement_store
from syndicate.store.db import dialect_insert
from syndicate.store.schema import deliveries, events, revisions

CHANNEL = "webhook"
SOURCE_KIND = "event"
# States in which a delivery's bytes may have reached the partner.
MAYBE_RECEIVED = frozenset({DeliveryState.SENT, DeliveryState.IN_FLIGHT, DeliveryState.UNKNOWN})


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


@dataclass
class Reach:
    """What the deliveries of one statement to one partner have come to so far."""

    maybe_received: bool = False
    pending: list[int] = field(default_factory=list)


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


def plan_delivery(conn: Connection, event_id: int, partner: str, now: datetime) -> bool:
    """Add a pending delivery of the event to ``partner``; False if it was planned already."""
    values = {
        "channel": CHANNEL,
        "source_kind": SOURCE_KIND,
        "source_id": event_id,
        "target": partner,
        "state": DeliveryState.PENDING.value,
        "attempts": 0,
        "due_at": now,
        "created_at": now,
    }
    query = dialect_insert(conn, deliveries).values(**values).on_conflict_do_nothing().returning(deliveries.c.id)
    # RETURNING, not rowcount: PostgreSQL reports -1 rows for a single-row insert that returns its key.
    return conn.execute(query).scalar() is not None


def reach(conn: Connection, statement_id: str) -> dict[str, Reach]:
    """For each partner, whether any event of the statement may have reached it, and which are still pending.

    A pending delivery that was tried before may have arrived too: a reply that
    timed out says nothing about the request.
    """
    query = (
        select(deliveries.c.id, deliveries.c.target, deliveries.c.state, deliveries.c.attempts)
        .join(events, events.c.id == deliveries.c.source_id)
        .where(_webhooks(), events.c.statement_id == statement_id)
        .order_by(deliveries.c.id)
    )
    found: dict[str, Reach] = {}
    for row in conn.execute(query):
        partner = found.setdefault(row.target, Reach())
        partner.maybe_received |= row.state in MAYBE_RECEIVED or row.attempts > 0
        if row.state == DeliveryState.PENDING:
            partner.pending.append(row.id)
    return found


def cancel(conn: Connection, ids: Iterable[int], now: datetime, reason: str) -> int:
    """Cancel these deliveries if they are still pending."""
    wanted = list(ids)
    if not wanted:
        return 0
    query = (
        update(deliveries)
        .where(deliveries.c.id.in_(wanted), deliveries.c.state == DeliveryState.PENDING)
        .values(state=DeliveryState.CANCELLED, finished_at=now, last_error=reason)
    )
    return int(conn.execute(query).rowcount)


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


def sent_since(conn: Connection, partner: str, since: datetime) -> list[Event]:
    """Events delivered to ``partner`` at or after ``since``, in the order of the record."""
    query = (
        select(events)
        .join(deliveries, deliveries.c.source_id == events.c.id)
        .where(
            _webhooks(),
            deliveries.c.target == partner,
            deliveries.c.state == DeliveryState.SENT,
            deliveries.c.finished_at >= since,
        )
        .order_by(events.c.seq, events.c.id)
    )
    return [_event(row) for row in conn.execute(query)]


def backlog(conn: Connection) -> dict[str, int]:
    """Deliveries not yet done (pending or in flight), by partner."""
    query = (
        select(deliveries.c.target, func.count())
        .where(_webhooks(), deliveries.c.state.in_([DeliveryState.PENDING, DeliveryState.IN_FLIGHT]))
        .group_by(deliveries.c.target)
    )
    return {target: count for target, count in conn.execute(query)}


def release(conn: Connection, partner: str, now: datetime) -> int:
    """Make every pending delivery to ``partner`` due now (it was enabled again)."""
    query = (
        update(deliveries)
        .where(_webhooks(), deliveries.c.target == partner, deliveries.c.state == DeliveryState.PENDING)
        .values(due_at=now)
    )
    return int(conn.execute(query).rowcount)


def _webhooks() -> Any:
    return (deliveries.c.channel == CHANNEL) & (deliveries.c.source_kind == SOURCE_KIND)


def _event(row: Any) -> Event:
    return Event(row.id, row.key, row.seq, row.statement_id, Change(row.change), row.replay_of, row.created_at)
