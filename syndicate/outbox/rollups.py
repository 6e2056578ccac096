"""Settled deliveries counted by the hour: what the console's figures are read from, instead of the outbox.

Each tick (:class:`Rollup`) counts the deliveries that settled (sent, failed,
unknown, cancelled) since it last looked, by hour, channel, source and
state, and adds them to ``delivery_rollups``; where it stopped is kept in
``meta`` (``rollup_watermark``), read under a row lock so two nodes never
count the same stretch. It stops :data:`MARGIN` short of now: a delivery is
stamped with its node's clock before its transaction commits, and a stamp a
little in the past must not fall behind the watermark. What settled since
the watermark is counted live (:func:`hourly`, :func:`sent_by_edition`), from
the index on ``finished_at``: a few minutes of rows.

A delivery tried again after failing is counted twice, once per outcome:
the rollups count what happened each hour.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Connection

from syndicate.outbox import table
from syndicate.outbox.states import DeliveryState
from syndicate.roles import Role
from syndicate.store import meta
from syndicate.store.db import Database, dialect_insert
from syndicate.store.schema import delivery_rollups
from syndicate.store.schema import meta as meta_table

WATERMARK = "rollup_watermark"
MARGIN = timedelta(minutes=2)


def hour_of(conn: Connection, column: Any) -> ColumnElement[str]:
    """``column`` (a UTC time) as its hour, ``YYYY-MM-DD HH``, on either engine."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    return func.substr(column, 1, 13)


def day_of(conn: Connection, column: Any) -> ColumnElement[str]:
    """``column`` (a UTC time) as its day, ``YYYY-MM-DD``, on either engine."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)


def watermark(conn: Connection) -> datetime | None:
    """Up to when the settled deliveries are in the rollups."""
    found = meta.get(conn, WATERMARK)
    return datetime.fromisoformat(found) if found else None


def roll_up(conn: Connection, now: datetime) -> int:
    """Add what settled since the watermark (up to :data:`MARGIN` before now); return how many deliveries."""
    meta.put_new(conn, WATERMARK, "")  # a row to lock, from the first roll-up on
    locked = select(meta_table.c.value).where(meta_table.c.key == WATERMARK).with_for_update()
    conn.execute(locked)  # the row lock that keeps two nodes from counting the same stretch
    since, until = watermark(conn), now - MARGIN
    if since is not None and since >= until:
        return 0
    rows = _counted(conn, since, until)
    for row in rows:
        query = dialect_insert(conn, delivery_rollups).values(**row)
        conn.execute(query.on_conflict_do_update(
            index_elements=["hour", "channel", "source_kind", "source_id", "state"],
            set_={"count": delivery_rollups.c.count + query.excluded.count},
        ))  # fmt: skip
    meta.put(conn, WATERMARK, until.isoformat())
    return sum(row["count"] for row in rows)


def _counted(conn: Connection, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    return table.settled_counts(conn, hour_of, since, until)


def hourly(conn: Connection, since: datetime) -> list[dict[str, Any]]:
    """Settled deliveries per hour since ``since`` by channel and state (the rollups, and live past them)."""
    first = since.strftime("%Y-%m-%d %H")
    totals: dict[tuple[str, str, str], int] = defaultdict(int)
    query = (
        select(delivery_rollups.c.hour, delivery_rollups.c.channel, delivery_rollups.c.state,
               func.sum(delivery_rollups.c.count))
        .where(delivery_rollups.c.hour >= first)
        .group_by(delivery_rollups.c.hour, delivery_rollups.c.channel, delivery_rollups.c.state)
    )  # fmt: skip
    for hour, channel, state, count in conn.execute(query):
        totals[(hour, channel, state)] += int(count)
    for row in _counted(conn, watermark(conn), None):
        if row["hour"] >= first:
            totals[(row["hour"], row["channel"], row["state"])] += int(row["count"])
    return [{"hour": h, "channel": c, "state": s, "count": n} for (h, c, s), n in sorted(totals.items())]


def by_edition(conn: Connection, editions: Collection[int]) -> dict[int, dict[str, int]]:
    """Each edition's settled mail deliveries by state (the rollups, and live past them)."""
    found: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if not editions:
        return found
    query = (
        select(delivery_rollups.c.source_id, delivery_rollups.c.state, func.sum(delivery_rollups.c.count))
        .where(delivery_rollups.c.source_kind == "edition", delivery_rollups.c.source_id.in_(sorted(editions)),
               delivery_rollups.c.channel == "email")
        .group_by(delivery_rollups.c.source_id, delivery_rollups.c.state)
    )  # fmt: skip
    for edition, state, count in conn.execute(query):
        found[int(edition)][str(state)] += int(count)
    for row in _counted(conn, watermark(conn), None):
        if row["source_kind"] == "edition" and row["channel"] == "email" and row["source_id"] in editions:
            found[int(row["source_id"])][str(row["state"])] += int(row["count"])
    return found


def newest_editions(conn: Connection, newest: int) -> list[int]:
    """The newest editions with mail deliveries that settled, newest first."""
    query = (
        select(delivery_rollups.c.source_id)
        .where(delivery_rollups.c.source_kind == "edition", delivery_rollups.c.channel == "email")
        .group_by(delivery_rollups.c.source_id)
        .order_by(delivery_rollups.c.source_id.desc())
        .limit(newest)
    )
    found = {int(i) for i in conn.execute(query).scalars()}
    found.update(int(r["source_id"]) for r in _counted(conn, watermark(conn), None)
                 if r["source_kind"] == "edition" and r["channel"] == "email")  # fmt: skip
    return sorted(found, reverse=True)[:newest]


def edition_reports(conn: Connection, newest: int = 5) -> list[dict[str, Any]]:
    """The newest mailed editions: subject, messages sent, bounces, complaints and their rate, unsubscribes."""
    ids = newest_editions(conn, newest)
    return table.edition_reports(conn, ids, sent_by_edition(conn, ids))


def sent_by_edition(conn: Connection, editions: Collection[int]) -> dict[int, int]:
    """Each edition's mail deliveries sent."""
    return {e: states.get(DeliveryState.SENT.value, 0) for e, states in by_edition(conn, editions).items()}


REMOVE_BATCH = 5000


@dataclass
class Rollup:
    """The tick's stage: count what settled since the last tick into the rollups, then remove what is old.

    A delivery is removed only once it is in the rollups (it settled before the
    watermark) and ``keep_days`` have passed; a batch of :data:`REMOVE_BATCH` per
    transaction, at most ``remove_per_tick`` a tick, so a first run over a large
    outbox is spread over ticks instead of holding the database.
    """

    db: Database
    keep_days: int = 90
    remove_per_tick: int = 100_000
    name: str = "rollup"
    role: Role = Role.SCHEDULER

    def run(self, now: datetime, stop: Callable[[], bool]) -> dict[str, int]:
        with self.db.write() as conn:
            counted = roll_up(conn, now)
            mark = watermark(conn)
        removed = 0
        if mark is not None:
            before = min(mark, now - timedelta(days=self.keep_days))
            while removed < self.remove_per_tick and not stop():
                with self.db.write() as conn:
                    batch = table.remove_settled(conn, before, min(REMOVE_BATCH, self.remove_per_tick - removed))
                removed += batch
                if batch < REMOVE_BATCH:
                    break
        return {k: v for k, v in (("counted", counted), ("removed", removed)) if v}
