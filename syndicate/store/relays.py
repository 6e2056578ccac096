"""Mail relays in the database: how much of each one's daily quota is used, and how each node sees it.

A relay's quota is reserved before its messages leave (:func:`reserve`), in
the same transaction that reads what the last 24 hours used, under a lock on
that relay: two nodes never both take the last of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection

from syndicate.store.schema import relay_state, relay_usage

WINDOW = timedelta(hours=24)


def _hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def used(conn: Connection, relay: str, now: datetime) -> int:
    """Messages ``relay`` took in the 24 hours before ``now`` (by the hour: the oldest hour counts whole)."""
    since = _hour(now) - WINDOW + timedelta(hours=1)
    query = select(func.coalesce(func.sum(relay_usage.c.sent), 0)).where(
        relay_usage.c.relay == relay, relay_usage.c.hour >= since
    )
    return int(conn.execute(query).scalar_one())


def reserve(conn: Connection, relay: str, wanted: int, limit: int, now: datetime) -> int:
    """Take up to ``wanted`` of ``relay``'s quota of ``limit`` a day for this hour; return how many were taken."""
    if conn.dialect.name == "postgresql":  # one reserver at a time per relay; SQLite's write lock already is one
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:relay))"), {"relay": f"relay:{relay}"})
    granted = max(0, min(wanted, limit - used(conn, relay, now)))
    if granted:
        _add(conn, relay, granted, now)
    return granted


def give_back(conn: Connection, relay: str, count: int, now: datetime) -> None:
    """Return ``count`` reserved messages that never left (this hour's count; never below zero)."""
    hour = _hour(now)
    larger = func.max if conn.dialect.name == "sqlite" else func.greatest  # SQLite's max() of two is greatest()
    which = and_(relay_usage.c.relay == relay, relay_usage.c.hour == hour)
    conn.execute(update(relay_usage).where(which).values(sent=larger(relay_usage.c.sent - count, 0)))


def _add(conn: Connection, relay: str, n: int, now: datetime) -> None:
    hour = _hour(now)
    changed = conn.execute(
        update(relay_usage)
        .where(relay_usage.c.relay == relay, relay_usage.c.hour == hour)
        .values(sent=relay_usage.c.sent + n)
    ).rowcount
    if not changed:
        conn.execute(insert(relay_usage).values(relay=relay, hour=hour, sent=n))
    conn.execute(delete(relay_usage).where(relay_usage.c.relay == relay, relay_usage.c.hour < hour - 2 * WINDOW))


def report(conn: Connection, node: str, states: Mapping[str, Mapping[str, Any]], now: datetime) -> None:
    """Record how ``node`` sees each relay now: {name: {state, detail, until, rate}}."""
    for name, state in states.items():
        values = {
            "state": state["state"],
            "detail": state.get("detail", ""),
            "until": state.get("until"),
            "rate": float(state.get("rate", 0.0)),
            "updated_at": now,
        }
        which = and_(relay_state.c.relay == name, relay_state.c.node == node)
        if not conn.execute(update(relay_state).where(which).values(**values)).rowcount:
            conn.execute(insert(relay_state).values(relay=name, node=node, **values))


def overview(conn: Connection, limits: Mapping[str, int], now: datetime, fresh: timedelta) -> list[dict[str, Any]]:
    """Each configured relay: the latest state any node reported within ``fresh``, its rate, and its quota left."""
    rows = conn.execute(
        select(relay_state).where(relay_state.c.updated_at >= now - fresh).order_by(relay_state.c.updated_at)
    ).all()
    latest = {row.relay: row for row in rows}  # the newest report wins
    rates: dict[str, float] = {}
    for seen in rows:
        rates[seen.relay] = rates.get(seen.relay, 0.0) + seen.rate  # every node's share of the traffic
    out = []
    for name, limit in limits.items():
        row: Any = latest.get(name)
        taken = used(conn, name, now)
        out.append(
            {
                "name": name,
                "state": row.state if row is not None else "idle",
                "detail": row.detail if row is not None else "",
                "until": row.until.isoformat() if row is not None and row.until else None,
                "rate": round(rates.get(name, 0.0), 1),
                "sent_24h": taken,
                "daily_limit": limit,
                "quota_left": max(0, limit - taken) if limit else None,
            }
        )
    return out
