"""Reports from sending providers' event webhooks, verified as each provider documents, read into a Finding.

A provider that relays syndicate's mail also hears the bounces and
complaints, and posts them as JSON events. Each request is verified at the
door (:func:`verify`); a verified event is stored raw like any report, under
the provider's own event id, and read here by the one processing path
(:func:`read`). The event names its message by the Message-ID syndicate gave
it (``<syndicate.<delivery id>@host>``): the provider's signature, not a tag
in the address, is what makes that trustworthy.

Mailgun (https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/#securing-webhooks):
``signature.signature`` is the hex HMAC-SHA256, under the account's HTTP
webhook signing key, of ``signature.timestamp`` followed by
``signature.token``. A timestamp further than :data:`SKEW` from now is
refused, so a captured request cannot be replayed later. Events read:
``failed`` (``severity`` permanent: hard; temporary: soft), ``complained``,
``unsubscribed``; the rest (``delivered``, ``opened``...) say nothing bad.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime
from typing import Any

from syndicate.inbound.classify import Finding, Kind, about_the_address

SKEW = 300  # seconds a signed request's timestamp may be off
MESSAGE_ID = re.compile(r"syndicate\.([1-9][0-9]{0,18})@", re.ASCII)
PROVIDERS = ("mailgun",)


class Forged(Exception):
    """A webhook request whose signature does not hold (or is too old to be believed)."""


def verify(provider: str, body: bytes, key: str, now: datetime) -> tuple[str, dict[str, Any]]:
    """Check a request as ``provider`` signs it; return the key to store it under, and the event.

    Mailgun's signature covers its timestamp and token, not the event: the key is the
    signed token, so a captured signature sent again with another event within the skew is
    the same report as the first and changes nothing.
    """
    if provider != "mailgun":
        raise LookupError(provider)
    try:
        payload = json.loads(body)
        signature = payload["signature"]
        timestamp, token, given = str(signature["timestamp"]), str(signature["token"]), str(signature["signature"])
        event = payload["event-data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Forged(f"not a Mailgun event: {exc}") from exc
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise Forged("the signature does not match")
    if not timestamp.isdigit() or abs(now.timestamp() - int(timestamp)) > SKEW:
        raise Forged("the timestamp is too far from now")
    if not isinstance(event, dict):
        raise Forged("event-data is not an object")
    return token, event


def read(provider: str, raw: bytes) -> tuple[Finding, int | None]:
    """A stored, verified event as a finding, and the delivery it names (by its Message-ID)."""
    event = json.loads(raw)["event-data"]
    kind_of = {"complained": Kind.COMPLAINT, "unsubscribed": Kind.UNSUBSCRIBE}
    name = str(event.get("event", ""))
    status = event.get("delivery-status") or {}
    detail = " ".join(str(status.get(k, "")) for k in ("code", "message", "description") if status.get(k))
    code = str(status.get("enhanced-code", "") or "")
    if name == "failed":  # permanent, but about us or the message (a 5.7.1 spam block): soft, as for a DSN
        permanent = event.get("severity") == "permanent"
        kind = Kind.HARD if permanent and (not code or about_the_address(code)) else Kind.SOFT
    elif name in kind_of:
        kind = kind_of[name]
    else:
        kind = Kind.DELIVERED
    headers = (event.get("message") or {}).get("headers") or {}
    found = MESSAGE_ID.search(str(headers.get("message-id", "")))
    recipient = str(event.get("recipient", "")).lower()
    finding = Finding(kind, recipient, code, (detail or name)[:1000], sender=recipient)
    return finding, int(found.group(1)) if found else None
