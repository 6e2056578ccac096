"""What the dashboard and the API show, each read from indexed or rolled-up data, never a count of the outbox.

Every function takes a read connection and returns plain JSON values (the
API returns them as they are; the console draws them). The deliveries are
counted from the hourly rollups (:mod:`syndicate.outbox.rollups`); what is
still owed, from the claim index (channel, state); subscribers per day, from
the indexes on their dates; reports per edition from the inbound table.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection

from syndicate.app import App
from syndicate.model import State
from syndicate.outbox import COMPLAINT_LINE, Channel, rollups
from syndicate.outbox import table as outbox_table
from syndicate.status import partner_rows, relay_rows
from syndicate.store import feeds, meta, nodes
from syndicate.store import subscribers as subscriber_store
from syndicate.store.schema import statements, subscriber_changes, subscribers
from syndicate.subscribers import Status

MAX_DAYS = 366
MAX_HOURS = 24 * 31
SCHEDULED_SHOWN = 20


def overview(app: App, conn: Connection) -> dict[str, Any]:
    """Statements by state with the embargoes to come, the last tick, what is owed, the last send's rate."""
    now = app.clock()
    by_state = {state.value: 0 for state in State}
    for state, count in conn.execute(select(statements.c.state, func.count()).group_by(statements.c.state)):
        by_state[str(state)] = int(count)
    query = (
        select(statements.c.id, statements.c.title, statements.c.lang, statements.c.published)
        .where(statements.c.state == State.SCHEDULED)
        .order_by(statements.c.published, statements.c.id)
        .limit(SCHEDULED_SHOWN)
    )
    scheduled = [
        {"id": r.id, "title": r.title, "lang": r.lang, "at": r.published.isoformat(),
         "seconds_left": max(0, int((r.published - now).total_seconds()))}
        for r in conn.execute(query)
    ]  # fmt: skip
    owed = outbox_table.owed_by_channel(conn)
    waiting = outbox_table.to_decide(conn)
    last = meta.get(conn, "last_tick")
    return {
        "now": now.isoformat(),
        "statements": by_state,
        "scheduled": scheduled,
        "last_tick": {k: last.get(k) for k in ("at", "seconds", "problems", "failed")}
        | {"problem_list": last.get("problem_list", [])}
        if last
        else None,
        "last_check": meta.get(conn, meta.LAST_CHECK),
        "last_send": meta.get(conn, "last_send"),
        "owed": owed,
        "decisions": waiting,  # failed and unknown deliveries, by channel: the operator's to settle
        "pings_pending": feeds.pending_pings(conn),
    }


def recent_statements(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The newest statements, published or not (the console's choice of one to preview or test)."""
    query = (
        select(statements.c.id, statements.c.title, statements.c.lang, statements.c.state, statements.c.published)
        .order_by(statements.c.published.desc(), statements.c.id)
        .limit(limit)
    )
    return [{"id": r.id, "title": r.title, "lang": r.lang, "state": str(r.state), "published": r.published.isoformat()}
            for r in conn.execute(query)]  # fmt: skip


def subscribers_daily(conn: Connection, now: datetime, days: int = 30) -> list[dict[str, Any]]:
    """For each of the last ``days`` days (UTC): new, confirmed, unsubscribed, bounced and complained subscribers."""
    days = max(1, min(days, MAX_DAYS))
    first = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    names = [(first + timedelta(days=n)).strftime("%Y-%m-%d") for n in range(days)]
    found: dict[str, dict[str, int]] = {d: dict.fromkeys(("new", "confirmed", "unsubscribed", "bounced", "complained"), 0)
                                        for d in names}  # fmt: skip
    for key, column in (("new", subscribers.c.created_at), ("confirmed", subscribers.c.confirmed_at),
                        ("unsubscribed", subscribers.c.unsubscribed_at)):  # fmt: skip
        day = rollups.day_of(conn, column).label("day")
        query = select(day, func.count()).where(column >= _since(conn, first)).group_by(day)
        for name, count in conn.execute(query):
            if name in found:
                found[name][key] = int(count)
    day = rollups.day_of(conn, subscriber_changes.c.at).label("day")
    changes = (
        select(day, subscriber_changes.c.status, func.count(func.distinct(subscriber_changes.c.subscriber_id)))
        .where(subscriber_changes.c.at >= _since(conn, first),
               subscriber_changes.c.status.in_([Status.BOUNCED.value, Status.COMPLAINED.value]))
        .group_by(day, subscriber_changes.c.status)
    )  # fmt: skip
    for name, status, count in conn.execute(changes):
        if name in found:
            found[name][str(status)] = int(count)
    return [{"day": d, **found[d]} for d in names]


def _since(conn: Connection, moment: datetime) -> Any:
    """A lower bound the planner can see: on PostgreSQL written into the statement (a bound parameter's
    value is hidden from it there, and a range of unknown size over a date's index is planned as a scan)."""
    return bindparam(
        "since", moment, type_=subscribers.c.created_at.type, literal_execute=conn.dialect.name == "postgresql"
    )


def deliveries_hourly(conn: Connection, now: datetime, hours: int = 48) -> list[dict[str, Any]]:
    """For each of the last ``hours`` hours (UTC): settled deliveries by channel and state."""
    hours = max(1, min(hours, MAX_HOURS))
    first = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    names = [(first + timedelta(hours=n)).strftime("%Y-%m-%d %H") for n in range(hours)]
    table: dict[str, dict[str, int]] = {name: {} for name in names}
    for row in rollups.hourly(conn, first):
        if row["hour"] in table:
            key = f"{row['channel']}:{row['state']}"
            table[row["hour"]][key] = table[row["hour"]].get(key, 0) + row["count"]
    return [{"hour": name, "counts": table[name]} for name in names]


def editions(conn: Connection, newest: int = 10) -> dict[str, Any]:
    """The newest mailed editions: sent, bounces, complaints and their rate against the line, unsubscribes."""
    return {"complaint_line": COMPLAINT_LINE, "editions": rollups.edition_reports(conn, newest)}


def partners(app: App, conn: Connection) -> list[dict[str, Any]]:
    """Each partner: last success, backlog, disabled."""
    return partner_rows(conn, app.config)


def machinery(app: App, conn: Connection) -> dict[str, Any]:
    """The nodes (their heartbeats) and the mail relays."""
    heard_within = timedelta(seconds=3 * app.config.heartbeat_seconds)
    live = nodes.live(conn, app.clock(), heard_within, outbox_table.held_by_node(conn))
    return {"nodes": live, "relays": relay_rows(conn, app)}


def deliveries_to_decide(conn: Connection, state: str, channel: str | None, limit: int = 100) -> list[dict[str, Any]]:
    """Failed or unknown deliveries (``state``), newest first: what an operator is shown before deciding."""
    rows = outbox_table.listing(conn, state, channel or None, limit)
    ids = [int(r["target"]) for r in rows if r["channel"] == Channel.EMAIL.value and str(r["target"]).isdigit()]
    people = subscriber_store.by_ids(conn, ids)
    for row in rows:  # a mail delivery names its subscriber by id: the operator wants the address
        found = (
            people.get(int(row["target"]))
            if row["channel"] == Channel.EMAIL.value and str(row["target"]).isdigit()
            else None
        )
        row["address"] = found.email if found else None
    return rows


CHANNELS = tuple(c.value for c in Channel)
