"""Postmark's webhooks, checked as Postmark secures them: HTTP Basic credentials.

https://postmarkapp.com/developer/webhooks/webhooks-overview: Postmark does
not sign its webhooks; it sends the credentials written in the webhook's URL
(``https://user:password@host/hooks/postmark``) as HTTP Basic authentication.
The credentials are compared in constant time; a request without them is
answered 401 (so a client that waits to be asked sends them), a wrong one is
refused and logged. Nothing in the request is dated, so a replay is stopped
by the event's key instead: the record type and Postmark's ``ID`` (a
subscription change, which has none, by its message, recipient and time).

Record types read (https://postmarkapp.com/developer/webhooks/bounce-webhook,
``spam-complaint-webhook``, ``subscription-change-webhook``): ``Bounce`` by its
``Type`` (``HardBounce``, ``BadEmailAddress``, ``ManuallyDeactivated``: hard;
``Transient``, ``SoftBounce``, ``DnsError``, ``Blocked``, ``DMARCPolicy``,
``SpamNotification``: soft; ``AutoResponder``: an auto-reply;
``Unsubscribe``: an unsubscribe), ``SpamComplaint`` (a complaint), and
``SubscriptionChange`` with ``SuppressSending`` for a ``ManualSuppression``
(the reader's own unsubscribe). Postmark names a message by its own
``MessageID``: the report is matched to the newest mail to its address.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from datetime import datetime

from syndicate.inbound.classify import STATUS, Finding, Kind
from syndicate.inbound.providers.common import Event, Forged, Read, delivery_in, event_key, json_object, text

BOUNCES = {
    "HardBounce": Kind.HARD,
    "BadEmailAddress": Kind.HARD,
    "ManuallyDeactivated": Kind.HARD,
    "Transient": Kind.SOFT,
    "SoftBounce": Kind.SOFT,
    "DnsError": Kind.SOFT,
    "Blocked": Kind.SOFT,
    "DMARCPolicy": Kind.SOFT,
    "SpamNotification": Kind.SOFT,
    "AutoResponder": Kind.AUTO_REPLY,
    "Unsubscribe": Kind.UNSUBSCRIBE,
    "SpamComplaint": Kind.COMPLAINT,
}


class Postmark:
    """Checks requests against the ``user:password`` written in the webhook's URL."""

    def __init__(self, credentials: str) -> None:
        if ":" not in credentials:
            raise ValueError("Postmark's webhook credentials are user:password")
        self.credentials = credentials.encode()

    def __call__(self, body: bytes, headers: Mapping[str, str], now: datetime) -> list[Event]:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not given:
            raise Forged("no credentials", status=401)
        try:
            presented = base64.b64decode(given.strip(), validate=True)
        except binascii.Error as exc:
            raise Forged("the credentials are not base64", status=401) from exc
        if not hmac.compare_digest(presented, self.credentials):
            raise Forged("the credentials do not match", status=401)
        event = json_object(body, "a Postmark webhook")
        record = str(event.get("RecordType", ""))
        key = f"{record}:{event['ID']}" if event.get("ID") not in (None, "") else f"{record}:{event_key(event)}"
        return [Event(key, body)]


def read(raw: bytes) -> Read:
    """A stored, verified record as a finding."""
    event = json_object(raw, "a Postmark webhook")
    record = str(event.get("RecordType", ""))
    details = text(" ".join(str(event.get(k) or "") for k in ("Details", "Description")))
    recipient = str(event.get("Email") or event.get("Recipient") or "").strip().lower()
    if record == "Bounce":
        kind = BOUNCES.get(str(event.get("Type", "")), Kind.UNKNOWN)
    elif record == "SpamComplaint":
        kind = Kind.COMPLAINT
    elif record == "SubscriptionChange":
        unsubscribed = event.get("SuppressSending") is True and event.get("SuppressionReason") == "ManualSuppression"
        kind = Kind.UNSUBSCRIBE if unsubscribed else Kind.DELIVERED
    else:
        kind = Kind.DELIVERED
    found = STATUS.search(details)
    finding = Finding(kind, recipient, found.group(0) if found else "", details or record, sender=recipient)
    return Read(finding, delivery_in(event.get("Content")))  # the bounce's dump, when Postmark was asked to keep it
