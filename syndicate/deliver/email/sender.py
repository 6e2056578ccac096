"""The stage that drains the email outbox: claim, compose, send, record, until nothing is due.

One loop keeps the transport fed: while messages are on the wire, the next
batch is claimed and composed, and finished ones are recorded in batches, so
the connections never wait for the database (with the SMTP sessions in a
process of their own, the two run on two cores).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime

from syndicate.deliver.email.compose import RECIPIENT, Composer
from syndicate.deliver.email.transports import Outgoing, SendReport, Transport
from syndicate.outbox import Outbox, Result
from syndicate.outbox import backlog as outbox_backlog
from syndicate.store import meta
from syndicate.store import subscribers as subscriber_store
from syndicate.store.db import Database

log = logging.getLogger(__name__)

THROTTLE_KEY = "email.throttled_until"
PROGRESS_FROM = 100  # a bar for a long send; a handful of mails needs none
Progress = Callable[[int], AbstractContextManager[Callable[[int], None]]]  # given the total, yields "advance by n"


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
        self.progress: Progress | None = None  # a progress bar, when a person watches (set by the CLI)
        self._advance: Callable[[int], None] = lambda n: None

    def run(self, now: datetime, stop: Callable[[], bool]) -> dict[str, int]:
        """Send what is due; return how each delivery ended."""
        with self.db.read() as conn:
            waiting = meta.get(conn, THROTTLE_KEY)
        if waiting and datetime.fromisoformat(waiting) > now:
            log.info("mail server asked us to wait until %s", waiting)
            return {"waiting": 1}
        counts: Counter[str] = Counter()
        transport = self.transport()
        self.composer.forget()  # editions are cached for one run, not for the life of a daemon
        try:
            with self._bar(now) as advance:
                self._advance = advance
                self._drain(transport, stop, counts)
        except Exception:
            self.outbox.abandon(self.clock())
            raise
        finally:
            transport.close()
            self.outbox.release()
        return dict(counts)

    def _bar(self, now: datetime) -> AbstractContextManager[Callable[[int], None]]:
        if self.progress is None:
            return nullcontext(lambda n: None)
        with self.db.read() as conn:
            due = outbox_backlog(conn, now).get("email", 0)
        return self.progress(due) if due >= PROGRESS_FROM else nullcontext(lambda n: None)

    def _drain(self, transport: Transport, stop: Callable[[], bool], counts: Counter[str]) -> None:
        done: list[Result] = []
        exhausted = False
        extended = time.monotonic()
        while True:
            going = not stop()
            if going and not exhausted and transport.wants_more():
                claims = self.outbox.claim("email", self.claim_size, self.clock(), with_created=False, also=RECIPIENT)
                exhausted = not claims
                messages, cancelled = self.composer.compose(claims, self.clock()) if claims else ([], [])
                done += cancelled
                transport.feed(messages, self._handoff)
            hungry = going and not exhausted and transport.wants_more()
            report = transport.collect(going, wait=0.0 if hungry else 0.05)
            done += report.results
            throttled_until = self._note(report)
            if done:  # recorded as each chunk ends: a crash leaves unknown only what is on the wire
                self._record(done, counts)
                done = []
            if throttled_until is not None:
                exhausted = True  # claim nothing more; what is on the wire comes back as it ends
            if transport.idle() and (exhausted or not going):
                self._record(done, counts)
                return
            if time.monotonic() - extended > self.outbox.lease.total_seconds() / 4:
                self.outbox.extend(self.clock())
                extended = time.monotonic()

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
        counts.update(r.outcome.value for r in results)
        self._advance(len(results))

    def _handoff(self, messages: Sequence[Outgoing]) -> set[int]:
        return self.outbox.handoff([m.claim for m in messages], self.clock())

    def _suppress(self, addresses: list[tuple[str, str]]) -> None:
        now = self.clock()
        with self.db.write() as conn:
            for address, reason in addresses:
                subscriber_store.suppress(conn, address, reason, now)
                log.warning("suppressed %s: %s", address, reason)
