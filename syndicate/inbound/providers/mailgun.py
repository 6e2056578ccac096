"""Mailgun's event webhooks, verified as Mailgun signs them.

https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/#securing-webhooks:
``signature.signature`` is the hex HMAC-SHA256, under the account's HTTP
webhook signing key, of ``signature.timestamp`` followed by
``signature.token``. A timestamp further than :data:`~.common.SKEW` from now
is refused, so a captured request cannot be replayed later. The signature
covers the timestamp and token, not the event: the event is stored under
its signed token, so a captured signature sent again with another event is
the first report and changes nothing.

Events read: ``failed`` (``severity`` permanent: hard; temporary: soft),
``complained``, ``unsubscribed``; the rest (``delivered``, ``opened``...)
say nothing bad. The message is named by the Message-ID syndicate gave it,
which Mailgun keeps in ``message.headers``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

from syndicate.inbound.classify import Finding, Kind, about_the_address
from syndicate.inbound.providers.common import Event, Forged, Read, delivery_in, fresh, json_object, mapping, text


class Mailgun:
    """Checks requests against the account's webhook signing key."""

    def __init__(self, key: str) -> None:
        self.key = key.encode()

    def __call__(self, body: bytes, headers: Mapping[str, str], now: datetime) -> list[Event]:
        payload = json_object(body, "a Mailgun event")
        try:
            signature = payload["signature"]
            timestamp, token, given = str(signature["timestamp"]), str(signature["token"]), str(signature["signature"])
        except (KeyError, TypeError) as exc:
            raise Forged(f"not a Mailgun event: no {exc}") from exc
        expected = hmac.new(self.key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given.lower()):
            raise Forged("the signature does not match")
        fresh(timestamp, now)
        if not isinstance(payload.get("event-data"), dict):
            raise Forged("event-data is not an object")
        return [Event(token, body)]


def read(raw: bytes) -> Read:
    """A stored, verified event as a finding."""
    event = mapping(json_object(raw, "a Mailgun event").get("event-data"))
    name = str(event.get("event", ""))
    status = mapping(event.get("delivery-status"))
    detail = text(" ".join(str(status.get(k, "")) for k in ("code", "message", "description") if status.get(k)))
    code = str(status.get("enhanced-code", "") or "")
    if name == "failed":  # permanent, but about us or the message (a 5.7.1 spam block): soft, as for a DSN
        permanent = event.get("severity") == "permanent"
        kind = Kind.HARD if permanent and (not code or about_the_address(code)) else Kind.SOFT
    else:
        kind = {"complained": Kind.COMPLAINT, "unsubscribed": Kind.UNSUBSCRIBE}.get(name, Kind.DELIVERED)
    headers = mapping(mapping(event.get("message")).get("headers"))
    recipient = str(event.get("recipient", "")).lower()
    finding = Finding(kind, recipient, code, detail or name, sender=recipient)
    return Read(finding, delivery_in(headers.get("message-id")))
