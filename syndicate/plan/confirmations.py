"""Double opt-in: a pending subscriber is sent one confirmation mail, through the outbox like any other."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from syndicate.render.email import EmailRenderer
from syndicate.store import editions


def queue_confirmation(conn: Connection, renderer: EmailRenderer, subscriber_id: int, lang: str, now: datetime) -> bool:
    """Plan the confirmation mail for a pending subscriber; at most one per subscriber per day.

    The confirmation edition is rendered once per language and day and shared:
    the confirm link itself is filled in per recipient when the mail is sent.
    """
    key = f"confirmation:{lang}:{now.date().isoformat()}"
    edition_id = editions.create_or_get(
        conn, key, lambda: renderer.confirmation(lang, key, now), "confirmation", lang, now
    )
    return editions.plan_one(conn, edition_id, subscriber_id, now)
