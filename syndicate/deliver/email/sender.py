"""The stage that drains the email outbox: claim, compose, send, record, until nothing is due."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime

from syndicate.deliver.email.compose import Composer
from syndicate.deliver.email.transports import Outgoing, Transport
from syndicate.outbox import Claim, Outbox
from syndicate.store import meta
from syndicate.store import subscribers as subscriber_store
from syndicate.store.db import Database

log = logging.getLogger(__name__)

THROTTLE_KEY = "email.throttled_until"
Progress = Callable[[int], None]


class EmailSender:
    """Sends every email delivery that is due, in batches, until none is left or it is told to stop."""

    name = "send-email"

    def __init__(self, db: Database, outbox: Outbox, composer: Composer, transport: Callable[[], Transport],
                 clock: Callable[[], datetime], claim_size: int) -> None:  # fmt: skip
        self.db = db
        self.outbox = outbox
        self.composer = composer
        self.transport = transport
        self.clock = clock
        self.claim_size = claim_size
        self.progress: Progress = lambda n: None

    def run(self, now: datetime, stop: Callable[[], bool]) -> dict[str, int]:
        """Send what is due; return how each delivery ended."""
        with self.db.read() as conn:
            waiting = meta.get(conn, THROTTLE_KEY)
        if waiting and datetime.fromisoformat(waiting) > now:
            log.info("mail server asked us to wait until %s", waiting)
            return {"waiting": 1}
        counts: Counter[str] = Counter()
        transport = self.transport()
        extended = time.monotonic()
        try:
            while not stop():
                claims = self.outbox.claim("email", self.claim_size, self.clock())
                if not claims:
                    break
                throttled = self._batch(claims, transport, stop, counts)
                if time.monotonic() - extended > self.outbox.lease.total_seconds() / 4:
                    self.outbox.extend(self.clock())
                    extended = time.monotonic()
                if throttled:
                    break
        finally:
            transport.close()
        return dict(counts)

    def _batch(
        self, claims: Sequence[Claim], transport: Transport, stop: Callable[[], bool], counts: Counter[str]
    ) -> bool:
        messages, cancelled = self.composer.compose(claims, self.clock())
        report = transport.send(messages, self._handoff, stop)
        results = cancelled + report.results
        self.outbox.finish(results, self.clock())
        if report.suppress:
            self._suppress(report.suppress)
        if report.throttled_until:
            with self.db.write() as conn:
                meta.put(conn, THROTTLE_KEY, report.throttled_until.isoformat())
        counts.update(r.outcome.value for r in results)
        self.progress(len(results))
        return report.throttled_until is not None

    def _handoff(self, messages: Sequence[Outgoing]) -> set[int]:
        return self.outbox.handoff([m.claim for m in messages], self.clock())

    def _suppress(self, addresses: list[tuple[str, str]]) -> None:
        now = self.clock()
        with self.db.write() as conn:
            for address, reason in addresses:
                subscriber_store.suppress(conn, address, reason, now)
                log.warning("suppressed %s: %s", address, reason)
