"""SendGrid's signed Event Webhook, verified as SendGrid signs it.

https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features:
the request carries ``X-Twilio-Email-Event-Webhook-Signature`` (base64 of an
ECDSA P-256 / SHA-256 signature, DER-encoded) and
``X-Twilio-Email-Event-Webhook-Timestamp``; what is signed is the timestamp
followed by the raw body. The verification key is the public key SendGrid
shows when signing is turned on (base64 of its DER form, or PEM). A
timestamp further than :data:`~.common.SKEW` from now is refused.

One request holds a JSON array of events; each is stored as a report of its
own under its ``sg_event_id``. Events read: ``bounce`` (``type`` bounce: hard
when its status is about the address; ``blocked``: soft), ``deferred`` (soft),
``dropped`` (SendGrid's own suppression list: as its reason says),
``spamreport`` (complaint), ``unsubscribe`` and ``group_unsubscribe``. The
message is named by ``smtp-id``, the Message-ID syndicate gave it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from syndicate.inbound.classify import STATUS, Finding, Kind, about_the_address
from syndicate.inbound.providers.common import Event, Forged, Read, delivery_in, event_key, fresh, json_object, text
from syndicate.text import json_value

SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
DROPPED = {  # a drop's reason, as SendGrid words it: what it knew of the address
    "bounced address": Kind.HARD,
    "invalid": Kind.HARD,
    "spam reporting address": Kind.COMPLAINT,
    "unsubscribed address": Kind.UNSUBSCRIBE,
}
KINDS = {
    "deferred": Kind.SOFT,
    "spamreport": Kind.COMPLAINT,
    "unsubscribe": Kind.UNSUBSCRIBE,
    "group_unsubscribe": Kind.UNSUBSCRIBE,
}


def public_key(text_key: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key, as it shows it (base64 DER) or as PEM; ``ValueError`` if it is neither."""
    try:
        if "BEGIN PUBLIC KEY" in text_key:
            key = serialization.load_pem_public_key(text_key.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode("".join(text_key.split()), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"not a SendGrid verification key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not a SendGrid verification key: not an elliptic-curve key")
    return key


class SendGrid:
    """Checks requests against the account's verification key."""

    def __init__(self, key: str) -> None:
        self.key = public_key(key)

    def __call__(self, body: bytes, headers: Mapping[str, str], now: datetime) -> list[Event]:
        timestamp, given = headers.get(TIMESTAMP, ""), headers.get(SIGNATURE, "")
        if not timestamp or not given:
            raise Forged("the request is not signed")
        try:
            self.key.verify(
                base64.b64decode(given, validate=True), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
            )
        except (InvalidSignature, binascii.Error, ValueError) as exc:
            raise Forged("the signature does not match") from exc
        fresh(timestamp, now)
        try:
            events = json_value(body)
        except ValueError as exc:
            raise Forged(f"not SendGrid events: {exc}") from exc
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise Forged("not SendGrid events: not a JSON array of objects")
        return [
            Event(str(e.get("sg_event_id") or event_key(e)), json.dumps(e, sort_keys=True).encode()) for e in events
        ]


def read(raw: bytes) -> Read:
    """A stored, verified event as a finding."""
    event = json_object(raw, "a SendGrid event")
    name = str(event.get("event", ""))
    reason = text(event.get("reason") or event.get("response"))
    found = STATUS.search(str(event.get("status", "")) + " " + reason)
    code = found.group(0) if found else ""
    if name == "bounce":  # "blocked": refused for who sent it (a spam block), not for the address
        about_address = event.get("type", "bounce") == "bounce" and (not code or about_the_address(code))
        kind = Kind.HARD if about_address else Kind.SOFT
    elif name == "dropped":
        kind = DROPPED.get(reason.lower(), Kind.SOFT)
    else:
        kind = KINDS.get(name, Kind.DELIVERED)
    recipient = str(event.get("email", "")).strip().lower()
    finding = Finding(kind, recipient, code, reason or name, sender=recipient)
    return Read(finding, delivery_in(event.get("smtp-id")))
