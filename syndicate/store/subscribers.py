"""Subscribers and the suppression list in the store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, cast, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Row

from syndicate.store.db import dialect_insert
from syndicate.store.schema import subscribe_requests, subscribers, suppressions
from syndicate.subscribers import Frequency, NewSubscriber, Status, joined, split


@dataclass(frozen=True)
class Subscriber:
    """A stored subscriber."""

    id: int
    email: str
    status: Status
    languages: tuple[str, ...]
    categories: tuple[str, ...]
    frequency: str
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    consent_at: datetime
    consent_method: str

    def as_row(self) -> dict[str, Any]:
        """Plain values, for CSV and JSON."""
        return {
            "email": self.email,
            "status": self.status.value,
            "languages": ";".join(self.languages),
            "categories": ";".join(self.categories),
            "frequency": self.frequency,
            "consent_at": self.consent_at.isoformat(),
            "consent_method": self.consent_method,
            "created_at": self.created_at.isoformat(),
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else "",
            "unsubscribed_at": self.unsubscribed_at.isoformat() if self.unsubscribed_at else "",
        }


def _subscriber(row: Row[Any]) -> Subscriber:
    return Subscriber(
        row.id, row.email, Status(row.status), split(row.languages), split(row.categories), row.frequency,
        row.created_at, row.confirmed_at, row.unsubscribed_at, row.consent_at, row.consent_method,
    )  # fmt: skip


def by_email(conn: Connection, email: str) -> Subscriber | None:
    """The subscriber with this (normalised) address."""
    row = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
    return _subscriber(row) if row else None


def by_id(conn: Connection, subscriber_id: int) -> Subscriber | None:
    """The subscriber with this id."""
    row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
    return _subscriber(row) if row else None


def by_ids(conn: Connection, ids: list[int]) -> dict[int, Subscriber]:
    """Subscribers by id (missing ids are absent)."""
    found: dict[int, Subscriber] = {}
    for start in range(0, len(ids), 900):
        rows = conn.execute(select(subscribers).where(subscribers.c.id.in_(ids[start : start + 900])))
        found.update((r.id, _subscriber(r)) for r in rows)
    return found


def recipient_columns(target: Any) -> tuple[Any, Any]:
    """The address and status of the subscriber whose id is in the text column ``target`` (an outbox claim's)."""
    whose = subscribers.c.id == cast(target, Integer)
    return (
        select(subscribers.c.email).where(whose).scalar_subquery(),
        select(subscribers.c.status).where(whose).scalar_subquery(),
    )


def add(conn: Connection, new: NewSubscriber, now: datetime) -> int:
    """Insert a subscriber (the address must be new); return its id."""
    return int(conn.execute(insert(subscribers).values(**_row(new, now)).returning(subscribers.c.id)).scalar_one())


def add_many(conn: Connection, rows: list[NewSubscriber], now: datetime) -> int:
    """Insert many new subscribers at once; return how many."""
    if rows:
        conn.execute(insert(subscribers), [_row(new, now) for new in rows])
    return len(rows)


def _row(new: NewSubscriber, now: datetime) -> dict[str, Any]:
    return {
        "email": new.email,
        "status": (Status.ACTIVE if new.confirmed else Status.PENDING).value,
        "languages": joined(new.languages),
        "categories": joined(new.categories),
        "frequency": new.frequency.value,
        "consent_at": new.consent_at or now,
        "consent_method": new.consent_method,
        "created_at": now,
        "confirmed_at": now if new.confirmed else None,
        "changed_at": now,
    }


def update_preferences(
    conn: Connection,
    subscriber_id: int,
    languages: tuple[str, ...],
    categories: tuple[str, ...],
    frequency: str,
    now: datetime,
) -> None:
    """Change what a subscriber gets, and how often."""
    values = {
        "languages": joined(languages),
        "categories": joined(categories),
        "frequency": frequency,
        "changed_at": now,
    }
    conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(**values))


def set_status(
    conn: Connection, subscriber_id: int, status: Status, now: datetime, *, consent: str | None = None
) -> None:
    """Move a subscriber to ``status``, stamping when (and the new consent, when there is one)."""
    values: dict[str, Any] = {"status": status.value, "changed_at": now}
    if status == Status.ACTIVE:
        values.update(confirmed_at=now, unsubscribed_at=None)
    elif status == Status.UNSUBSCRIBED:
        values["unsubscribed_at"] = now
    elif status == Status.PENDING:
        values.update(confirmed_at=None, unsubscribed_at=None)
    if consent is not None:
        values.update(consent_at=now, consent_method=consent)
    conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(**values))


def remove(conn: Connection, email: str) -> bool:
    """Delete a subscriber entirely (and their waiting form requests); True if there was one.

    What is still owed to them is the outbox's: :func:`syndicate.plan.subscribers.remove` cancels it too.
    """
    # A form request still waiting for the tick would bring the address straight back.
    conn.execute(delete(subscribe_requests).where(subscribe_requests.c.email == email))
    found = by_email(conn, email)
    if found is None:
        return False
    conn.execute(delete(subscribers).where(subscribers.c.id == found.id))
    return True


