"""The ``deliveries`` table, and every statement that reads or writes it (no other module does).

Planning adds rows (unique on source, channel and target: planning twice plans
nothing new); cancelling closes pending ones; the lease statements claim, hand
off, close, extend, give back and reap; the reports count what is owed, how
long it waited and how long sending took. The state machine that uses them is
:class:`syndicate.outbox.Outbox`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, bindparam, case, func, literal, or_, select, update
from sqlalchemy.engine import Connection, Dialect, Row
from sqlalchemy.sql import Select

from syndicate.outbox.states import FINAL, MAYBE_RECEIVED, Channel, DeliveryState, SourceKind
from syndicate.store import subscribers as subscriber_store
from syndicate.store.db import dialect_insert
from syndicate.store.schema import deliveries, editions, inbound, subscriber_changes
from syndicate.subscribers import Status

OWED = (DeliveryState.PENDING, DeliveryState.IN_FLIGHT)

# -- planning and cancelling --


def plan_many(
    conn: Connection, channel: Channel, kind: SourceKind, source_id: int, targets: Select[Any], now: datetime
) -> int:
    """A pending delivery of the source to every target ``targets`` selects (one text column); how many are new."""
    stamp = literal(now, deliveries.c.due_at.type)
    chosen = targets.add_columns(
        literal(channel.value), literal(kind.value), literal(source_id),
        literal(DeliveryState.PENDING.value), literal(0), stamp, stamp,
    )  # fmt: skip
    columns = ["target", "channel", "source_kind", "source_id", "state", "attempts", "due_at", "created_at"]
    query = dialect_insert(conn, deliveries).from_select(columns, chosen).on_conflict_do_nothing()
    # Without preserve_rowcount, psycopg reports -1 for an INSERT that returns no rows.
    return int(conn.execute(query, execution_options={"preserve_rowcount": True}).rowcount)


def plan_one(conn: Connection, channel: Channel, kind: SourceKind, source_id: int, target: str, now: datetime) -> bool:
    """A pending delivery of the source to ``target``; False if it was planned already."""
    values = {
        "channel": channel.value,
        "source_kind": kind.value,
        "source_id": source_id,
        "target": target,
        "state": DeliveryState.PENDING.value,
        "attempts": 0,
        "due_at": now,
        "created_at": now,
    }
    query = dialect_insert(conn, deliveries).values(**values).on_conflict_do_nothing().returning(deliveries.c.id)
    # RETURNING, not rowcount: PostgreSQL reports -1 rows for a single-row insert that returns its key.
    return conn.execute(query).scalar() is not None


def cancel(conn: Connection, ids: Iterable[int], now: datetime, reason: str) -> int:
    """Cancel these deliveries if they are still pending."""
    wanted = list(ids)
    return sum(_cancel(conn, deliveries.c.id.in_(chunk), now, reason) for chunk in _chunks(wanted))


def cancel_sources(conn: Connection, kind: SourceKind, source_ids: Select[Any], now: datetime, reason: str) -> int:
    """Cancel the pending deliveries of the sources ``source_ids`` selects (a statement's editions, say)."""
    of_sources = and_(deliveries.c.source_kind == kind, deliveries.c.source_id.in_(source_ids.scalar_subquery()))
    return _cancel(conn, of_sources, now, reason)


def cancel_target(conn: Connection, channel: Channel, target: str, now: datetime, reason: str) -> int:
    """Cancel what is still owed to one target (a subscriber who was removed)."""
    return _cancel(conn, and_(deliveries.c.channel == channel, deliveries.c.target == target), now, reason)


def _cancel(conn: Connection, which: Any, now: datetime, reason: str) -> int:
    query = (
        update(deliveries)
        .where(which, deliveries.c.state == DeliveryState.PENDING)
        .values(state=DeliveryState.CANCELLED, finished_at=now, last_error=reason)
    )
    return int(conn.execute(query).rowcount)


def make_due(conn: Connection, channel: Channel, target: str, now: datetime) -> int:
    """Make every pending delivery to ``target`` due now (a partner enabled again)."""
    query = (
        update(deliveries)
        .where(
            deliveries.c.channel == channel, deliveries.c.target == target, deliveries.c.state == DeliveryState.PENDING
        )
        .values(due_at=now)
    )
    return int(conn.execute(query).rowcount)


def settled_counts(
    conn: Connection,
    hour_of: Callable[[Connection, Any], ColumnElement[str]],
    since: datetime | None,
    until: datetime | None,
) -> list[dict[str, Any]]:
    """Deliveries that settled in [since, until), counted by the hour ``hour_of`` makes of finished_at, channel,
    source and state: what the rollups add up (on the index on finished_at)."""
    columns = (deliveries.c.channel, deliveries.c.source_kind, deliveries.c.source_id, deliveries.c.state)
    rows = select(deliveries.c.finished_at, *columns).where(
        deliveries.c.finished_at.is_not(None), deliveries.c.state.in_(sorted(s.value for s in FINAL))
    )
    if since is not None:
        rows = rows.where(deliveries.c.finished_at >= since)
    if until is not None:
        rows = rows.where(deliveries.c.finished_at < until)
    else:  # the live tail, minutes of rows: walked in the index's order, which no planner takes for a scan
        rows = rows.order_by(deliveries.c.finished_at).limit(TAIL_LIMIT)
    settled = rows.subquery()
    label = hour_of(conn, settled.c.finished_at).label("hour")
    kept = (settled.c.channel, settled.c.source_kind, settled.c.source_id, settled.c.state)
    query = select(label, *kept, func.count().label("count")).group_by(label, *kept)
    return [dict(row._mapping) for row in conn.execute(query)]


TAIL_LIMIT = 1_000_000  # settled past the watermark that the live figures count (the rollup runs each tick)


def remove_settled(conn: Connection, before: datetime, limit: int) -> int:
    """Remove up to ``limit`` sent or cancelled deliveries that settled before ``before`` (the caller has them in
    the rollups); those a report or a subscriber's change names are kept, so what is counted from them stays."""
    named = select(inbound.c.delivery_id).where(inbound.c.delivery_id.is_not(None))
    followed = select(subscriber_changes.c.delivery_id).where(subscriber_changes.c.delivery_id.is_not(None))
    old = (
        select(deliveries.c.id)
        .where(
            deliveries.c.finished_at < before,
            deliveries.c.state.in_([DeliveryState.SENT.value, DeliveryState.CANCELLED.value]),
            deliveries.c.id.not_in(named),
            deliveries.c.id.not_in(followed),
        )
        .order_by(deliveries.c.finished_at)
        .limit(limit)
    )
    ids = [int(i) for i in conn.execute(old).scalars()]
    if ids:
        conn.execute(deliveries.delete().where(deliveries.c.id.in_(ids)))
    return len(ids)


def owed_by_channel(conn: Connection) -> dict[str, int]:
    """Deliveries pending or in flight, by channel (on the claim index)."""
    query = select(deliveries.c.channel, func.count()).where(_on_channels(), deliveries.c.state.in_(OWED))
    return {str(c): int(n) for c, n in conn.execute(query.group_by(deliveries.c.channel))}


def to_decide(conn: Connection) -> dict[str, int]:
    """Failed and unknown deliveries (the operator's to settle), as ``channel:state`` counts."""
    query = select(deliveries.c.channel, deliveries.c.state, func.count()).where(
        _on_channels(), deliveries.c.state.in_([DeliveryState.FAILED.value, DeliveryState.UNKNOWN.value])
    )
    return {f"{c}:{s}": int(n) for c, s, n in conn.execute(query.group_by(deliveries.c.channel, deliveries.c.state))}


def count_in(conn: Connection, state: DeliveryState, channel: Channel | str | None = None) -> int:
    """How many deliveries are in ``state`` (on ``channel``), counted on the claim index."""
    query = select(func.count()).where(_on_channels(channel), deliveries.c.state == state)
    return int(conn.execute(query).scalar_one())


def requeue(conn: Connection, state: DeliveryState, now: datetime, channel: Channel | str | None = None) -> int:
    """Put every delivery in ``state`` back to pending, due now (an operator's decision)."""
    query = update(deliveries).where(deliveries.c.state == state)
    if channel:
        query = query.where(deliveries.c.channel == channel)
    values = {"state": DeliveryState.PENDING, "due_at": now, "finished_at": None, "handoff_at": None, "attempts": 0}
    return int(conn.execute(query.values(**values)).rowcount)


# -- what became of a source's deliveries --


@dataclass
class Reach:
    """What the deliveries to one target have come to so far."""

    maybe_received: bool = False
    pending: list[int] = field(default_factory=list)


def reach(conn: Connection, channel: Channel, kind: SourceKind, source_ids: Select[Any]) -> dict[str, Reach]:
    """For each target, whether any delivery of these sources may have reached it, and which are still pending.

    A pending delivery that was tried before may have arrived too: a reply that
    timed out says nothing about the request.
    """
    query = (
        select(deliveries.c.id, deliveries.c.target, deliveries.c.state, deliveries.c.attempts)
        .where(_of(channel, kind), deliveries.c.source_id.in_(source_ids.scalar_subquery()))
        .order_by(deliveries.c.id)
    )
    found: dict[str, Reach] = {}
    for row in conn.execute(query):
        target = found.setdefault(row.target, Reach())
        target.maybe_received |= row.state in MAYBE_RECEIVED or row.attempts > 0
        if row.state == DeliveryState.PENDING:
            target.pending.append(row.id)
    return found


def sent_since(conn: Connection, channel: Channel, kind: SourceKind, target: str, since: datetime) -> list[int]:
    """The sources delivered to ``target`` at or after ``since``."""
    query = select(deliveries.c.source_id).where(
        _of(channel, kind),
        deliveries.c.target == target,
        deliveries.c.state == DeliveryState.SENT,
        deliveries.c.finished_at >= since,
    )
    return sorted(set(conn.scalars(query)))


# -- reports --


def counts(conn: Connection) -> dict[str, dict[str, int]]:
    """Deliveries by channel and state (every state listed)."""
    found: dict[str, dict[str, int]] = defaultdict(dict)
    query = select(deliveries.c.channel, deliveries.c.state, func.count()).group_by(
        deliveries.c.channel, deliveries.c.state
    )
    for channel, state, count in conn.execute(query):
        found[channel][state] = count
    return {channel: {s.value: found[channel].get(s.value, 0) for s in DeliveryState} for channel in sorted(found)}


def backlog(conn: Connection, now: datetime) -> dict[str, int]:
    """Deliveries due now and not yet done, by channel."""
    query = (
        select(deliveries.c.channel, func.count())
        .where(deliveries.c.state.in_(OWED), deliveries.c.due_at <= now)
        .group_by(deliveries.c.channel)
    )
    return {channel: count for channel, count in conn.execute(query)}


def backlog_by_target(conn: Connection, channel: Channel) -> dict[str, int]:
    """Deliveries not yet done (pending or in flight, due or not), by target."""
    query = (
        select(deliveries.c.target, func.count())
        .where(deliveries.c.channel == channel, deliveries.c.state.in_(OWED))
        .group_by(deliveries.c.target)
    )
    return {target: count for target, count in conn.execute(query)}


def oldest_due(conn: Connection, now: datetime) -> datetime | None:
    """When the delivery that has waited longest became due (None: nothing is waiting)."""
    query = select(func.min(deliveries.c.due_at)).where(
        deliveries.c.state == DeliveryState.PENDING, deliveries.c.due_at <= now
    )
    found: datetime | None = conn.scalar(query)
    return found


def _on_channels(channel: Channel | str | None = None) -> ColumnElement[bool]:
    """The channel condition that lets a state condition ride the claim index (channel, state, due_at)."""
    return deliveries.c.channel.in_([channel] if channel else [c.value for c in Channel])


def held_by_node(conn: Connection) -> dict[str, int]:
    """How many deliveries each node holds in flight now."""
    query = (
        select(deliveries.c.leased_by, func.count())
        .where(_on_channels(), deliveries.c.state == DeliveryState.IN_FLIGHT)
        .group_by(deliveries.c.leased_by)
    )
    return {node: count for node, count in conn.execute(query) if node is not None}


@dataclass(frozen=True)
class Latency:
    """Seconds from planning to sending of one channel's sent deliveries: how many, their sum, and at most each bound."""

    channel: str
    count: int
    total: float
    within: tuple[int, ...]  # how many took at most each of the bounds asked for


def latency(conn: Connection, bounds: Sequence[float]) -> list[Latency]:
    """Send latency per channel, counted in SQL (one aggregate query, not one row per delivery)."""
    seconds = _seconds_between(conn.dialect.name, deliveries.c.created_at, deliveries.c.finished_at)
    columns = [deliveries.c.channel, func.count(), func.coalesce(func.sum(seconds), 0)]
    columns += [func.sum(case((seconds <= bound, 1), else_=0)) for bound in bounds]
    query = (
        select(*columns)
        .where(deliveries.c.state == DeliveryState.SENT, deliveries.c.finished_at.is_not(None))
        .group_by(deliveries.c.channel)
        .order_by(deliveries.c.channel)
    )
    return [
        Latency(channel, int(count), float(total), tuple(int(b or 0) for b in within))
        for channel, count, total, *within in conn.execute(query)
    ]


def _seconds_between(dialect: str, start: Any, end: Any) -> Any:
    """SQL for the seconds from ``start`` to ``end`` (SQLite keeps times as text, PostgreSQL as timestamps)."""
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


LISTED = ("id", "channel", "source_kind", "source_id", "target", "state", "attempts", "last_error")
LISTED_TIMES = ("due_at", "created_at", "handoff_at", "finished_at")


def listing(
    conn: Connection, state: str | None = None, channel: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Deliveries, newest first, as plain values for ``deliveries list``."""
    query = select(deliveries).order_by(deliveries.c.id.desc()).limit(limit)
    if state:
        query = query.where(_on_channels(channel), deliveries.c.state == state)
    elif channel:
        query = query.where(deliveries.c.channel == channel)
    return [_listed(row) for row in conn.execute(query)]


def _listed(row: Row[Any]) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in LISTED}
    for name in LISTED_TIMES:
        moment = getattr(row, name)
        values[name] = moment.isoformat() if moment else None
    return values


# -- leases: the statements behind claim, hand-off, finish, extend, abandon and reap --

CLAIMED = ("id", "source_kind", "source_id", "target", "attempts")


def claim_due(
    conn: Connection,
    channel: Channel,
    limit: int,
    now: datetime,
    lease: Mapping[str, Any],
    *,
    dated: bool,
    recipient: bool,
) -> list[Row[Any]]:
    """Take up to ``limit`` due deliveries of ``channel`` under ``lease`` (token, until, node).

    Each row has :data:`CLAIMED`, then ``created_at`` if ``dated``, then the
    subscriber's address and status if ``recipient`` (read in the same
    statement: no second look-up).
    """
    due = (
        select(deliveries.c.id)
        .where(deliveries.c.channel == channel, deliveries.c.state == DeliveryState.PENDING, deliveries.c.due_at <= now)
        .order_by(deliveries.c.due_at, deliveries.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    values = {
        "state": DeliveryState.IN_FLIGHT,
        "lease_token": lease["token"],
        "lease_until": lease["until"],
        "leased_by": lease["node"],
        "attempts": deliveries.c.attempts + 1,
        "handoff_at": None,
    }
    columns = [deliveries.c[name] for name in CLAIMED]
    columns += [deliveries.c.created_at] if dated else []
    columns += list(subscriber_store.recipient_columns(deliveries.c.target)) if recipient else []
    taken = update(deliveries).where(deliveries.c.id.in_(due.scalar_subquery())).values(**values)
    return list(conn.execute(taken.returning(*columns)).all())


def hand_off(conn: Connection, token: str, ids: list[int], now: datetime) -> set[int]:
    """Stamp the hand-off of these deliveries still held under ``token``; return their ids."""
    held: set[int] = set()
    for chunk in _chunks(ids):
        held.update(conn.scalars(_HANDOFF, {"ids": chunk, "token": token, "now": now}))
    return held


def settle_quickly(
    conn: Connection, sent: Mapping[str, list[int]], handing: Mapping[str, list[int]], now: datetime
) -> set[int]:
    """Close ``sent`` deliveries and hand off ``handing`` ones (both by lease token): the mail wire's every turn.

    The same two statements as :func:`close_sent` and :func:`hand_off`, written
    out for the driver so that a turn of a few letters costs no statement
    compilation (the wire commits hundreds of these a second).
    """
    return settle_on(conn.exec_driver_sql, conn.dialect, sent, handing, stamp(conn.dialect, now))


def settle_on(
    execute: Callable[[str, tuple[Any, ...]], Any],
    dialect: Dialect,
    sent: Mapping[str, list[int]],
    handing: Mapping[str, list[int]],
    at: Any,
) -> set[int]:
    """:func:`settle_quickly` through any ``execute`` of the driver's own (a raw connection's cursor too)."""
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    for token, ids in sent.items():
        for chunk in _chunks(ids):
            execute(
                f"UPDATE deliveries SET state = 'sent', finished_at = {mark}, last_error = NULL, lease_token = NULL,"
                f" lease_until = NULL WHERE lease_token = {mark} AND id IN ({', '.join([mark] * len(chunk))})",
                (at, token, *chunk),
            )
    held: set[int] = set()
    for token, ids in handing.items():
        for chunk in _chunks(ids):
            rows = execute(
                f"UPDATE deliveries SET handoff_at = {mark} WHERE lease_token = {mark} AND state = 'in_flight'"
                f" AND id IN ({', '.join([mark] * len(chunk))}) RETURNING id",
                (at, token, *chunk),
            )
            held.update(row[0] for row in rows.fetchall())
    return held


def stamp(dialect: Dialect, now: datetime) -> Any:
    """``now`` as the driver takes it for a UTCDateTime column (what :func:`settle_on` takes)."""
    process = deliveries.c.handoff_at.type.bind_processor(dialect)
    return process(now) if process is not None else now


def close_sent(conn: Connection, token: str, ids: list[int], now: datetime) -> None:
    """Close these deliveries held under ``token`` as sent (one statement per chunk: nearly all end so)."""
    for chunk in _chunks(ids):
        conn.execute(_SENT, {"ids": chunk, "token": token, "now": now})


@dataclass(frozen=True)
class Closing:
    """One delivery's end of attempt, other than sent: its new state, when it is due, what was said."""

    id: int
    token: str
    state: DeliveryState
    due_at: datetime
    finished_at: datetime | None
    error: str | None
    uncount: int  # 1 when the attempt did not happen after all


