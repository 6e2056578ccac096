"""The outbox: every message owed to a subscriber or a partner, and the state machine that sends it once.

::

    pending ─claim(lease)─► in_flight ─► sent
       ▲                      │  ├──► failed   (permanent answer, or retries exhausted)
       └──── retry(backoff) ──┘  └──► unknown  (the bytes left and no answer came back)

- A delivery is planned once: rows are unique on (source, channel, target), so
  planning twice, or on two nodes at once, plans nothing new.
- ``claim`` takes due rows under a lease (PostgreSQL ``FOR UPDATE SKIP LOCKED``;
  SQLite ``BEGIN IMMEDIATE``) and marks them with one token; every later update
  is fenced on that token, so a node whose lease ran out cannot overwrite the
  work of the node that took over.
- ``handoff`` is committed just before the bytes leave. A lease that expires
  without hand-off is safely claimed again; with hand-off, the channel decides:
  email goes to ``unknown`` (never re-sent on its own), a webhook is retried
  (the partner de-duplicates on its id).
"""

from __future__ import annotations

import enum
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Boolean, and_, bindparam, case, func, select, update
from sqlalchemy.engine import Connection

from syndicate.store.db import Database
from syndicate.store.schema import deliveries

log = logging.getLogger(__name__)


class DeliveryState(enum.StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class RetryPolicy:
    """How a channel retries: the waits after each failed attempt, and for how long at most.

    After the last wait the delivery fails; it also fails once ``give_up_after``
    has passed since it was planned.
    """

    waits: tuple[float, ...]
    give_up_after: float | None = None
    unknown_after_handoff: bool = True

    def next_try(self, attempts: int, created_at: datetime, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` tries, or None to give up."""
        if attempts > len(self.waits):
            return None
        retry_at = now + timedelta(seconds=self.waits[attempts - 1])
        if self.give_up_after is not None and retry_at - created_at > timedelta(seconds=self.give_up_after):
            return None
        return retry_at


class Claim(NamedTuple):
    """A delivery this process holds under a lease."""

    id: int
    channel: str
    source_kind: str
    source_id: int
    target: str
    attempts: int
    created_at: datetime | None  # None when claimed without it (mail): loaded if a retry needs it
    token: str
    also: tuple[Any, ...] = ()  # what the claimer asked to read with it (a recipient's address, say)


class Outcome(enum.StrEnum):
    """What one attempt came to."""

    SENT = "sent"
    RETRY = "retry"  # a temporary failure: try again after the policy's wait
    FAILED = "failed"  # a permanent failure
    UNKNOWN = "unknown"  # the bytes left; whether they arrived is not known
    REQUEUE = "requeue"  # not attempted after all (stopping, throttled): back to pending, no attempt counted
    CANCELLED = "cancelled"


class Result(NamedTuple):
    """The end of one attempt at one claimed delivery."""

    claim: Claim
    outcome: Outcome
    error: str | None = None
    retry_at: datetime | None = None  # overrides the policy's wait (Retry-After, transport backoff)


class Outbox:
    """Claims, hand-offs and outcomes of deliveries, for one node."""

    def __init__(self, db: Database, node: str, policies: dict[str, RetryPolicy], lease_seconds: float = 120) -> None:
        self.db = db
        self.node = node
        self.policies = policies
        self.lease = timedelta(seconds=lease_seconds)
        # Lease tokens this process is working on, with how many of their claims are unfinished:
        # only these leases are kept alive, so work a failed send let go of runs out and is reaped.
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def claim(
        self, channel: str, limit: int, now: datetime, *, with_created: bool = True, also: Sequence[Any] = ()
    ) -> list[Claim]:
        """Take up to ``limit`` due deliveries of ``channel`` under a new lease.

        ``with_created=False`` leaves out when each was planned, which only a
        retry needs (reading dates back is a large part of a claim's cost).
        ``also`` are more columns (correlated subqueries) read in the same
        statement, returned in each claim's ``also``.
        """
        token = str(uuid.uuid4())
        due = (
            select(deliveries.c.id)
            .where(
                deliveries.c.channel == channel, deliveries.c.state == DeliveryState.PENDING, deliveries.c.due_at <= now
            )
            .order_by(deliveries.c.due_at, deliveries.c.id)
            .limit(limit)
        )
        if self.db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        values = {
            "state": DeliveryState.IN_FLIGHT,
            "lease_token": token,
            "lease_until": now + self.lease,
            "leased_by": self.node,
            "attempts": deliveries.c.attempts + 1,
            "handoff_at": None,
        }
        taken = update(deliveries).where(deliveries.c.id.in_(due.scalar_subquery())).values(**values)
        names = ("id", "source_kind", "source_id", "target", "attempts") + (("created_at",) if with_created else ())
        columns = [deliveries.c[name] for name in names] + list(also)
        with self.db.write() as conn:
            rows = conn.execute(taken.returning(*columns)).all()
        tail = len(names)
        claims = [
            Claim(r[0], channel, r[1], r[2], r[3], r[4], r[5] if with_created else None, token, tuple(r[tail:]))
            for r in rows
        ]
        if claims:
            with self._lock:
                self._held[token] = len(claims)
        return sorted(claims, key=lambda c: c.id)

    def handoff(self, claims: Sequence[Claim], now: datetime) -> set[int]:
        """Record that these deliveries' bytes are about to leave; return the ids still held."""
        if not claims:
            return set()
        with self.db.write() as conn:
            held: set[int] = set()
            for token, ids in _by_token(claims).items():
                for chunk in _chunks(ids):
                    held.update(conn.scalars(_HANDOFF, {"ids": chunk, "token": token, "now": now}))
        lost = len(claims) - len(held)
        if lost:
            log.warning("%d deliveries were taken over by another node before hand-off; not sending them", lost)
        return held

    def finish(self, results: Iterable[Result], now: datetime) -> int:
        """Record the outcomes (fenced on each lease token); return how many were recorded.

        Deliveries sent (nearly all of them) are closed with one statement per
        lease token; every other outcome row by row.
        """
        results = self._dated(list(results))
        self._settled(results)
        sent = [r.claim for r in results if r.outcome == Outcome.SENT]
        rows = [self._row(result, now) for result in results if result.outcome != Outcome.SENT]
        with self.db.write() as conn:
            for token, ids in _by_token(sent).items():
                for chunk in _chunks(ids):
                    conn.execute(_SENT, {"ids": chunk, "token": token, "now": now})
            if rows:
                conn.execute(self._row_update(), rows)
        return len(results)

    @staticmethod
    def _row_update() -> Any:
        return (
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

    def _row(self, result: Result, now: datetime) -> dict[str, Any]:
        claim = result.claim
        due, uncount = now, 0
        finished: datetime | None = now
        if result.outcome == Outcome.RETRY:
            planned = claim.created_at or now
            retry_at = result.retry_at or self.policies[claim.channel].next_try(claim.attempts, planned, now)
            if retry_at is None:
                log.warning("delivery %d failed for good after %d attempts: %s", claim.id, claim.attempts, result.error)
                state = DeliveryState.FAILED
            else:
                state, due, finished = DeliveryState.PENDING, retry_at, None
        elif result.outcome == Outcome.REQUEUE:
            state, due, finished, uncount = DeliveryState.PENDING, result.retry_at or now, None, 1
        else:
            state = DeliveryState(result.outcome.value)
        return {
            "b_id": claim.id,
            "b_token": claim.token,
            "b_state": state.value,
            "b_due": due,
            "b_finished": finished,
            "b_error": result.error,
            "b_uncount": uncount,
            # A delivery going back to pending starts its next attempt with no hand-off.
            "b_keep_handoff": state != DeliveryState.PENDING,
        }

    def _dated(self, results: list[Result]) -> list[Result]:
        """Retries of claims made without their planning time get it now (a retry's give-up needs it)."""
        missing = [r.claim.id for r in results if r.outcome == Outcome.RETRY and r.claim.created_at is None]
        if not missing:
            return results
        with self.db.read() as conn:
            planned = dict(
                conn.execute(select(deliveries.c.id, deliveries.c.created_at).where(deliveries.c.id.in_(missing))).all()
            )
        return [
            r._replace(claim=r.claim._replace(created_at=planned.get(r.claim.id))) if r.claim.id in planned else r
            for r in results
        ]

    def _settled(self, results: list[Result]) -> None:
        with self._lock:
            for result in results:
                token = result.claim.token
                if token in self._held:
                    self._held[token] -= 1
                    if self._held[token] <= 0:
                        del self._held[token]

    def extend(self, now: datetime) -> int:
        """Push back the end of the leases this process is still working on (it is alive and sending)."""
        with self._lock:
            tokens = list(self._held)
        if not tokens:
            return 0
        query = update(deliveries).where(self._in_flight(tokens)).values(lease_until=now + self.lease)
        with self.db.write() as conn:
            return int(conn.execute(query).rowcount)

    def _in_flight(self, tokens: list[str] | None = None) -> Any:
        """Deliveries in flight (under ``tokens``, if given); the channel is named so the index is used."""
        condition = and_(deliveries.c.channel.in_(list(self.policies)), deliveries.c.state == DeliveryState.IN_FLIGHT)
        return condition if tokens is None else and_(condition, deliveries.c.lease_token.in_(tokens))

    def release(self) -> None:
        """A sender is done: nothing it claimed is worked on any more (what was lost to others included)."""
        with self._lock:
            self._held.clear()

    def abandon(self, now: datetime) -> int:
        """A sender failed half-way: give back what it had not handed off; let the rest run out and be reaped."""
        with self._lock:
            tokens, self._held = list(self._held), {}
        if not tokens:
            return 0
        query = (
            update(deliveries)
            .where(self._in_flight(tokens), deliveries.c.handoff_at.is_(None))
            .values(
                state=DeliveryState.PENDING,
                due_at=now,
                attempts=deliveries.c.attempts - 1,
                lease_token=None,
                lease_until=None,
            )
        )
        with self.db.write() as conn:
            given_back = int(conn.execute(query).rowcount)
        log.warning("a send failed half-way: %d deliveries not yet handed off go back to pending", given_back)
        return given_back

    def reap(self, now: datetime) -> dict[str, int]:
        """Deal with leases that ran out (their node died): claim again, or mark unknown after hand-off."""
        expired = and_(self._in_flight(), deliveries.c.lease_until < now)
        cleared = {"lease_token": None, "lease_until": None}
        counts: dict[str, int] = {}
        with self.db.write() as conn:
            counts["reclaimable"] = _count(
                conn,
                update(deliveries)
                .where(expired, deliveries.c.handoff_at.is_(None))
                .values(state=DeliveryState.PENDING, due_at=now, attempts=deliveries.c.attempts - 1, **cleared),
            )
            for channel, policy in self.policies.items():
                after = and_(expired, deliveries.c.channel == channel, deliveries.c.handoff_at.is_not(None))
                if policy.unknown_after_handoff:
                    error = "the process sending it stopped after hand-off; it may or may not have arrived"
                    values = {"state": DeliveryState.UNKNOWN, "finished_at": now, "last_error": error}
                else:
                    values = {"state": DeliveryState.PENDING, "due_at": now, "handoff_at": None}
                counts[f"{channel}_after_handoff"] = _count(
                    conn, update(deliveries).where(after).values(**values, **cleared)
                )
        if any(counts.values()):
            log.warning("reaped expired leases: %s", counts)
        return counts


def counts(conn: Connection) -> dict[str, dict[str, int]]:
    """Deliveries by channel and state."""
    found: dict[str, dict[str, int]] = defaultdict(dict)
    query = select(deliveries.c.channel, deliveries.c.state, func.count()).group_by(
        deliveries.c.channel, deliveries.c.state
    )
    for channel, state, count in conn.execute(query):
        found[channel][state] = count
    return {channel: {s.value: found[channel].get(s.value, 0) for s in DeliveryState} for channel in sorted(found)}


# The two statements run for nearly every delivery, compiled once: the ids are one expanding parameter.
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


def _chunks(ids: list[int], size: int = 900) -> Iterable[list[int]]:
    """``ids`` in pieces small enough for one statement's parameters (SQLite allows 999)."""
    return (ids[start : start + size] for start in range(0, len(ids), size))


def _by_token(claims: Iterable[Claim]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = defaultdict(list)
    for claim in claims:
        grouped[claim.token].append(claim.id)
    return grouped


def _count(conn: Connection, query: Any) -> int:
    return int(conn.execute(query).rowcount)


def listing(
    conn: Connection, state: str | None = None, channel: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Deliveries, newest first, as plain values for ``deliveries list``."""
    query = select(deliveries).order_by(deliveries.c.id.desc()).limit(limit)
    if state:
        query = query.where(deliveries.c.state == state)
    if channel:
        query = query.where(deliveries.c.channel == channel)
    rows = []
    for r in conn.execute(query):
        row = {
            c: getattr(r, c)
            for c in ("id", "channel", "source_kind", "source_id", "target", "state", "attempts", "last_error")
        }
        for c in ("due_at", "created_at", "handoff_at", "finished_at"):
            value = getattr(r, c)
            row[c] = value.isoformat() if value else None
        rows.append(row)
    return rows


def requeue(conn: Connection, state: DeliveryState, now: datetime, channel: str | None = None) -> int:
    """Put every delivery in ``state`` back to pending, due now (an operator's decision)."""
    query = update(deliveries).where(deliveries.c.state == state)
    if channel:
        query = query.where(deliveries.c.channel == channel)
    values = {"state": DeliveryState.PENDING, "due_at": now, "finished_at": None, "handoff_at": None, "attempts": 0}
    return int(conn.execute(query.values(**values)).rowcount)


def backlog(conn: Connection, now: datetime) -> dict[str, int]:
    """Deliveries due now and not yet done, by channel."""
    query = (
        select(deliveries.c.channel, func.count())
        .where(deliveries.c.state.in_([DeliveryState.PENDING, DeliveryState.IN_FLIGHT]), deliveries.c.due_at <= now)
        .group_by(deliveries.c.channel)
    )
    return {channel: count for channel, count in conn.execute(query)}
