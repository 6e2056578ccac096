"""The signed links in mail (confirm, unsubscribe, preferences): which subscriber a link is for, if it is good.

A link that is not good changes nothing and gets a page saying why, with a
4xx status: 400 for a damaged link, 403 for one we did not sign (or whose
subscriber is gone), 410 for an expired one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from syndicate.store import subscribers as store
from syndicate.store.db import Database
from syndicate.store.subscribers import Subscriber
from syndicate.tokens import BadToken, Secrets

MAX_TOKEN = 200
STATUS = {"malformed": 400, "invalid": 403, "expired": 410}


class LinkError(Exception):
    """A link is malformed, invalid or expired (``kind``)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"this link is {kind}")
        self.kind = kind
        self.status = STATUS[kind]


class Links:
    """Checks tokens against the subscriber they name."""

    def __init__(self, db: Database, secrets: Secrets, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.secrets = secrets
        self.clock = clock

    def subscriber(self, token: str, purpose: str) -> Subscriber:
        """The subscriber ``token`` was signed for, for ``purpose``; :class:`LinkError` otherwise."""
        if len(token) > MAX_TOKEN:
            raise LinkError("malformed")
        try:
            subscriber_id, expires, _ = self.secrets.read(token, purpose)
        except BadToken as exc:
            raise LinkError("malformed") from exc
        with self.db.read() as conn:
            found = store.by_id(conn, subscriber_id)
        if found is None:
            raise LinkError("invalid")
        now = self.clock()
        try:
            self.secrets.verify(token, purpose, found.email, now)
        except BadToken as exc:
            # Saying "expired" of a forged token whose date has passed tells a forger nothing.
            raise LinkError("expired" if expires and now.timestamp() > expires else "invalid") from exc
        return found

    def sign(self, purpose: str, subscriber: Subscriber) -> str:
        """A token for another page about the same subscriber (never expiring)."""
        return self.secrets.sign(purpose, subscriber.id, subscriber.email)