def close_each(conn: Connection, closings: Sequence[Closing]) -> None:
    """Record each closing, fenced on its lease token (a node that lost the lease changes nothing)."""
    if closings:
        conn.execute(_CLOSE, [_closing_params(c) for c in closings])


def _closing_params(closing: Closing) -> dict[str, Any]:
    return {
        "b_id": closing.id,
        "b_token": closing.token,
        "b_state": closing.state.value,
        "b_due": closing.due_at,
        "b_finished": closing.finished_at,
        "b_error": closing.error,
        "b_uncount": closing.uncount,
        # A delivery going back to pending starts its next attempt with no hand-off.
        "b_keep_handoff": closing.state != DeliveryState.PENDING,
    }


def planned_at(conn: Connection, ids: list[int]) -> dict[int, datetime]:
    """When each of these deliveries was planned."""
    query = select(deliveries.c.id, deliveries.c.created_at).where(deliveries.c.id.in_(ids))
    return {row.id: row.created_at for row in conn.execute(query)}


def extend(conn: Connection, channels: Iterable[Channel], tokens: list[str], until: datetime) -> int:
    """Push back to ``until`` the end of the leases ``tokens`` still hold.

    On PostgreSQL rows another transaction is writing just now (the sending process
    recording or handing them off) are skipped rather than waited for: waiting on
    each other's rows in different orders is a deadlock, and the next extension,
    a quarter of a lease later, takes them.
    """
    which = _in_flight(channels, tokens)
    if conn.dialect.name == "postgresql":
        free = select(deliveries.c.id).where(which).with_for_update(skip_locked=True)
        which = deliveries.c.id.in_(free.scalar_subquery())
    query = update(deliveries).where(which).values(lease_until=until)
    return int(conn.execute(query).rowcount)


