"""What the store keeps of the fediverse actor: its key pairs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from syndicate.store.schema import actor_keys


@dataclass(frozen=True)
class StoredKey:
    """One of the actor's key pairs, as PEM text."""

    id: int
    private_pem: str
    public_pem: str
    created_at: datetime


def current_key(conn: Connection) -> StoredKey | None:
    """The key pair that signs and is published: the newest one not retired."""
    query = (
        select(actor_keys.c.id, actor_keys.c.private_pem, actor_keys.c.public_pem, actor_keys.c.created_at)
        .where(actor_keys.c.retired_at.is_(None))
        .order_by(actor_keys.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return StoredKey(row.id, row.private_pem, row.public_pem, row.created_at) if row else None


def add_key(conn: Connection, private_pem: str, public_pem: str, now: datetime) -> StoredKey:
    """Store a new key pair as the current one, retiring those before it."""
    conn.execute(update(actor_keys).where(actor_keys.c.retired_at.is_(None)).values(retired_at=now))
    query = actor_keys.insert().values(private_pem=private_pem, public_pem=public_pem, created_at=now)
    new_id = conn.execute(query.returning(actor_keys.c.id)).scalar_one()
    return StoredKey(int(new_id), private_pem, public_pem, now)


def key_count(conn: Connection) -> int:
    """How many key pairs the actor has had."""
    return len(conn.execute(select(actor_keys.c.id)).all())
