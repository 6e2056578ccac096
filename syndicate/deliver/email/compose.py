"""Compose the message for each claimed delivery: its edition's template, filled in for one recipient.

Nothing is rendered here: the edition was rendered when it was planned. A
recipient who left (unsubscribed, bounced, removed) since then is not mailed;
the delivery is cancelled instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import dkim

from syndicate.config import DkimConfig
from syndicate.deliver.email.transports import Outgoing
from syndicate.outbox import Claim, Outcome, Result
from syndicate.render.email import CONFIRM, MESSAGE_ID, PREFERENCES, TO, UNSUBSCRIBE, MessageTemplate
from syndicate.store import editions as edition_store
from syndicate.store import subscribers as subscriber_store
from syndicate.store.db import Database
from syndicate.store.subscribers import Subscriber
from syndicate.subscribers import Status
from syndicate.tokens import Secrets, confirm_expiry

SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)


class Signer:
    """DKIM-signs a finished message; the signature covers both unsubscribe headers."""

    def __init__(self, settings: DkimConfig) -> None:
        assert settings.key_file is not None
        self.selector = settings.selector.encode()
        self.domain = settings.domain.encode()
        self.key = settings.key_file.read_bytes()

    def sign(self, message: bytes) -> bytes:
        """``message`` with a DKIM-Signature header in front."""
        headers = [h.encode() for h in SIGNED_HEADERS]
        signature: bytes = dkim.sign(message, self.selector, self.domain, self.key, include_headers=headers)
        return signature + message


@dataclass
class Composer:
    """Fills edition templates for recipients; caches templates for the whole run."""

    db: Database
    secrets: Secrets
    sender: str
    signer: Signer | None = None
    _templates: dict[int, tuple[str, MessageTemplate]] = field(default_factory=dict)

    def compose(self, claims: Sequence[Claim], now: datetime) -> tuple[list[Outgoing], list[Result]]:
        """Messages for the claims that still have a recipient; cancellations for the rest."""
        with self.db.read() as conn:
            for edition_id in {c.source_id for c in claims} - self._templates.keys():
                edition = edition_store.get(conn, edition_id)
                if edition is not None:
                    self._templates[edition_id] = (edition.kind, MessageTemplate.from_bytes(edition.message))
            people = subscriber_store.by_ids(conn, sorted({int(c.target) for c in claims}))
        messages: list[Outgoing] = []
        cancelled: list[Result] = []
        for claim in claims:
            subscriber = people.get(int(claim.target))
            reason = self._reason_not_to_send(claim, subscriber)
            if reason or subscriber is None:
                cancelled.append(Result(claim, Outcome.CANCELLED, reason or "subscriber removed"))
                continue
            messages.append(self._message(claim, subscriber, now))
        return messages, cancelled

    def _reason_not_to_send(self, claim: Claim, subscriber: Subscriber | None) -> str | None:
        if claim.source_id not in self._templates:
            return "edition no longer exists"
        if subscriber is None:
            return "subscriber removed"
        kind = self._templates[claim.source_id][0]
        wanted = Status.PENDING if kind == "confirmation" else Status.ACTIVE
        if subscriber.status != wanted:
            return f"subscriber is {subscriber.status} now"
        return None

    def _message(self, claim: Claim, subscriber: Subscriber, now: datetime) -> Outgoing:
        template = self._templates[claim.source_id][1]
        values = {
            TO: subscriber.email.encode(),
            MESSAGE_ID: f"syndicate.{claim.id}".encode(),
            UNSUBSCRIBE: self.secrets.sign("unsubscribe", subscriber.id, subscriber.email).encode(),
            PREFERENCES: self.secrets.sign("preferences", subscriber.id, subscriber.email).encode(),
            CONFIRM: self.secrets.sign("confirm", subscriber.id, subscriber.email, confirm_expiry(now)).encode(),
        }
        data = template.fill(values)
        if self.signer is not None:
            data = self.signer.sign(data)
        return Outgoing(claim, self.sender, subscriber.email, data)