def give_back(conn: Connection, channels: Iterable[Channel], tokens: list[str], now: datetime) -> int:
    """Put back to pending, due now and uncounted, what ``tokens`` hold and had not handed off."""
    query = (
        update(deliveries)
        .where(_in_flight(channels, tokens), deliveries.c.handoff_at.is_(None))
        .values(_back_to_pending(now))
    )
    return int(conn.execute(query).rowcount)


def reap(
    conn: Connection, policies: Mapping[Channel, bool], now: datetime, dead_nodes: Sequence[str] = ()
) -> dict[str, int]:
    """Deal with leases that ran out before ``now``, or are held by ``dead_nodes``: claim again, or unknown.

    ``policies`` says for each channel whether a delivery handed off before its
    lease ran out is ``unknown`` (True) or tried again (False).
    """
    dead = deliveries.c.lease_until < now
    if dead_nodes:
        dead = or_(dead, deliveries.c.leased_by.in_(list(dead_nodes)))
    expired = and_(_in_flight(policies), dead)
    counts = {"reclaimable": _rows(conn, expired & deliveries.c.handoff_at.is_(None), _back_to_pending(now))}
    for channel, unknown in policies.items():
        after = and_(expired, deliveries.c.channel == channel, deliveries.c.handoff_at.is_not(None))
        counts[f"{channel}_after_handoff"] = _rows(conn, after, _after_handoff(unknown, now))
    return counts