def iterate(conn: Connection, status: Status | None = None) -> Iterator[Subscriber]:
    """Every subscriber (optionally of one status), streamed in address order."""
    query = select(subscribers).order_by(subscribers.c.email)
    if status is not None:
        query = query.where(subscribers.c.status == status.value)
    for row in conn.execution_options(yield_per=1000).execute(query):
        yield _subscriber(row)


def existing(conn: Connection, emails: list[str]) -> set[str]:
    """Which of ``emails`` are already subscribers."""
    found: set[str] = set()
    for start in range(0, len(emails), 900):
        found.update(
            conn.scalars(select(subscribers.c.email).where(subscribers.c.email.in_(emails[start : start + 900])))
        )
    return found


def counts(conn: Connection) -> dict[str, int]:
    """Subscribers by status (every status listed)."""
    found = {s.value: 0 for s in Status}
    for status, count in conn.execute(select(subscribers.c.status, func.count()).group_by(subscribers.c.status)):
        found[status] = count
    return found


def suppress(conn: Connection, email: str, reason: str, now: datetime, status: Status = Status.BOUNCED) -> None:
    """Never mail ``email`` again, and say why; the subscriber (if any) becomes ``status``."""
    conn.execute(
        dialect_insert(conn, suppressions).values(email=email, reason=reason, created_at=now).on_conflict_do_nothing()
    )
    conn.execute(update(subscribers).where(subscribers.c.email == email).values(status=status.value, changed_at=now))


def suppress_many(conn: Connection, rows: Sequence[tuple[str, str, Status]], now: datetime) -> None:
    """:func:`suppress` for many addresses at once: (email, reason, status) each."""
    if not rows:
        return
    query = dialect_insert(conn, suppressions).on_conflict_do_nothing()
    conn.execute(query, [{"email": email, "reason": reason, "created_at": now} for email, reason, _ in rows])
    standing = update(subscribers).where(subscribers.c.email == bindparam("b_email"))
    standing = standing.values(status=bindparam("b_status"), changed_at=now)
    conn.execute(standing, [{"b_email": email, "b_status": status.value} for email, _, status in rows])


def unsubscribe_many(conn: Connection, subscriber_ids: Sequence[int], now: datetime) -> None:
    """Mark these subscribers unsubscribed now."""
    if subscriber_ids:
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id.in_(list(subscriber_ids)))
            .values(status=Status.UNSUBSCRIBED.value, unsubscribed_at=now, changed_at=now)
        )


def unsuppress(conn: Connection, email: str, now: datetime) -> bool:
    """Take ``email`` off the suppression list; a bounced subscriber is active again. True if it was there."""
    removed = bool(conn.execute(delete(suppressions).where(suppressions.c.email == email)).rowcount)
    stuck = (subscribers.c.email == email) & subscribers.c.status.in_([Status.BOUNCED.value, Status.COMPLAINED.value])
    conn.execute(update(subscribers).where(stuck).values(status=Status.ACTIVE.value, changed_at=now))
    return removed


def is_suppressed(conn: Connection, email: str) -> bool:
    """Whether ``email`` is on the suppression list."""
    return conn.execute(select(suppressions.c.email).where(suppressions.c.email == email)).first() is not None


# -- subscribe requests from the web form, waiting for the tick --


@dataclass(frozen=True)
class SubscribeRequest:
    """What someone asked for on the form (``wanted.consent_at`` is when), and the language of its mail."""

    wanted: NewSubscriber
    mail_lang: str
    id: int = 0


def add_request(conn: Connection, request: SubscribeRequest) -> None:
    """Store a subscribe request as it came: one insert, reading nothing about the address."""
    wanted = request.wanted
    conn.execute(
        insert(subscribe_requests).values(
            email=wanted.email,
            languages=joined(wanted.languages),
            categories=joined(wanted.categories),
            frequency=wanted.frequency.value,
            mail_lang=request.mail_lang,
            consent_method=wanted.consent_method,
            requested_at=wanted.consent_at,
        )
    )


def oldest_requests(conn: Connection, limit: int) -> list[SubscribeRequest]:
    """Up to ``limit`` stored requests, oldest first."""
    query = select(subscribe_requests).order_by(subscribe_requests.c.id).limit(limit)
    return [_request(row) for row in conn.execute(query)]


def forget_requests(conn: Connection, ids: list[int]) -> None:
    """Delete requests once they are acted on."""
    conn.execute(delete(subscribe_requests).where(subscribe_requests.c.id.in_(ids)))


def _request(row: Row[Any]) -> SubscribeRequest:
    wanted = NewSubscriber(
        row.email, split(row.languages), split(row.categories), Frequency(row.frequency),
        False, row.consent_method, row.requested_at,
    )  # fmt: skip
    return SubscribeRequest(wanted, row.mail_lang, row.id)
