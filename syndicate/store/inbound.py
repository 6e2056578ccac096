"""Reports that came back, stored raw first and classified after; and why subscribers' standing changed.

A report is stored (and committed) before anything is made of it, keyed by a
digest of its bytes, so the same report delivered twice, or read again from
a mailbox after a crash, is one row and is acted on once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from syndicate.store.db import dialect_insert
from syndicate.store.schema import inbound, inbound_raw, subscriber_changes

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
        "envelope_to": ", ".join(envelope_to),
    }  # fmt: skip
    query = dialect_insert(conn, inbound).values(**values).on_conflict_do_nothing().returning(inbound.c.id)
    added = conn.execute(query).scalar()  # None: the same report was stored before
    if added is None:
        return int(conn.execute(select(inbound.c.id).where(inbound.c.digest == key)).scalar_one()), False
    conn.execute(insert(inbound_raw).values(id=added, raw=raw))
    return int(added), True


def get(conn: Connection, report_id: int) -> Stored | None:
    """One report."""
    query = _with_raw(select(*_columns())).where(inbound.c.id == report_id)
    row = conn.execute(query).first()
    return Stored.from_row(row) if row is not None else None


def unprocessed(conn: Connection, limit: int) -> list[int]:
    """Ids of reports stored and not yet processed, oldest first."""
    query = select(inbound.c.id).where(inbound.c.processed_at.is_(None)).order_by(inbound.c.id).limit(limit)
    return [int(i) for i in conn.execute(query).scalars()]


def listing(conn: Connection, kind: str | None = None, limit: int = 50) -> list[Stored]:
    """The newest reports (of ``kind``; "new": not processed yet)."""
    query = _with_raw(select(*_columns())).order_by(inbound.c.id.desc()).limit(limit)
    if kind == "new":
        query = query.where(inbound.c.processed_at.is_(None))
    elif kind:
        query = query.where(inbound.c.kind == kind)
    return [Stored.from_row(row) for row in conn.execute(query)]


class Waiting(NamedTuple):
    """What processing a report reads of it."""

    id: int
    source: str
    envelope_from: str
    envelope_to: str
    raw: bytes
    processed_at: datetime | None
    action: str | None


def take(conn: Connection, ids: Sequence[int] | None = None, limit: int = 200) -> list[Waiting]:
    """Reports locked for processing until the transaction ends: those named, or the oldest not processed yet
    (skipping, on PostgreSQL, those another node is processing)."""
    columns = (inbound_raw.c.raw if name == "raw" else inbound.c[name] for name in Waiting._fields)
    query = _with_raw(select(*columns)).order_by(inbound.c.id)
    if ids is not None:
        query = query.where(inbound.c.id.in_(list(ids))).with_for_update(of=inbound)
    else:
        query = query.where(inbound.c.processed_at.is_(None)).limit(limit)
        query = query.with_for_update(of=inbound, skip_locked=True)
    return [Waiting(*row) for row in conn.execute(query)]


RECORDED = ("kind", "delivery_id", "subscriber_id", "address", "status", "detail", "action", "processed_at")


def record_many(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """What each report was found to be, and what it did (rows: ``id`` and the :data:`RECORDED` fields)."""
    if not rows:
        return
    query = update(inbound).where(inbound.c.id == bindparam("b_id"))
    query = query.values(**{name: bindparam(f"b_{name}") for name in RECORDED})
    conn.execute(query, [{f"b_{name}": row[name] for name in ("id", *RECORDED)} for row in rows])


def counts(conn: Connection) -> dict[str, int]:
    """Reports by kind ("new": not processed yet)."""
    query = select(func.coalesce(inbound.c.kind, "new"), func.count()).group_by(inbound.c.kind)
    return {str(kind): int(n) for kind, n in conn.execute(query)}


def bounce_history(conn: Connection, subscriber_ids: Sequence[int]) -> dict[int, list[tuple[int, str, datetime]]]:
    """Every processed bounce of these subscribers: (delivery, kind, when it came), by subscriber."""
    found: dict[int, list[tuple[int, str, datetime]]] = {}
    if not subscriber_ids:
        return found
    query = select(inbound.c.subscriber_id, inbound.c.delivery_id, inbound.c.kind, inbound.c.received_at).where(
        inbound.c.subscriber_id.in_(list(subscriber_ids)),
        inbound.c.kind.in_(BOUNCE_KINDS),
        inbound.c.delivery_id.is_not(None),
        inbound.c.processed_at.is_not(None),
    )
    for subscriber_id, delivery_id, kind, received_at in conn.execute(query):
        found.setdefault(int(subscriber_id), []).append((int(delivery_id), str(kind), received_at))
    return found


def change_many(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Keep why subscribers' standing changed (rows: subscriber_id, status, cause, report_id, delivery_id, at).

    ``report_id`` is the report that caused it (none for a change made on a web page); ``delivery_id``
    the mail it followed, which names the edition it is counted for.
    """
    if rows:
        conn.execute(insert(subscriber_changes), list(rows))


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
    return [inbound_raw.c.raw if name == "raw" else inbound.c[name] for name in Stored.__dataclass_fields__]


def _with_raw(query: Select[Any]) -> Select[Any]:
    return query.select_from(inbound.join(inbound_raw, inbound_raw.c.id == inbound.c.id))
