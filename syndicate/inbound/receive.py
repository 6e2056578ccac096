"""The one path every report takes: stored raw (committed), then classified and acted on.

The listener, the mailbox poller and (later) the providers' webhooks all
call :meth:`Receiver.store` and then :meth:`Receiver.process`; a report
stored but not processed (a crash in between) is processed by the next tick
(:class:`HearBack`). Processing a report again changes nothing it changed
already.

What a report may change, and only when it names its delivery through a
signed return path (:mod:`syndicate.inbound.verp`), so a forged one cannot
touch anyone:

- a hard bounce suppresses the address at once (the subscriber is *bounced*);
- soft bounces suppress it after ``[inbound] soft_limit`` within
  ``soft_window_days``, counted since its last success;
- a complaint unsubscribes and suppresses it (*complained*);
- a mailto unsubscribe (its signed token, or its sender being a subscriber)
  unsubscribes at once; nothing is sent back.

Each change is kept with its cause and report in ``subscriber_changes``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from syndicate.config import Config
from syndicate.inbound.classify import Finding, Kind, classify
from syndicate.outbox import table as outbox_table
from syndicate.roles import Role
from syndicate.store import inbound as store
from syndicate.store import subscribers as subscriber_store
from syndicate.store.db import Database
from syndicate.subscribers import Status
from syndicate.tokens import BadToken, Secrets
from syndicate.verp import ReturnPath

log = logging.getLogger(__name__)

BATCH = 200  # reports processed per transaction by the stage
ACTS_ON_DELIVERY = (Kind.HARD, Kind.SOFT, Kind.COMPLAINT)


@dataclass(frozen=True)
class Addresses:
    """Which addresses reports come to: the signed return path, the unsubscribe address, any others."""

    return_path: ReturnPath | None
    unsubscribe: str
    others: frozenset[str]

    def accepts(self, address: str) -> bool:
        """Whether mail to ``address`` is ours to take (everything else is refused)."""
        address = address.strip("<>").lower()
        if address == self.unsubscribe or address in self.others:
            return True
        if self.return_path is None:
            return False
        return address == self.return_path.address.lower() or self.return_path.delivery(address) is not None


class Receiver:
    """Stores reports and acts on them."""

    def __init__(self, config: Config, db: Database, secrets: Secrets, clock: Callable[[], datetime]) -> None:
        self.db, self.secrets, self.clock = db, secrets, clock
        keys = (secrets.current, *secrets.previous)
        return_path = ReturnPath(config.email.return_path, keys) if config.email.return_path else None
        self.addresses = Addresses(
            return_path, config.unsubscribe_address.lower(), frozenset(a.lower() for a in config.inbound.addresses)
        )
        self.soft_limit = config.inbound.soft_limit
        self.soft_window = timedelta(days=config.inbound.soft_window_days)

    def store(self, raw: bytes, source: str, envelope_from: str, envelope_to: Sequence[str]) -> tuple[int, bool]:
        """Commit a report; return its id and whether it is new (the same bytes again: the first one's id)."""
        with self.db.write() as conn:
            return store.add(conn, raw, source, envelope_from, envelope_to, self.clock())

    def process(self, report_id: int, again: bool = False) -> str:
        """Classify report ``report_id`` and act on it; return what it did (``again``: even if it was processed)."""
        with self.db.write() as conn:
            return self._process_in(conn, report_id, again)

    def _process_in(self, conn: Connection, report_id: int, again: bool) -> str:
        report = store.get(conn, report_id, for_update=True)
        if report is None:
            raise LookupError(f"no report {report_id}")
        if report.processed_at is not None and not again:
            return report.action or ""
        recipients = [a.strip() for a in report.envelope_to.split(",") if a.strip()]
        to_unsubscribe = any(a.strip("<>").lower() == self.addresses.unsubscribe for a in recipients)
        finding = classify(report.raw, to_unsubscribe)
        acting = _Acting(self, conn, report_id, finding, self.clock())
        return acting.act(recipients, report.raw, report.envelope_from)

    def process_waiting(self, stop: Callable[[], bool] = lambda: False) -> Counter[str]:
        """Process every stored report not processed yet, a batch per transaction; return how many.

        Each report is processed under a savepoint of its own: one that fails is rolled back
        alone, logged, and kept for ``syndicate inbound reprocess``.
        """
        done: Counter[str] = Counter()
        while not stop():
            failed = 0
            with self.db.write() as conn:
                waiting = store.unprocessed(conn, BATCH, for_update=True)
                for report_id in waiting:
                    try:
                        with conn.begin_nested():
                            self._process_in(conn, report_id, again=False)
                        done["processed"] += 1
                    except Exception:
                        log.exception("report %d could not be processed (kept: `inbound reprocess`)", report_id)
                        failed += 1
            done["failed"] += failed
            if len(waiting) < BATCH or failed:
                break
        return done


class _Acting:
    """Acting on one report, inside its transaction."""

    def __init__(self, receiver: Receiver, conn: Connection, report_id: int, finding: Finding, now: datetime) -> None:
        self.receiver, self.conn, self.report_id, self.finding, self.now = receiver, conn, report_id, finding, now
        self.delivery_id: int | None = None
        self.subscriber_id: int | None = None
        self.address = finding.recipient

    def act(self, recipients: Sequence[str], raw: bytes, envelope_from: str) -> str:
        kind = self.finding.kind
        if kind in ACTS_ON_DELIVERY:
            action = self._bounce_or_complaint(recipients, raw)
        elif kind == Kind.UNSUBSCRIBE:
            action = self._unsubscribe(envelope_from)
        elif kind == Kind.UNKNOWN:
            action = "not understood: kept for the operator"
        else:
            action = f"ignored ({kind})"
        self._record(action)
        log.info("report %d: %s: %s", self.report_id, kind, action)
        return action

    def _record(self, action: str) -> None:
        finding = self.finding
        store.record(
            self.conn, self.report_id, kind=finding.kind.value, delivery_id=self.delivery_id,
            subscriber_id=self.subscriber_id, address=self.address, status=finding.status,
            detail=finding.detail, action=action, now=self.now,
        )  # fmt: skip

    def _named_delivery(self, recipients: Sequence[str], raw: bytes) -> tuple[int | None, bool]:
        """The delivery the report names by a signed return path (its envelope, else its text); whether forged."""
        return_path = self.receiver.addresses.return_path
        if return_path is None:
            return None, False
        forged = False
        for address in recipients:
            delivery = return_path.delivery(address)
            if delivery is not None:
                return delivery, False
            forged = forged or return_path.shaped(address)
        delivery, forged_in_text = return_path.find(raw.decode("latin-1"))
        return delivery, forged or (delivery is None and forged_in_text)

    def _bounce_or_complaint(self, recipients: Sequence[str], raw: bytes) -> str:
        delivery_id, forged = self._named_delivery(recipients, raw)
        if delivery_id is None:
            if forged:
                log.warning("report %d names a delivery with a forged return path: nothing changed", self.report_id)
                return "forged return path: nothing changed"
            return "names no delivery of ours: kept for the operator"
        row = outbox_table.mail_delivery(self.conn, delivery_id)
        if row is None:
            return f"delivery {delivery_id} is not in the outbox: nothing changed"
        self.delivery_id = delivery_id
        subscriber = subscriber_store.by_id(self.conn, int(str(row.target)))
        if subscriber is None:
            return "its subscriber was removed: nothing changed"
        self.subscriber_id, self.address = subscriber.id, subscriber.email
        kind, finding = self.finding.kind, self.finding
        if kind == Kind.COMPLAINT:
            return self._change(subscriber, Status.COMPLAINED, f"complaint ({finding.detail or 'abuse'})")
        if kind == Kind.HARD:
            return self._change(subscriber, Status.BOUNCED, f"hard bounce {finding.status or ''}".strip())
        self._record("soft bounce")  # counted below with the others
        bounced = store.bounced_deliveries(self.conn, subscriber.id)
        last_success = outbox_table.last_sent(self.conn, str(subscriber.id), bounced)
        since = self.now - self.receiver.soft_window
        count = store.soft_bounces(self.conn, subscriber.id, since, last_success)
        limit = self.receiver.soft_limit
        if count >= limit:
            return self._change(
                subscriber, Status.BOUNCED, f"{count} soft bounces within {self.receiver.soft_window.days} days"
            )
        return f"soft bounce {count} of {limit}"

    def _unsubscribe(self, envelope_from: str) -> str:
        finding = self.finding
        subscriber = None
        if finding.token:
            try:
                subscriber_id, _, _ = self.receiver.secrets.read(finding.token, "unsubscribe")
                subscriber = subscriber_store.by_id(self.conn, subscriber_id)
                if subscriber is None:
                    raise BadToken("no such subscriber")
                self.receiver.secrets.verify(finding.token, "unsubscribe", subscriber.email, self.now)
            except BadToken as exc:
                log.warning("report %d: an unsubscribe with a bad token (%s): nothing changed", self.report_id, exc)
                return f"bad unsubscribe token ({exc}): nothing changed"
        else:
            for sender in (finding.sender, envelope_from.strip("<>").lower()):
                subscriber = subscriber_store.by_email(self.conn, sender) if sender else None
                if subscriber is not None:
                    break
        if subscriber is None:
            return "no subscriber matches its token or sender: nothing changed"
        self.subscriber_id, self.address = subscriber.id, subscriber.email
        if subscriber.status in (Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED):
            return f"already {subscriber.status}"
        subscriber_store.set_status(self.conn, subscriber.id, Status.UNSUBSCRIBED, self.now)
        store.change(
            self.conn, subscriber.id, Status.UNSUBSCRIBED.value, "mailto unsubscribe", self.report_id, self.now
        )
        return "unsubscribed"

    def _change(self, subscriber: subscriber_store.Subscriber, status: Status, cause: str) -> str:
        if subscriber.status == status:
            return f"already {status}"
        reason = f"{cause} (report {self.report_id})"
        if status == Status.COMPLAINED:
            subscriber_store.set_status(self.conn, subscriber.id, Status.UNSUBSCRIBED, self.now)
        subscriber_store.suppress(self.conn, subscriber.email, reason, self.now, status)
        store.change(self.conn, subscriber.id, status.value, cause, self.report_id, self.now)
        log.warning("%s is %s now: %s", subscriber.email, status, reason)
        return f"{status}: {cause}"


@dataclass
class HearBack:
    """The tick's stage: read the mailbox, if one is set, and process every report not processed yet."""

    receiver: Receiver
    poll: Callable[[], int] | None = None
    name: str = "hear-back"
    role: Role = Role.WORKER

    def run(self, now: datetime, stop: Callable[[], bool]) -> dict[str, int]:
        """Read new mail, then process what waits."""
        counts: dict[str, int] = {}
        if self.poll is not None:
            counts["read"] = self.poll()
        counts.update(self.receiver.process_waiting(stop))
        return {k: v for k, v in counts.items() if v}