def orphan(conn: Connection, token: str, ids: list[int], now: datetime) -> set[int]:
    """The sender of these deliveries died: handed off ones become unknown (their ids returned), the rest pending."""
    unknown: set[int] = set()
    for chunk in _chunks(ids):
        held = and_(_in_flight([Channel.EMAIL], [token]), deliveries.c.id.in_(chunk))
        gone = update(deliveries).where(held, deliveries.c.handoff_at.is_not(None)).values(_after_handoff(True, now))
        unknown.update(conn.scalars(gone.returning(deliveries.c.id)))
        _rows(conn, and_(held, deliveries.c.handoff_at.is_(None)), _back_to_pending(now))
    return unknown


def _back_to_pending(now: datetime) -> dict[str, Any]:
    return {
        "state": DeliveryState.PENDING,
        "due_at": now,
        "attempts": deliveries.c.attempts - 1,
        "lease_token": None,
        "lease_until": None,
    }


def _after_handoff(unknown: bool, now: datetime) -> dict[str, Any]:
    cleared = {"lease_token": None, "lease_until": None}
    if unknown:
        error = "the process sending it stopped after hand-off; it may or may not have arrived"
        return {"state": DeliveryState.UNKNOWN, "finished_at": now, "last_error": error, **cleared}
    return {"state": DeliveryState.PENDING, "due_at": now, "handoff_at": None, **cleared}


