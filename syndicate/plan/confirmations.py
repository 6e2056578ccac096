"""Double opt-in: subscribe requests become pending subscribers, each sent one confirmation mail.

The web form only stores a request (the same work for every address, so the
answer's time tells nobody who is subscribed). This stage, which the tick runs
before it sends mail, acts on each stored request, oldest first:

- a new or unsubscribed address: pending, with the request's consent record
  (web form, when, client address), and a confirmation mail;
- pending: the choices and consent record are renewed; at most one
  confirmation mail a day (the outbox plans it once);
- active, bounced, complained or suppressed: nothing changes, no mail; nor
  for an address that unsubscribed after it asked (the later act wins).

A batch is acted on and deleted in one transaction under a lock, so two ticks
or two nodes act on each request once; a batch that fails stays stored and the
next tick tries it again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Connection

from syndicate.plan.editions import plan_edition
from syndicate.render.email import EmailRenderer
from syndicate.roles import Role
from syndicate.store import editions
from syndicate.store import subscribers as store
from syndicate.store.db import Database
from syndicate.store.subscribers import Subscriber, SubscribeRequest
from syndicate.subscribers import NewSubscriber, Status

LOCK = "syndicate-plan-confirmations"
BATCH = 200


class ConfirmationPlanner:
    """The stage that turns stored subscribe requests into pending subscribers and confirmation mail."""

    name = "plan-confirmations"
    role = Role.SCHEDULER

    def __init__(self, db: Database, renderer: EmailRenderer) -> None:
        self.db = db
        self.renderer = renderer

    def run(self, now: datetime, stop: Callable[[], bool]) -> dict[str, int]:
        """Act on every stored request; return counts."""
        counts = {"requests": 0, "confirmations": 0}
        while not stop() and self._batch(now, counts):
            pass
        return {k: v for k, v in counts.items() if v}

    def _batch(self, now: datetime, counts: dict[str, int]) -> bool:
        """Act on the oldest requests and forget them; True when there may be more."""
        with self.db.exclusive(LOCK) as conn:
            requests = store.oldest_requests(conn, BATCH)
            for request in requests:
                counts["confirmations"] += self._act(conn, request, now)
            store.forget_requests(conn, [r.id for r in requests])
        counts["requests"] += len(requests)
        return len(requests) == BATCH

    def _act(self, conn: Connection, request: SubscribeRequest, now: datetime) -> bool:
        subscriber_id = make_pending(conn, request.wanted)
        if subscriber_id is None:
            return False
        return queue_confirmation(conn, self.renderer, subscriber_id, request.mail_lang, now)


def make_pending(conn: Connection, wanted: NewSubscriber) -> int | None:
    """Make ``wanted.email`` pending with its choices and consent; its id, or None when it must not be mailed.

    The subscriber's times are those of the request (``wanted.consent_at``), not of the tick.
    """
    asked = wanted.consent_at
    assert asked is not None, "a subscribe request carries the time it was made"
    if store.is_suppressed(conn, wanted.email):
        return None
    found = store.by_email(conn, wanted.email)
    if found is None:
        return store.add(conn, wanted, asked)
    if not _may_renew(found, asked):
        return None
    store.update_preferences(conn, found.id, wanted.languages, wanted.categories, wanted.frequency.value, asked)
    store.set_status(conn, found.id, Status.PENDING, asked, consent=wanted.consent_method)
    return found.id


def _may_renew(found: Subscriber, asked: datetime) -> bool:
    if found.status == Status.PENDING:
        return True
    # Unsubscribing after asking (between the request and this tick) is the newer wish.
    left = found.unsubscribed_at
    return found.status == Status.UNSUBSCRIBED and (left is None or left <= asked)


def queue_confirmation(conn: Connection, renderer: EmailRenderer, subscriber_id: int, lang: str, now: datetime) -> bool:
    """Plan the confirmation mail for a pending subscriber; at most one per subscriber per day.

    The confirmation edition is rendered once per language and day and shared:
    the confirm link itself is filled in per recipient when the mail is sent.
    """
    key = f"confirmation:{lang}:{now.date().isoformat()}"
    edition_id = editions.create_or_get(
        conn, key, lambda: renderer.confirmation(lang, key, now), "confirmation", lang, now
    )
    return plan_edition(conn, edition_id, editions.one_recipient(subscriber_id), now) > 0


def import_rows(
    conn: Connection, renderer: EmailRenderer, rows: list[NewSubscriber], confirmed: bool, now: datetime
) -> tuple[int, int]:
    """Add imported subscribers not on the list yet; unless ``confirmed``, plan each one's confirmation mail.

    Return how many were added and how many were already on the list (the CLI's and the console's import).
    """
    known = store.existing(conn, [r.email for r in rows])
    fresh = [r for r in rows if r.email not in known]
    store.add_many(conn, fresh, now)
    if not confirmed:
        for row in fresh:
            added = store.by_email(conn, row.email)
            assert added is not None
            queue_confirmation(conn, renderer, added.id, row.languages[0], now)
    return len(fresh), len(known)
