"""One node's side of the outbox: claims under lease, hand-off, outcomes, the lease keeper, and draining."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy.engine import Connection

from syndicate.outbox import table
from syndicate.outbox.policy import RetryPolicy
from syndicate.outbox.states import Channel, DeliveryState, Outcome
from syndicate.store import nodes
from syndicate.store.db import Database

log = logging.getLogger(__name__)


class Recipient(NamedTuple):
    """The subscriber a mail delivery is for, read with its claim (None in a claim: removed since)."""

    email: str
    status: str


class Claim(NamedTuple):
    """A delivery this process holds under a lease."""

    id: int
    channel: Channel
    source_kind: str
    source_id: int
    target: str
    attempts: int
    created_at: datetime | None  # None when claimed without it (mail): loaded if a retry needs it
    token: str
    recipient: Recipient | None = None  # claimed with_recipient: the subscriber, if they still exist


class Result(NamedTuple):
    """The end of one attempt at one claimed delivery."""

    claim: Claim
    outcome: Outcome
    error: str | None = None
    retry_at: datetime | None = None  # asked for by the other side (Retry-After, a throttling server)


class Outbox:
    """Claims, hand-offs and outcomes of deliveries, for one node.

    Each channel's :class:`RetryPolicy` decides when a failed attempt is tried
    again; senders report outcomes and never compute a retry time themselves.
    Leases are kept alive by one keeper, :meth:`keep_alive`, on one cadence (a
    quarter of the lease), and only for claims not yet finished.
    """

    def __init__(
        self, db: Database, node: str, policies: Mapping[Channel, RetryPolicy], lease_seconds: float = 120
    ) -> None:
        self.db = db
        self.node = node
        self.policies = dict(policies)
        self.lease = timedelta(seconds=lease_seconds)
        # Lease tokens this process is working on, with how many of their claims are unfinished:
        # only these leases are kept alive, so work a failed send let go of runs out and is reaped.
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self._kept_at = time.monotonic()
        self._settler: _QuickSettler | None = None

    def claim(
        self, channel: Channel, limit: int, now: datetime, *, with_created: bool = True, with_recipient: bool = False
    ) -> list[Claim]:
        """Take up to ``limit`` due deliveries of ``channel`` under a new lease, oldest due first.

        ``with_created=False`` leaves out when each was planned, which only a
        retry needs (reading dates back is a large part of a claim's cost);
        ``with_recipient`` reads each mail delivery's subscriber in the same statement.
        """
        token = str(uuid.uuid4())
        lease = {"token": token, "until": now + self.lease, "node": self.node}
        with self.db.write() as conn:
            rows = table.claim_due(conn, channel, limit, now, lease, dated=with_created, recipient=with_recipient)
        claims = sorted((_claim(row, channel, token, with_created, with_recipient) for row in rows), key=_id)
        if claims:
            with self._lock:
                self._held[token] = len(claims)
        return claims

    def handoff(self, claims: Sequence[Claim], now: datetime) -> set[int]:
        """Record that these deliveries' bytes are about to leave; return the ids still held."""
        if not claims:
            return set()
        with self.db.write() as conn:
            held = {i for token, ids in _by_token(claims).items() for i in table.hand_off(conn, token, ids, now)}
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
        with self.db.write() as conn:
            self._close(conn, results, now)
        self.settled(results)
        return len(results)

    def settle(self, results: Sequence[Result], starting: Sequence[Claim], now: datetime) -> set[int]:
        """Record ``results`` and hand off ``starting`` in one transaction; return the ids of ``starting`` still held.

        The mail wire's grouped commit: what ended since the last one, and what is about to leave next.
        """
        results = self._dated(list(results))
        sent = [r.claim for r in results if r.outcome == Outcome.SENT]
        others = [r for r in results if r.outcome != Outcome.SENT]
        if not others:  # nearly every turn: only sendings and hand-offs, on a connection kept for them
            held = self._quick.settle(_by_token(sent), _by_token(starting), now)
        else:
            with self.db.write() as conn:
                held = table.settle_quickly(conn, _by_token(sent), _by_token(starting), now)
                table.close_each(conn, [self._closing(result, now) for result in others])
        self.settled(results)
        if len(held) < len(starting):
            log.warning("%d deliveries were taken over by another node before hand-off; not sending them",
                        len(starting) - len(held))  # fmt: skip
        return held

    @property
    def _quick(self) -> _QuickSettler:
        if self._settler is None:
            self._settler = _QuickSettler(self.db)
        return self._settler

    def close(self) -> None:
        """Close the connection kept for quick settling, if one was opened."""
        if self._settler is not None:
            self._settler.close()
            self._settler = None

    def orphaned(self, claims: Sequence[Claim], now: datetime) -> set[int]:
        """The process sending ``claims`` died: those handed off become unknown (their ids are returned), the rest
        go back to pending."""
        unknown: set[int] = set()
        with self.db.write() as conn:
            for token, ids in _by_token(claims).items():
                unknown |= table.orphan(conn, token, ids, now)
        self.settled([Result(claim, Outcome.UNKNOWN) for claim in claims])
        if unknown:
            log.warning("%d deliveries were handed off to the sending process that stopped: unknown", len(unknown))
        return unknown

    def _close(self, conn: Connection, results: list[Result], now: datetime) -> None:
        sent = [r.claim for r in results if r.outcome == Outcome.SENT]
        closings = [self._closing(result, now) for result in results if result.outcome != Outcome.SENT]
        for token, ids in _by_token(sent).items():
            table.close_sent(conn, token, ids, now)
        table.close_each(conn, closings)

    def retry_time(self, result: Result, now: datetime) -> datetime | None:
        """When the outbox will try ``result``'s delivery again (None: it fails for good). Needs its ``created_at``."""
        claim = result.claim
        policy = self.policies[claim.channel]
        return policy.next_try(claim.attempts, claim.created_at or now, now, result.retry_at)

    def held_back_until(self, result: Result, now: datetime) -> datetime:
        """Until when deliveries queued behind ``result``'s must wait: its retry, or a first wait if it failed for good."""
        policy = self.policies[result.claim.channel]
        return self.retry_time(result, now) or now + timedelta(seconds=policy.waits[0])

    def _closing(self, result: Result, now: datetime) -> table.Closing:
        claim = result.claim
        due, uncount = now, 0
        finished: datetime | None = now
        if result.outcome == Outcome.RETRY:
            retry_at = self.retry_time(result, now)
            if retry_at is None:
                log.warning("delivery %d failed for good after %d attempts: %s", claim.id, claim.attempts, result.error)
                state = DeliveryState.FAILED
            else:
                state, due, finished = DeliveryState.PENDING, retry_at, None
        elif result.outcome == Outcome.REQUEUE:
            state, due, finished, uncount = DeliveryState.PENDING, result.retry_at or now, None, 1
        else:
            state = DeliveryState(result.outcome.value)
        return table.Closing(claim.id, claim.token, state, due, finished, result.error, uncount)

    def _dated(self, results: list[Result]) -> list[Result]:
        """Retries of claims made without their planning time get it now (a retry's give-up needs it)."""
        missing = [r.claim.id for r in results if r.outcome == Outcome.RETRY and r.claim.created_at is None]
        if not missing:
            return results
        with self.db.read() as conn:
            planned = table.planned_at(conn, missing)
        return [
            r._replace(claim=r.claim._replace(created_at=planned[r.claim.id])) if r.claim.id in planned else r
            for r in results
        ]

    def settled(self, results: Iterable[Result]) -> None:
        """Forget claims that are finished (recorded here or by a sending process): their leases need no keeping."""
        with self._lock:
            for result in results:
                token = result.claim.token
                if token in self._held:
                    self._held[token] -= 1
                    if self._held[token] <= 0:
                        del self._held[token]

    @property
    def keep_alive_every(self) -> float:
        """The lease keeper's cadence, in seconds: a quarter of the lease."""
        return self.lease.total_seconds() / 4

    def keep_alive(self, now: datetime) -> int:
        """The lease keeper: extend the leases still worked on, once a quarter-lease has passed since last time.

        Senders call it from their loops as often as they like; it writes only
        on its cadence. Returns how many leases were extended.
        """
        if time.monotonic() - self._kept_at < self.keep_alive_every:
            return 0
        return self.extend(now)

    def extend(self, now: datetime) -> int:
        """Push back the end of the leases this process is still working on (it is alive and sending)."""
        self._kept_at = time.monotonic()
        with self._lock:
            tokens = list(self._held)
        if not tokens:
            return 0
        with self.db.write() as conn:
            return table.extend(conn, self.policies, tokens, now + self.lease)

    @contextmanager
    def draining(self, clock: Callable[[], datetime]) -> Iterator[None]:
        """A sender's run: if it fails half-way, what it had not handed off goes back; at the end it holds nothing."""
        self._kept_at = time.monotonic()
        try:
            yield
        except BaseException:
            self.abandon(clock())
            raise
        finally:
            self.release()

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
        with self.db.write() as conn:
            given_back = table.give_back(conn, self.policies, tokens, now)
        log.warning("a send failed half-way: %d deliveries not yet handed off go back to pending", given_back)
        return given_back

    def reap(self, now: datetime, silent_for: timedelta | None = None) -> dict[str, int]:
        """Deal with leases whose node died: claim again, or as the channel says after hand-off.

        A lease is dead when it ran out, or (``silent_for``) when its node, known to
        beat, has not beaten for that long: its work moves on without waiting out the
        lease. A node that is alive but late loses nothing it could still finish badly:
        every later write of it is fenced on the lease token.
        """
        unknown = {channel: policy.unknown_after_handoff for channel, policy in self.policies.items()}
        with self.db.write() as conn:
            dead = nodes.silent(conn, now, silent_for) if silent_for is not None else []
            counts = table.reap(conn, unknown, now, [node for node in dead if node != self.node])
        if any(counts.values()):
            log.warning("reaped expired leases: %s", counts)
        return counts


class _QuickSettler:
    """One driver connection kept for the mail wire's commits: a commit of a few letters, with no pool around it.

    The wire commits once per turn of its loop, hundreds of times a second;
    through the driver's own connection a commit costs a fraction of what a
    pooled SQLAlchemy transaction does. It runs the outbox's own statements
    (:func:`syndicate.outbox.table.settle_on`), in a transaction that takes
    SQLite's write lock at its start like every other write.
    """

    def __init__(self, db: Database) -> None:
        self.dialect = db.engine.dialect
        self.raw = db.engine.raw_connection()
        if self.dialect.name == "sqlite":
            # Checkpoints fsync; the pooled connections (claims, leases, everything else) run them as
            # they commit, off the wire's loop, so this connection's hundreds of commits a second don't.
            cursor = self.raw.cursor()
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

    def settle(self, sent: dict[str, list[int]], handing: dict[str, list[int]], now: datetime) -> set[int]:
        cursor = self.raw.cursor()
        try:
            if self.dialect.name == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")

            def execute(sql: str, params: tuple[object, ...]) -> object:
                cursor.execute(sql, params)
                return cursor

            held = table.settle_on(execute, self.dialect, sent, handing, table.stamp(self.dialect, now))
            self.raw.commit()
            return held
        except BaseException:
            self.raw.rollback()
            raise
        finally:
            cursor.close()

    def close(self) -> None:
        self.raw.close()


def _claim(row: Sequence[object], channel: Channel, token: str, dated: bool, with_recipient: bool) -> Claim:
    fixed = len(table.CLAIMED)
    created = row[fixed] if dated else None
    recipient = None
    if with_recipient:
        email, status = row[fixed + dated], row[fixed + dated + 1]
        recipient = Recipient(str(email), str(status)) if email is not None else None
    id_, kind, source_id, target, attempts = row[:fixed]
    return Claim(id_, channel, kind, source_id, target, attempts, created, token, recipient)  # type: ignore[arg-type]


def _id(claim: Claim) -> int:
    return claim.id


def _by_token(claims: Iterable[Claim]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = defaultdict(list)
    for claim in claims:
        grouped[claim.token].append(claim.id)
    return grouped
