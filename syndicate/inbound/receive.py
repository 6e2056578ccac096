"""The one path every report takes: stored raw (committed), then classified and acted on.

The listener, the mailbox poller and the providers' webhooks all
call :meth:`Receiver.store` and then :meth:`Receiver.process`; a report
stored but not processed (a crash in between) is processed by the next tick
(:class:`HearBack`). Processing a report again changes nothing it changed
already.

What a report may change, and only when it names its delivery through a
signed return path (:mod:`syndicate.verp`) or came through a provider's
verified webhook (:mod:`syndicate.inbound.providers`), so a forged one cannot
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

import contextlib
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from syndicate.config import Config
from syndicate.inbound import providers
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

    def store(
        self, raw: bytes, source: str, envelope_from: str, envelope_to: Sequence[str], digest: str | None = None
    ) -> tuple[int, bool]:
        """Commit a report; return its id and whether it is new (the same report again: the first one's id).

        ``digest`` keys it (a provider's event id); by default, the digest of its bytes.
        """
        with self.db.write() as conn:
            return store.add(conn, raw, source, envelope_from, envelope_to, self.clock(), digest)

    def store_many(self, source: str, reports: Sequence[tuple[bytes, str, Sequence[str], str | None]]) -> list[int]:
        """Commit reports of ``source`` (bytes, envelope sender, recipients, digest or ``None``) in one
        transaction; return their ids (a mailbox's slice, a provider's batch of events)."""
        with self.db.write() as conn:
            now = self.clock()
            return [store.add(conn, raw, source, sender, to, now, digest)[0] for raw, sender, to, digest in reports]

    def process(self, report_id: int, again: bool = False) -> str:
        """Classify report ``report_id`` and act on it; return what it did (``again``: even if it was processed)."""
        with self.db.write() as conn:
            reports = store.take(conn, [report_id])
            if not reports:
                raise LookupError(f"no report {report_id}")
            if reports[0].processed_at is not None and not again:
                return reports[0].action or ""
            return _Batch(self, conn, self.clock()).run(reports)[report_id]

    def process_waiting(self, stop: Callable[[], bool] = lambda: False) -> Counter[str]:
        """Process every stored report not processed yet, a batch per transaction; return how many.

        A batch that fails is rolled back and its reports are processed one by one; one that
        fails alone is recorded as such (kept for ``syndicate inbound reprocess``), so it does
        not hold the others back on every tick.
        """
        done: Counter[str] = Counter()
        while not stop():
            try:
                with self.db.write() as conn:
                    reports = store.take(conn, limit=BATCH)
                    if reports:
                        _Batch(self, conn, self.clock()).run(reports)
            except Exception:
                log.exception("a batch of reports could not be processed; each is tried alone")
                done.update(self._one_by_one())
                break
            done["processed"] += len(reports)
            if len(reports) < BATCH:
                break
        return done

    def _one_by_one(self) -> Counter[str]:
        done: Counter[str] = Counter()
        with self.db.read() as conn:
            waiting = store.unprocessed(conn, BATCH)
        for report_id in waiting:
            try:
                self.process(report_id)
                done["processed"] += 1
            except SQLAlchemyError:
                raise  # the database, not the report: everything waits for the next tick
            except Exception as exc:
                log.exception("report %d could not be processed (kept: `inbound reprocess`)", report_id)
                with self.db.write() as conn:
                    store.record_many(conn, [{
                        "id": report_id, "kind": Kind.UNKNOWN.value, "delivery_id": None, "subscriber_id": None,
                        "address": None, "status": None, "detail": f"{type(exc).__name__}: {exc}"[:1000],
                        "action": "could not be processed: kept for the operator", "processed_at": self.clock(),
                    }])  # fmt: skip
                done["failed"] += 1
        return done


class _Item:
    """One report of a batch, as it is worked out."""

    __slots__ = ("action", "delivery_id", "finding", "forged", "recipients", "report", "subscriber")

    def __init__(self, report: store.Waiting, finding: Finding, recipients: list[str]) -> None:
        self.report, self.finding, self.recipients = report, finding, recipients
        self.delivery_id: int | None = None
        self.forged = False
        self.subscriber: subscriber_store.Subscriber | None = None
        self.action = ""


class _Batch:
    """Acting on a batch of reports in one transaction, in their order, with a few statements for the whole batch.

    What the batch needs is read at once (the deliveries the reports name, their subscribers,
    the bounce history of those with a soft bounce, their sent deliveries); the reports are
    then worked out in order against that, kept up to date as each one changes something, and
    what they change is written at once.
    """

    def __init__(self, receiver: Receiver, conn: Connection, now: datetime) -> None:
        self.receiver, self.conn, self.now = receiver, conn, now
        self.suppress: list[tuple[str, str, Status]] = []
        self.unsubscribe: list[int] = []
        self.changes: list[dict[str, Any]] = []

    def run(self, reports: Sequence[store.Waiting]) -> dict[int, str]:
        items = [self._read(report) for report in reports]
        targets = outbox_table.mail_targets(self.conn, {i.delivery_id for i in items if i.delivery_id is not None})
        wanted = set(targets.values()) | self._token_holders(items)
        people = subscriber_store.by_ids(self.conn, sorted(wanted))
        soft = {targets[i.delivery_id] for i in items if i.finding.kind == Kind.SOFT and i.delivery_id in targets}
        history = store.bounce_history(self.conn, sorted(soft))
        sent = outbox_table.sent_to(self.conn, sorted(soft))
        for item in items:
            item.action = self._act(item, targets, people, history, sent)
            log.info("report %d: %s: %s", item.report.id, item.finding.kind, item.action)
        self._write(items)
        return {item.report.id: item.action for item in items}

    def _read(self, report: store.Waiting) -> _Item:
        recipients = [a.strip() for a in report.envelope_to.split(",") if a.strip()]
        if report.source in providers.PROVIDERS:  # verified at the door: its delivery by Message-ID, or address
            finding, delivery = providers.read(report.source, report.raw)
            item = _Item(report, finding, recipients)
            if delivery is None and finding.kind in ACTS_ON_DELIVERY and finding.recipient:
                subscriber = subscriber_store.by_email(self.conn, finding.recipient)
                delivery = outbox_table.newest_mail_to(self.conn, subscriber.id) if subscriber else None
            item.delivery_id = delivery
            return item
        unsubscribe = self.receiver.addresses.unsubscribe
        finding = classify(report.raw, any(a.strip("<>").lower() == unsubscribe for a in recipients))
        item = _Item(report, finding, recipients)
        if finding.kind in ACTS_ON_DELIVERY:
            item.delivery_id, item.forged = self._named_delivery(recipients, report.raw)
        return item

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

    def _token_holders(self, items: list[_Item]) -> set[int]:
        holders = set()
        for item in items:
            if item.finding.kind == Kind.UNSUBSCRIBE and item.finding.token:
                with contextlib.suppress(BadToken):  # a bad one is said so when the item is worked out
                    holders.add(self.receiver.secrets.read(item.finding.token, "unsubscribe")[0])
        return holders

    def _act(self, item: _Item, targets: dict[int, int], people: dict[int, subscriber_store.Subscriber],
             history: dict[int, list[tuple[int, str, datetime]]], sent: dict[int, list[tuple[int, datetime | None]]]) -> str:  # fmt: skip
        kind = item.finding.kind
        if kind == Kind.UNSUBSCRIBE:
            return self._unsubscribe(item, people)
        if kind == Kind.UNKNOWN:
            return "not understood: kept for the operator"
        if kind not in ACTS_ON_DELIVERY:
            return f"ignored ({kind})"
        if item.delivery_id is None:
            if item.forged:
                log.warning("report %d names a delivery with a forged return path: nothing changed", item.report.id)
                return "forged return path: nothing changed"
            return "names no delivery of ours: kept for the operator"
        target = targets.get(item.delivery_id)
        if target is None:
            delivery, item.delivery_id = item.delivery_id, None
            return f"delivery {delivery} is not in the outbox: nothing changed"
        subscriber = item.subscriber = people.get(target)
        if subscriber is None:
            return "its subscriber was removed: nothing changed"
        finding = item.finding
        if kind == Kind.COMPLAINT:
            return self._change(item, people, Status.COMPLAINED, f"complaint ({finding.detail or 'abuse'})")
        if kind == Kind.HARD:
            history.setdefault(subscriber.id, []).append((item.delivery_id, "hard", self.now))
            return self._change(item, people, Status.BOUNCED, f"hard bounce {finding.status or ''}".strip())
        bounces = history.setdefault(subscriber.id, [])
        bounces.append((item.delivery_id, "soft", self.now))
        count = self._soft_count(bounces, sent.get(subscriber.id, []))
        limit = self.receiver.soft_limit
        if count >= limit:
            days = self.receiver.soft_window.days
            return self._change(item, people, Status.BOUNCED, f"{count} soft bounces within {days} days")
        return f"soft bounce {count} of {limit}"

    def _soft_count(self, bounces: list[tuple[int, str, datetime]], sent: list[tuple[int, datetime | None]]) -> int:
        """Deliveries that soft-bounced within the window since the last success (a sent delivery with no bounce)."""
        bounced = {delivery for delivery, _, _ in bounces}
        successes = [ended for delivery, ended in sent if delivery not in bounced and ended is not None]
        last = max(successes, default=None)
        since = self.now - self.receiver.soft_window
        return len({d for d, kind, at in bounces if kind == "soft" and at >= since and (last is None or at > last)})

    def _unsubscribe(self, item: _Item, people: dict[int, subscriber_store.Subscriber]) -> str:
        finding, report = item.finding, item.report
        subscriber = None
        if finding.token:
            try:
                subscriber_id, _, _ = self.receiver.secrets.read(finding.token, "unsubscribe")
                subscriber = people.get(subscriber_id)
                if subscriber is None:
                    raise BadToken("no such subscriber")
                self.receiver.secrets.verify(finding.token, "unsubscribe", subscriber.email, self.now)
            except BadToken as exc:
                log.warning("report %d: an unsubscribe with a bad token (%s): nothing changed", report.id, exc)
                return f"bad unsubscribe token ({exc}): nothing changed"
        else:
            for sender in (finding.sender, report.envelope_from.strip("<>").lower()):
                subscriber = subscriber_store.by_email(self.conn, sender) if sender else None
                if subscriber is not None:
                    subscriber = people.setdefault(subscriber.id, subscriber)
                    break
        if subscriber is None:
            return "no subscriber matches its token or sender: nothing changed"
        item.subscriber = subscriber
        if subscriber.status in (Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED):
            return f"already {subscriber.status}"
        people[subscriber.id] = dataclasses.replace(subscriber, status=Status.UNSUBSCRIBED)
        self.unsubscribe.append(subscriber.id)
        if item.delivery_id is None:  # the newsletter it answers: the newest that went to them
            item.delivery_id = outbox_table.newest_mail_to(self.conn, subscriber.id)
        how = (
            "mailto unsubscribe" if report.source not in providers.PROVIDERS else f"unsubscribe through {report.source}"
        )
        self._keep(subscriber.id, Status.UNSUBSCRIBED, how, report.id, item.delivery_id)
        return "unsubscribed"

    def _change(self, item: _Item, people: dict[int, subscriber_store.Subscriber], status: Status, cause: str) -> str:
        subscriber = item.subscriber
        assert subscriber is not None
        if subscriber.status == status:
            return f"already {status}"
        reason = f"{cause} (report {item.report.id})"
        if status == Status.COMPLAINED:
            self.unsubscribe.append(subscriber.id)
        self.suppress.append((subscriber.email, reason, status))
        people[subscriber.id] = dataclasses.replace(subscriber, status=status)
        self._keep(subscriber.id, status, cause, item.report.id, item.delivery_id)
        log.warning("%s is %s now: %s", subscriber.email, status, reason)
        return f"{status}: {cause}"

    def _keep(self, subscriber_id: int, status: Status, cause: str, report_id: int, delivery_id: int | None) -> None:
        self.changes.append(
            {
                "subscriber_id": subscriber_id,
                "status": status.value,
                "cause": cause,
                "report_id": report_id,
                "delivery_id": delivery_id,
                "at": self.now,
            }
        )

    def _write(self, items: list[_Item]) -> None:
        conn, now = self.conn, self.now
        if self.unsubscribe:
            subscriber_store.unsubscribe_many(conn, self.unsubscribe, now)
        if self.suppress:
            subscriber_store.suppress_many(conn, self.suppress, now)
        store.change_many(conn, self.changes)
        store.record_many(conn, [
            {
                "id": item.report.id, "kind": item.finding.kind.value, "delivery_id": item.delivery_id,
                "subscriber_id": item.subscriber.id if item.subscriber else None,
                "address": (item.subscriber.email if item.subscriber else item.finding.recipient) or None,
                "status": item.finding.status or None, "detail": item.finding.detail or None,
                "action": item.action, "processed_at": now,
            }
            for item in items
        ], )  # fmt: skip


@dataclass
class HearBack:
    """The tick's stage: read the mailboxes that are set, and process every report not processed yet."""

    receiver: Receiver
    mailboxes: Sequence[Callable[[], int]] = ()  # each reads new mail into the receiver, returning how many
    name: str = "hear-back"
    role: Role = Role.WORKER

    def run(self, now: datetime, stop: Callable[[], bool]) -> dict[str, int]:
        """Read new mail, then process what waits; a mailbox that cannot be read is tried again next tick."""
        counts: Counter[str] = Counter()
        for read in self.mailboxes:
            try:
                counts["read"] += read()
            except Exception as exc:  # a server down, a login refused: what came in before is stored
                counts["mailbox failed"] += 1
                log.warning("a mailbox could not be read (%s): %s; tried again next tick", read, exc)
        counts.update(self.receiver.process_waiting(stop))
        return {k: v for k, v in counts.items() if v}