def _rows(conn: Connection, which: Any, values: Mapping[str, Any]) -> int:
    return int(conn.execute(update(deliveries).where(which).values(**values)).rowcount)


def _in_flight(channels: Iterable[Channel], tokens: list[str] | None = None) -> Any:
    """Deliveries in flight (under ``tokens``, if given); the channel is named so the claim index is used."""
    condition = and_(deliveries.c.channel.in_(list(channels)), deliveries.c.state == DeliveryState.IN_FLIGHT)
    return condition if tokens is None else and_(condition, deliveries.c.lease_token.in_(tokens))


def _of(channel: Channel, kind: SourceKind) -> Any:
    return (deliveries.c.channel == channel) & (deliveries.c.source_kind == kind)


def _chunks(ids: list[int], size: int = 900) -> Iterable[list[int]]:
    """``ids`` in pieces small enough for one statement's parameters (SQLite allows 999)."""
    return (ids[start : start + size] for start in range(0, len(ids), size))


# The statements run for nearly every delivery, compiled once: the ids are one expanding parameter.
_HANDOFF = (
    update(deliveries)
    .where(
        deliveries.c.id.in_(bindparam("ids", expanding=True)),
        deliveries.c.lease_token == bindparam("token"),
        deliveries.c.state == DeliveryState.IN_FLIGHT,
    )
    .values(handoff_at=bindparam("now"))
    .returning(deliveries.c.id)
)
_SENT = (
    update(deliveries)
    .where(deliveries.c.id.in_(bindparam("ids", expanding=True)), deliveries.c.lease_token == bindparam("token"))
    .values(state=DeliveryState.SENT, finished_at=bindparam("now"), last_error=None, lease_token=None, lease_until=None)
)
_CLOSE = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"), deliveries.c.lease_token == bindparam("b_token"))
    .values(
        state=bindparam("b_state"),
        due_at=bindparam("b_due"),
        finished_at=bindparam("b_finished"),
        last_error=bindparam("b_error"),
        attempts=deliveries.c.attempts - bindparam("b_uncount"),
        lease_token=None,
        lease_until=None,
        handoff_at=case((bindparam("b_keep_handoff", type_=Boolean), deliveries.c.handoff_at), else_=None),
    )
)


