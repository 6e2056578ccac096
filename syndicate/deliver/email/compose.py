"""Compose the letter for each claimed delivery: its edition's template and what is one recipient's own.

Nothing is rendered here: the edition was rendered when it was planned. A
recipient who left (unsubscribed, bounced, removed) since then is not mailed;
the delivery is cancelled instead. Editions are read once per send run: a
:class:`ComposeRun` (from :meth:`Composer.run`) holds them, and they go with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from syndicate.deliver.email.transports import Batch
from syndicate.mail import (
    CONFIRM,
    DATE,
    MESSAGE_ID,
    PREFERENCES,
    TO,
    UNSUBSCRIBE,
    Letter,
    MessageTemplate,
    Signing,
    press,
)
from syndicate.outbox import Claim, Outcome, Result
from syndicate.store import editions as edition_store
from syndicate.store.db import Database
from syndicate.subscribers import Status
from syndicate.tokens import Secrets, confirm_expiry
from syndicate.verp import ReturnPath


@dataclass(frozen=True)
class Composer:
    """Makes each recipient's letter from an edition's template: address, Message-ID, date, signed links."""

    db: Database
    secrets: Secrets
    sender: str
    signer: Signing | None = None  # signs what :meth:`personalise` finishes; a transport signs what it sends
    return_path: ReturnPath | None = None  # each letter's envelope sender names its delivery, signed

    def envelope_sender(self, delivery_id: int) -> str:
        """The MAIL FROM of a delivery's message: its signed return path, or the sender."""
        return self.return_path.sender(delivery_id) if self.return_path is not None else self.sender

    def run(self) -> ComposeRun:
        """The composing of one send run: editions are read once for it and dropped with it."""
        return ComposeRun(self)

    def personalise(
        self, template: MessageTemplate, message_id: str, subscriber_id: int, email: str, now: datetime
    ) -> bytes:
        """The finished message for one recipient, pressed as the sending presses it (DKIM too)."""
        values = self.values(template, message_id, subscriber_id, email, now, format_datetime(now).encode())
        return press(template, values, self.signer)

    def values(
        self, template: MessageTemplate, message_id: str, subscriber_id: int, email: str, now: datetime, date: bytes
    ) -> dict[bytes, bytes]:
        """What is one recipient's own in a message: address, Message-ID, ``date``, signed links."""
        values = {TO: email.encode(), MESSAGE_ID: message_id.encode(), DATE: date}
        slots = template.slots
        if UNSUBSCRIBE in slots or PREFERENCES in slots:
            values[UNSUBSCRIBE] = values[PREFERENCES] = self.secrets.sign("unsubscribe", subscriber_id, email).encode()
        if CONFIRM in slots:
            values[CONFIRM] = self.secrets.sign("confirm", subscriber_id, email, confirm_expiry(now)).encode()
        return values


class ComposeRun:
    """One send run's composing: the editions its claims name, each read once, by id."""

    def __init__(self, composer: Composer) -> None:
        self.composer = composer
        self.templates: dict[int, MessageTemplate] = {}  # a letter names its edition's template by the edition id
        self.kinds: dict[int, str] = {}
        self._dated: tuple[datetime | None, bytes] = (None, b"")

    def compose(self, claims: Sequence[Claim], now: datetime) -> tuple[Batch, list[Result]]:
        """Letters for the claims whose recipient still wants them; cancellations for the rest.

        The claims were made ``with_recipient``: each brings its subscriber's address and status.
        """
        self._read({c.source_id for c in claims} - self.templates.keys())
        composer, date = self.composer, self._date(now)
        letters: list[Letter] = []
        held: dict[int, Claim] = {}
        cancelled: list[Result] = []
        for claim in claims:
            reason = self._reason_not_to_send(claim)
            if reason is not None or claim.recipient is None:
                cancelled.append(Result(claim, Outcome.CANCELLED, reason))
                continue
            email = claim.recipient.email
            values = composer.values(
                self.templates[claim.source_id], f"syndicate.{claim.id}", int(claim.target), email, now, date
            )
            letters.append(Letter(claim.id, composer.envelope_sender(claim.id), email, claim.source_id, values))
            held[claim.id] = claim
        return Batch(letters, held, self.templates), cancelled

    def _read(self, editions: set[int]) -> None:
        """Read the editions not seen yet in this run (one that is gone stays unknown: its claims are cancelled)."""
        if not editions:
            return
        with self.composer.db.read() as conn:
            for edition_id in editions:
                edition = edition_store.get(conn, edition_id)
                if edition is not None:
                    self.templates[edition_id] = MessageTemplate.from_bytes(edition.message)
                    self.kinds[edition_id] = edition.kind

    def _date(self, now: datetime) -> bytes:
        """The Date header for ``now``, made once per batch (every message of it is sent then)."""
        if self._dated[0] != now:
            self._dated = (now, format_datetime(now).encode())
        return self._dated[1]

    def _reason_not_to_send(self, claim: Claim) -> str | None:
        if claim.source_id not in self.templates:
            return "edition no longer exists"
        recipient = claim.recipient
        if recipient is None:
            return "subscriber removed"
        wanted = Status.PENDING if self.kinds[claim.source_id] == "confirmation" else Status.ACTIVE
        if recipient.status != wanted:
            return f"subscriber is {recipient.status} now"
        return None
