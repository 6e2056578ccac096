"""The stage that drains the email outbox: claim, compose, send, record, until nothing is due.

One loop keeps the transport fed: while messages are on the wire, the next
batch is claimed and composed, and finished ones are recorded in batches, so
the connections never wait for the database (with the SMTP sessions in a
process of their own, the two run on two cores).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from syndicate import outbox
from syndicate.deliver.email.compose import Composer, ComposeRun
from syndicate.deliver.email.transports import SendReport, Transport
from syndicate.outbox import Channel, Outbox, Result
from syndicate.progress import Progress
from syndicate.roles import Role
from syndicate.store import meta
from syndicate.store import subscribers as subscriber_store
from syndicate.store.db import Database

log = logging.getLogger(__name__)

THROTTLE_KEY = "email.throttled_until"
PROGRESS_FROM = 100  # a bar for a long send; a handful of mails needs none


@dataclass
class EmailSender:
    """Sends every email delivery that is due, in batches, until none is left or it is told to stop."""

    name = "send-email"
    role = Role.WORKER

    db: Database
    outbox: Outbox
    composer: Composer
    transport: Callable[[], Transport]  # a new one per run: connections live as long as the run
    clock: Callable[[], datetime]
    claim_size: int
    _advance: Callable[[int], None] = field(default=lambda n: None, init=False, repr=False)

    def run(self, now: datetime, stop: Callable[[], bool], progress: Progress | None = None) -> dict[str, int]:
        """Send what is due; return how each delivery ended (``progress``: a bar, when a person watches)."""
        with self.db.read() as conn:
            waiting = meta.get(conn, THROTTLE_KEY)
        if waiting and datetime.fromisoformat(waiting) > now:
            log.info("mail server asked us to wait until %s", waiting)
            return {"waiting": 1}
        counts: Counter[str] = Counter()
        transport = self.transport()
        composing = self.composer.run()  # editions are read once per run, not kept for the life of a daemon
        try:
            with self.outbox.draining(self.clock), self._bar(now, progress) as advance:
                self._advance = advance
                self._drain(transport, composing, stop, counts)
        finally:
            transport.close()
        return dict(counts)

    def _bar(self, now: datetime, progress: Progress | None) -> AbstractContextManager[Callable[[int], None]]:
        if progress is None:
            return nullcontext(lambda n: None)
        with self.db.read() as conn:
            due = outbox.backlog(conn, now).get(Channel.EMAIL, 0)
        return progress(due) if due >= PROGRESS_FROM else nullcontext(lambda n: None)

    def _drain(
        self, transport: Transport, composing: ComposeRun, stop: Callable[[], bool], counts: Counter[str]
    ) -> None:
        done: list[Result] = []
        exhausted = False
        while True:
            going = not stop()
            if going and not exhausted and transport.wants_more():
                claims = self.outbox.claim(
                    Channel.EMAIL, self.claim_size, self.clock(), with_created=False, with_recipient=True
                )
                exhausted = not claims
                batch, cancelled = composing.compose(claims, self.clock())
                done += cancelled
                transport.feed(batch)
            hungry = going and not exhausted and transport.wants_more()
            report = transport.collect(going, wait=0.0 if hungry else 0.05)
            done += report.results
            self._count(report.recorded, counts)  # the wire recorded these as each one ended
            throttled_until = self._note(report)
            if done:
                self._record(done, counts)
                done = []
            if throttled_until is not None or report.paused:
                exhausted = True  # claim nothing more; what is on the wire comes back as it ends
            if transport.idle() and (exhausted or not going):
                self._record(done, counts)
                return
            self.outbox.keep_alive(self.clock())

    def _note(self, report: SendReport) -> datetime | None:
        """Suppress what must never be mailed again; remember a throttling server."""
        if report.suppress:
            self._suppress(report.suppress)
        if report.throttled_until:
            with self.db.write() as conn:
                meta.put(conn, THROTTLE_KEY, report.throttled_until.isoformat())
        return report.throttled_until

    def _record(self, results: list[Result], counts: Counter[str]) -> None:
        if not results:
            return
        self.outbox.finish(results, self.clock())
        self._count(results, counts)

    def _count(self, results: list[Result], counts: Counter[str]) -> None:
        if results:
            counts.update(r.outcome.value for r in results)
            self._advance(len(results))

    def _suppress(self, addresses: list[tuple[str, str]]) -> None:
        now = self.clock()
        with self.db.write() as conn:
            for address, reason in addresses:
                subscriber_store.suppress(conn, address, reason, now)
                log.warning("suppressed %s: %s", address, reason)