# -- what the inbound reports ask of the outbox --


def mail_targets(conn: Connection, delivery_ids: Collection[int]) -> dict[int, int]:
    """The subscriber each of these mail deliveries went to (those that are not in the outbox are left out)."""
    if not delivery_ids:
        return {}
    # By key alone: a condition on the channel too would let SQLite walk the claim index instead.
    query = select(deliveries.c.id, deliveries.c.channel, deliveries.c.target).where(
        deliveries.c.id.in_(sorted(delivery_ids))
    )
    return {int(i): int(t) for i, c, t in conn.execute(query) if c == Channel.EMAIL.value and str(t).isdigit()}


def sent_to(conn: Connection, subscriber_ids: Collection[int]) -> dict[int, list[tuple[int, datetime | None]]]:
    """Each subscriber's mail deliveries that were sent, and when each ended."""
    found: dict[int, list[tuple[int, datetime | None]]] = {}
    if not subscriber_ids:
        return found
    query = select(deliveries.c.id, deliveries.c.target, deliveries.c.finished_at).where(
        deliveries.c.channel == Channel.EMAIL.value,
        deliveries.c.state == DeliveryState.SENT.value,
        deliveries.c.target.in_([str(i) for i in sorted(subscriber_ids)]),
    )
    for delivery, target, finished in conn.execute(query):
        found.setdefault(int(target), []).append((int(delivery), finished))
    return found


