"""What a change to the list means for the mail owed: a subscriber removed is owed nothing more."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from syndicate import outbox
from syndicate.outbox import Channel
from syndicate.store import subscribers as store

REMOVED = "subscriber removed"


def remove(conn: Connection, email: str, now: datetime) -> bool:
    """Delete the subscriber with this address and cancel their pending mail; True if there was one."""
    found = store.by_email(conn, email)
    if not store.remove(conn, email) or found is None:
        return False
    outbox.cancel_target(conn, Channel.EMAIL, str(found.id), now, REMOVED)
    return True
