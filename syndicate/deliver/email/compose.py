"""Compose the message for each claimed delivery: its edition's template, filled in for one recipient.

Nothing is rendered here: the edition was rendered when it was planned. A
recipient who left (unsubscribed, bounced, removed) since then is not mailed;
the delivery is cancelled instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime

from syndicate.deliver.email.dkim import Signer
from syndicate.deliver.email.transports import Outgoing
from syndicate.outbox import Claim, Outcome, Result
from syndicate.render.email import CONFIRM, DATE, MESSAGE_ID, PREFERENCES, TO, UNSUBSCRIBE, MessageTemplate
from syndicate.store import editions as edition_store
from syndicate.store import subscribers as subscriber_store
from syndicate.store.db import Database
from syndicate.subscribers import Status
from syndicate.tokens import Secrets, confirm_expiry

# Read with each claim of a mail delivery: its subscriber's address and status (no second look-up).
RECIPIENT = subscriber_store.recipient_columns()


@dataclass
class Composer:
    """Fills edition templates for recipients; caches templates for the whole run."""

    db: Database
    secrets: Secrets
    sender: str
    signer: Signer | None = None
    _templates: dict[int, tuple[str, MessageTemplate]] = field(default_factory=dict)
    _dated: tuple[datetime | None, bytes] = (None, b"")

    def compose(self, claims: Sequence[Claim], now: datetime) -> tuple[list[Outgoing], list[Result]]:
        """Messages for the claims that still have a recipient; cancellations for the rest.

        The claims were made with :data:`RECIPIENT`: each brings its subscriber's address and status.
        """
        new = {c.source_id for c in claims} - self._templates.keys()
        if new:
            with self.db.read() as conn:
                for edition_id in new:
                    edition = edition_store.get(conn, edition_id)
                    if edition is not None:
                        self._templates[edition_id] = (edition.kind, MessageTemplate.from_bytes(edition.message))
        messages: list[Outgoing] = []
        cancelled: list[Result] = []
        for claim in claims:
            email, status = claim.also
            recipient = (email, status) if email is not None else None
            reason = self._reason_not_to_send(claim, recipient)
            if reason or recipient is None:
                cancelled.append(Result(claim, Outcome.CANCELLED, reason or "subscriber removed"))
                continue
            template = self._templates[claim.source_id][1]
            values = self.values(template, f"syndicate.{claim.id}", int(claim.target), recipient[0], now)
            messages.append(Outgoing(claim, self.sender, recipient[0], template, values, self.signer))
        return messages, cancelled

    def forget(self) -> None:
        """Drop the cached editions (a send run is over)."""
        self._templates.clear()

    def _date(self, now: datetime) -> bytes:
        """The Date header for ``now``, made once per batch (every message of it is sent then)."""
        if self._dated[0] != now:
            self._dated = (now, format_datetime(now).encode())
        return self._dated[1]

    def _reason_not_to_send(self, claim: Claim, recipient: tuple[str, str] | None) -> str | None:
        if claim.source_id not in self._templates:
            return "edition no longer exists"
        if recipient is None:
            return "subscriber removed"
        kind = self._templates[claim.source_id][0]
        wanted = Status.PENDING if kind == "confirmation" else Status.ACTIVE
        if recipient[1] != wanted:
            return f"subscriber is {recipient[1]} now"
        return None

    def personalise(
        self, template: MessageTemplate, message_id: str, subscriber_id: int, email: str, now: datetime
    ) -> bytes:
        """The finished message for one recipient: address, Message-ID, signed links, DKIM."""
        values = self.values(template, message_id, subscriber_id, email, now)
        data = template.fill(values)
        return self.signer.sign(data) if self.signer is not None else data

    def values(
        self, template: MessageTemplate, message_id: str, subscriber_id: int, email: str, now: datetime
    ) -> dict[bytes, bytes]:
        """What is one recipient's own in a message: address, Message-ID, date, signed links."""
        values = {TO: email.encode(), MESSAGE_ID: message_id.encode(), DATE: self._date(now)}
        slots = template.slots
        if UNSUBSCRIBE in slots or PREFERENCES in slots:
            values[UNSUBSCRIBE] = values[PREFERENCES] = self.secrets.sign("unsubscribe", subscriber_id, email).encode()
        if CONFIRM in slots:
            values[CONFIRM] = self.secrets.sign("confirm", subscriber_id, email, confirm_expiry(now)).encode()
        return values
