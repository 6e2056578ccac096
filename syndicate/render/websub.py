"""WebSub: tell each hub that a feed changed (``hub.mode=publish``), retrying until it listens.

The ping names the feed both as ``hub.url`` and as ``hub.topic``: WebSub does
not fix how a publisher pings, and common hubs read one name or the other.

Pings owed are kept in the store, one per (hub, feed), so a hub that is down
gets the ping later (even after a restart), and a feed that changes ten times
while the hub is down costs one ping, not ten.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import requests
from sqlalchemy.engine import Connection

from syndicate.store import feeds as feed_store
from syndicate.store.db import Database
from syndicate.store.feeds import Ping

log = logging.getLogger(__name__)

# Waits after the 1st, 2nd, ... failure; after the last the ping is dropped (about a day in all).
BACKOFF = (30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200)


class Pinger:
    """Sends the publish pings that are due."""

    def __init__(self, db: Database, session: requests.Session, timeout: float = 10.0) -> None:
        self.db = db
        self.session = session
        self.timeout = timeout

    def send_due(self, now: datetime, stop: Callable[[], bool] = lambda: False) -> tuple[int, int]:
        """Ping every hub a due ping is owed to; return (sent, failed)."""
        with self.db.read() as conn:
            due = feed_store.due_pings(conn, now)
        sent = failed = 0
        for ping in due:
            if stop():
                break
            error = self._ping(ping)
            with self.db.write() as conn:
                if error is None:
                    feed_store.ping_done(conn, ping)
                    sent += 1
                else:
                    self._failed(conn, ping, error, now)
                    failed += 1
        return sent, failed

    def _ping(self, ping: Ping) -> str | None:
        # Some hubs read only hub.url, others (flask-websub) only hub.topic.
        data = {"hub.mode": "publish", "hub.url": ping.topic, "hub.topic": ping.topic}
        try:
            response = self.session.post(
                ping.hub, data=data, timeout=(self.timeout, self.timeout), allow_redirects=False
            )
        except requests.RequestException as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            log.info("pinged hub %s for %s", ping.hub, ping.topic)
            return None
        return f"HTTP {response.status_code} {response.reason}"

    @staticmethod
    def _failed(conn: Connection, ping: Ping, error: str, now: datetime) -> None:
        if ping.attempts >= len(BACKOFF):
            log.error(
                "giving up pinging hub %s for %s after %d attempts: %s", ping.hub, ping.topic, ping.attempts + 1, error
            )
            feed_store.ping_done(conn, ping)
            return
        retry_at = now + timedelta(seconds=BACKOFF[ping.attempts])
        log.warning(
            "hub %s refused ping for %s (%s); retrying at %s", ping.hub, ping.topic, error, retry_at.isoformat()
        )
        feed_store.ping_failed(conn, ping, retry_at, error)
