"""Editions: each message rendered once, and the subscribers it is for (the outbox plans the deliveries)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import String, and_, cast, exists, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from syndicate.model import MailedEdition
from syndicate.store.db import dialect_insert
from syndicate.store.schema import editions, subscribers, suppressions
from syndicate.subscribers import Status

ACTIVE = Status.ACTIVE.value
ARCHIVED = ("statement", "digest")  # the kinds of edition the newsletter archive shows; confirmations are not


class Rendered(Protocol):
    """A message as rendering made it: its subject and its bytes."""

    @property
    def subject(self) -> str: ...

    @property
    def message(self) -> bytes: ...


@dataclass(frozen=True)
class Edition:
    """A stored edition."""

    id: int
    key: str
    kind: str
    lang: str
    statement_id: str | None
    subject: str
    message: bytes
    recipients: int
    created_at: datetime


def create(
    conn: Connection,
    key: str,
    kind: str,
    lang: str,
    subject: str,
    message: bytes,
    now: datetime,
    statement_id: str | None = None,
    holds: Sequence[str] = (),
) -> int | None:
    """Insert an edition under ``key``; None if one exists already (planned once, whoever came first).

    ``holds`` names the statements a digest carries.
    """
    values = {
        "key": key,
        "kind": kind,
        "lang": lang,
        "statement_id": statement_id,
        "holds": list(holds) if holds else None,
        "subject": subject,
        "message": message,
        "recipients": 0,
        "created_at": now,
    }
    query = (
        dialect_insert(conn, editions)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(editions.c.id)
    )
    found = conn.execute(query).scalar()
    return int(found) if found is not None else None


def create_or_get(
    conn: Connection, key: str, render: Callable[[], Rendered], kind: str, lang: str, now: datetime
) -> int:
    """The id of the edition under ``key``, rendering and inserting it if it is not there yet."""
    found = conn.execute(select(editions.c.id).where(editions.c.key == key)).scalar()
    if found is not None:
        return int(found)
    rendered = render()
    created = create(conn, key, kind, lang, rendered.subject, rendered.message, now)
    if created is None:  # another process inserted it meanwhile
        return int(conn.execute(select(editions.c.id).where(editions.c.key == key)).scalar_one())
    return created


def get(conn: Connection, edition_id: int) -> Edition | None:
    """An edition by id."""
    row = conn.execute(select(editions).where(editions.c.id == edition_id)).first()
    return (
        Edition(
            row.id,
            row.key,
            row.kind,
            row.lang,
            row.statement_id,
            row.subject,
            row.message,
            row.recipients,
            row.created_at,
        )
        if row
        else None
    )


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%,{escaped},%"


def audience(lang: str, categories: Sequence[str], frequency: str) -> Any:
    """SQL condition: active subscribers of ``frequency`` who read ``lang`` and follow one of ``categories``."""
    category_match = or_(
        subscribers.c.categories == "", *(subscribers.c.categories.like(_like(c), escape="\\") for c in categories)
    )
    not_suppressed = ~exists().where(suppressions.c.email == subscribers.c.email)
    return and_(
        subscribers.c.status == ACTIVE,
        subscribers.c.frequency == frequency,
        subscribers.c.languages.like(_like(lang), escape="\\"),
        category_match if categories else subscribers.c.categories == "",
        not_suppressed,
    )


def recipients(condition: Any) -> Select[Any]:
    """The subscribers matching ``condition``, as outbox targets (their ids as text)."""
    return select(cast(subscribers.c.id, String)).where(condition)


def one_recipient(subscriber_id: int) -> Any:
    """SQL condition: this subscriber (a confirmation's audience)."""
    return subscribers.c.id == subscriber_id


def mailed(conn: Connection) -> list[MailedEdition]:
    """The statement and digest editions that went out to anyone, oldest first (the newsletter archive)."""
    cols = (editions.c.id, editions.c.kind, editions.c.lang, editions.c.statement_id, editions.c.subject,
            editions.c.created_at, editions.c.holds)  # fmt: skip
    query = select(*cols).where(editions.c.kind.in_(ARCHIVED), editions.c.recipients > 0).order_by(editions.c.id)
    return [MailedEdition(r.id, r.kind, r.lang, r.statement_id, r.subject, r.created_at, _holds(r))
            for r in conn.execute(query)]  # fmt: skip


def _holds(row: Any) -> tuple[str, ...] | None:
    """The statements a digest holds; a statement's edition holds its own; None: a digest from before it was kept."""
    if row.holds is not None:
        return tuple(row.holds)
    return () if row.statement_id else None


def messages(conn: Connection, ids: Sequence[int]) -> dict[int, bytes]:
    """The stored message of each edition in ``ids``."""
    found: dict[int, bytes] = {}
    for start in range(0, len(ids), 500):
        query = select(editions.c.id, editions.c.message).where(editions.c.id.in_(ids[start : start + 500]))
        found.update({r.id: bytes(r.message) for r in conn.execute(query)})
    return found


def count_recipients(conn: Connection, edition_id: int, planned: int) -> None:
    """Add ``planned`` to the edition's recipients (the deliveries just planned for it)."""
    conn.execute(update(editions).where(editions.c.id == edition_id).values(recipients=editions.c.recipients + planned))


def of_statement(statement_id: str) -> Select[Any]:
    """The ids of a statement's editions."""
    return select(editions.c.id).where(editions.c.statement_id == statement_id)


def signatures(conn: Connection, frequency: str) -> list[tuple[str, str]]:
    """Distinct (languages, categories) of active subscribers of ``frequency``: what digests to cut."""
    query = (
        select(subscribers.c.languages, subscribers.c.categories)
        .where(subscribers.c.status == ACTIVE, subscribers.c.frequency == frequency)
        .distinct()
    )
    return [(r.languages, r.categories) for r in conn.execute(query)]


def digest_audience(frequency: str, lang: str, categories: str) -> Any:
    """SQL condition: active digest readers of ``frequency`` who read ``lang`` and chose exactly ``categories``."""
    not_suppressed = ~exists().where(suppressions.c.email == subscribers.c.email)
    return and_(
        subscribers.c.status == ACTIVE,
        subscribers.c.frequency == frequency,
        subscribers.c.languages.like(_like(lang), escape="\\"),
        subscribers.c.categories == categories,
        not_suppressed,
    )
