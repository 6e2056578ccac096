"""The stage that drains the email outbox: claim, compose, send, record, until nothing is due.

While one batch is on the wire, the next is claimed and composed and the one
before is recorded, so the connections never wait for the database.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from syndicate.deliver.email.compose import Composer
from syndicate.deliver.email.transports import Outgoing, SendReport, Transport
from syndicate.outbox import Claim, Outbox, Outcome, Result
from syndicate.store import meta
from syndicate.store import subscribers as subscriber_store
from syndicate.store.db import Database

log = logging.getLogger(__name__)

THROTTLE_KEY = "email.throttled_until"
Progress = Callable[[int], None]


class EmailSender:
    """Sends every email delivery that is due, in batches, until none is left or it is told to stop."""

    name = "send-email"
    role = "worker"

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
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="send-email") as wire:
                self._drain(transport, wire, stop, counts)
        finally:
            transport.close()
        return dict(counts)

    def _drain(
        self, transport: Transport, wire: ThreadPoolExecutor, stop: Callable[[], bool], counts: Counter[str]
    ) -> None:
        sending: tuple[Future[SendReport], list[Result]] | None = None
        extended = time.monotonic()
        while True:
            claims = [] if stop() else self.outbox.claim("email", self.claim_size, self.clock())
            messages, cancelled = self.composer.compose(claims, self.clock()) if claims else ([], [])
            if sending is not None:
                throttled_until = self._record(sending[0].result(), sending[1], counts)
                sending = None
                if throttled_until is not None:
                    self._release(claims, throttled_until, counts)
                    return
            if not claims:
                return
            sending = (wire.submit(transport.send, messages, self._handoff, stop), cancelled)
            if time.monotonic() - extended > self.outbox.lease.total_seconds() / 4:
                self.outbox.extend(self.clock())
                extended = time.monotonic()

    def _record(self, report: SendReport, cancelled: list[Result], counts: Counter[str]) -> datetime | None:
        results = cancelled + report.results
        self.outbox.finish(results, self.clock())
        if report.suppress:
            self._suppress(report.suppress)
        if report.throttled_until:
            with self.db.write() as conn:
                meta.put(conn, THROTTLE_KEY, report.throttled_until.isoformat())
        counts.update(r.outcome.value for r in results)
        self.progress(len(results))
        return report.throttled_until

    def _release(self, claims: Sequence[Claim], until: datetime, counts: Counter[str]) -> None:
        """Give back a batch claimed while the server started throttling; it was never tried."""
        self.outbox.finish([Result(c, Outcome.REQUEUE, "mail server throttling", until) for c in claims], self.clock())
        counts.update({Outcome.REQUEUE.value: len(claims)} if claims else {})

    def _handoff(self, messages: Sequence[Outgoing]) -> set[int]:
        return self.outbox.handoff([m.claim for m in messages], self.clock())

    def _suppress(self, addresses: list[tuple[str, str]]) -> None:
        now = self.clock()
        with self.db.write() as conn:
            for address, reason in addresses:
                subscriber_store.suppress(conn, address, reason, now)
                log.warning("suppressed %s: %s", address, reason)