def newest_mail_to(conn: Connection, subscriber_id: int) -> int | None:
    """The newest mail delivery to a subscriber that left (sent, or unknown after its hand-off)."""
    query = select(func.max(deliveries.c.id)).where(
        deliveries.c.channel == Channel.EMAIL.value,
        deliveries.c.target == str(subscriber_id),
        deliveries.c.state.in_([DeliveryState.SENT.value, DeliveryState.UNKNOWN.value]),
    )
    newest = conn.execute(query).scalar()
    return int(newest) if newest is not None else None


COMPLAINT_LINE = 0.003  # Gmail's and Yahoo's limit for bulk senders: 0.3% of what was delivered


def edition_reports(conn: Connection, ids: Sequence[int], sent: Mapping[int, int]) -> list[dict[str, Any]]:
    """Editions ``ids`` with their messages ``sent`` (counted by the rollups): subject, the deliveries a report
    came back for, by kind, and the readers who unsubscribed after it (by mail, a provider or the web pages:
    it was the newest mail they had). Use :func:`syndicate.outbox.rollups.edition_reports`.

    Each delivery counts once per kind however many reports it drew; the complaint rate
    is complaints over sent.
    """
    if not ids:
        return []
    # Driven from the reports and the changes (a few per edition), each joined to its delivery by key and
    # filtered here: a condition on the deliveries' own columns would let the planner walk them instead.
    wanted = set(ids)
    counted: dict[int, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    reported = (
        select(inbound.c.delivery_id, inbound.c.kind, deliveries.c.source_kind, deliveries.c.source_id)
        .join(deliveries, deliveries.c.id == inbound.c.delivery_id)
        .where(inbound.c.kind.in_(["hard", "soft", "complaint"]))
    )
    for delivery, kind, source, edition in conn.execute(reported):
        if source == "edition" and edition in wanted:
            counted[int(edition)][str(kind)].add(int(delivery))  # a delivery counts once per kind
    left = (
        select(subscriber_changes.c.subscriber_id, deliveries.c.source_kind, deliveries.c.source_id)
        .join(deliveries, deliveries.c.id == subscriber_changes.c.delivery_id)
        .where(subscriber_changes.c.status == Status.UNSUBSCRIBED.value)
    )
    for subscriber, source, edition in conn.execute(left):
        if source == "edition" and edition in wanted:
            counted[int(edition)]["unsubscribe"].add(int(subscriber))
    reports = {edition: {kind: len(found) for kind, found in kinds.items()} for edition, kinds in counted.items()}
    unsubscribes = {edition: kinds.get("unsubscribe", 0) for edition, kinds in reports.items()}
    subjects = dict(conn.execute(select(editions.c.id, editions.c.subject).where(editions.c.id.in_(ids))).all())
    rows = []
    for edition in ids:
        got, kinds = int(sent.get(edition, 0)), reports.get(edition, {})
        rate = kinds.get("complaint", 0) / got if got else 0.0
        rows.append({
            "edition": edition, "subject": subjects.get(edition, ""), "sent": got,
            "hard": kinds.get("hard", 0), "soft": kinds.get("soft", 0), "complaints": kinds.get("complaint", 0),
            "unsubscribes": unsubscribes.get(edition, 0),
            "complaint_rate": round(rate, 5), "over_the_line": rate > COMPLAINT_LINE,
        })  # fmt: skip
    return rows
