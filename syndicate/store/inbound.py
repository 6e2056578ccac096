"""Reports that came back, stored raw first and classified after; and why subscribers' standing changed.

A report is stored (and committed) before anything is made of it, keyed by a
digest of its bytes, so the same report delivered twice, or read again from
a mailbox after a crash, is one row and is acted on once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from syndicate.store.db import dialect_insert
from syndicate.store.schema import inbound, subscriber_changes

SOFT_KINDS = ("soft",)
BOUNCE_KINDS = ("soft", "hard")


@dataclass(frozen=True)
class Stored:
    """A report as stored: what came in, and (once processed) what it was and did."""

    id: int
    source: str
    received_at: datetime
    envelope_from: str
    envelope_to: str
    raw: bytes
    kind: str | None
    delivery_id: int | None
    subscriber_id: int | None
    address: str | None
    status: str | None
    detail: str | None
    action: str | None
    processed_at: datetime | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Stored:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


def digest_of(raw: bytes) -> str:
    """The key a report is stored under."""
    return hashlib.sha256(raw).hexdigest()


def add(
    conn: Connection, raw: bytes, source: str, envelope_from: str, envelope_to: Sequence[str], now: datetime,
    digest: str | None = None,
) -> tuple[int, bool]:  # fmt: skip
    """Store a report; return its id and whether it is new (False: the same report was stored before)."""
    key = digest or digest_of(raw)
    values = {
        "digest": key, "source": source, "received_at": now, "envelope_from": envelope_from,
        "envelope_to": ", ".join(envelope_to), "raw": raw,
    }  # fmt: skip
    added = conn.execute(dialect_insert(conn, inbound).values(**values).on_conflict_do_nothing()).rowcount
    found = conn.execute(select(inbound.c.id).where(inbound.c.digest == key)).scalar_one()
    return int(found), bool(added)


def get(conn: Connection, report_id: int, *, for_update: bool = False) -> Stored | None:
    """One report (``for_update``: locked until the transaction ends, so two processings of it take turns)."""
    query = select(*_columns()).where(inbound.c.id == report_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    return Stored.from_row(row) if row is not None else None


def unprocessed(conn: Connection, limit: int, *, for_update: bool = False) -> list[int]:
    """Ids of reports stored and not yet processed, oldest first (``for_update``: taken, skipping those another
    node is processing)."""
    query = select(inbound.c.id).where(inbound.c.processed_at.is_(None)).order_by(inbound.c.id).limit(limit)
    if for_update:
        query = query.with_for_update(skip_locked=True)
    return [int(i) for i in conn.execute(query).scalars()]


def listing(conn: Connection, kind: str | None = None, limit: int = 50) -> list[Stored]:
    """The newest reports (of ``kind``; "new": not processed yet)."""
    query = select(*_columns()).order_by(inbound.c.id.desc()).limit(limit)
    if kind == "new":
        query = query.where(inbound.c.processed_at.is_(None))
    elif kind:
        query = query.where(inbound.c.kind == kind)
    return [Stored.from_row(row) for row in conn.execute(query)]


def record(
    conn: Connection, report_id: int, *, kind: str, delivery_id: int | None, subscriber_id: int | None,
    address: str, status: str, detail: str, action: str, now: datetime,
) -> None:  # fmt: skip
    """What a report was found to be, and what it did."""
    conn.execute(
        update(inbound)
        .where(inbound.c.id == report_id)
        .values(
            kind=kind,
            delivery_id=delivery_id,
            subscriber_id=subscriber_id,
            address=address or None,
            status=status or None,
            detail=detail or None,
            action=action,
            processed_at=now,
        )
    )


def counts(conn: Connection) -> dict[str, int]:
    """Reports by kind ("new": not processed yet)."""
    query = select(func.coalesce(inbound.c.kind, "new"), func.count()).group_by(inbound.c.kind)
    return {str(kind): int(n) for kind, n in conn.execute(query)}


def bounced_deliveries(conn: Connection, subscriber_id: int) -> set[int]:
    """The deliveries to a subscriber that some report says bounced (hard or soft)."""
    query = select(inbound.c.delivery_id).where(
        inbound.c.subscriber_id == subscriber_id, inbound.c.kind.in_(BOUNCE_KINDS), inbound.c.delivery_id.is_not(None)
    )
    return {int(i) for i in conn.execute(query).scalars()}


def soft_bounces(conn: Connection, subscriber_id: int, since: datetime, last_success: datetime | None) -> int:
    """Deliveries to the subscriber that soft-bounced since ``since`` and after ``last_success``.

    Several reports about one delivery (delayed, then delayed again) count once. Only
    processed reports count (the one being processed is recorded first).
    """
    query = select(func.count(func.distinct(inbound.c.delivery_id))).where(
        inbound.c.subscriber_id == subscriber_id,
        inbound.c.kind.in_(SOFT_KINDS),
        inbound.c.received_at >= since,
        inbound.c.processed_at.is_not(None),
    )
    if last_success is not None:
        query = query.where(inbound.c.received_at > last_success)
    return int(conn.execute(query).scalar_one())


def change(conn: Connection, subscriber_id: int, status: str, cause: str, report_id: int | None, now: datetime) -> None:
    """Keep why a subscriber's standing changed."""
    conn.execute(
        insert(subscriber_changes).values(
            subscriber_id=subscriber_id, status=status, cause=cause, report_id=report_id, at=now
        )
    )


def changes_of(conn: Connection, subscriber_id: int) -> list[Row[Any]]:
    """A subscriber's changes, oldest first."""
    query = (
        select(
            subscriber_changes.c.status,
            subscriber_changes.c.cause,
            subscriber_changes.c.report_id,
            subscriber_changes.c.at,
        )
        .where(subscriber_changes.c.subscriber_id == subscriber_id)
        .order_by(subscriber_changes.c.id)
    )
    return list(conn.execute(query))


def _columns() -> list[ColumnElement[Any]]:
    return [inbound.c[name] for name in Stored.__dataclass_fields__]
