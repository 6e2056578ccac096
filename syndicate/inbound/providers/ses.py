"""Amazon SES notifications, delivered by Amazon SNS and verified as SNS signs them.

https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html:
each message names its ``TopicArn`` (only the topics in ``[inbound]
ses_topics`` are taken) and a ``SigningCertURL``, which must be an https
address at ``sns.<region>.amazonaws.com`` (nothing in a request can send
syndicate anywhere else); the certificate is fetched from there over verified
TLS, kept, and must be within its dates. ``Signature`` is base64 of an RSA
PKCS#1 v1.5 signature (``SignatureVersion`` 1: SHA-1; 2: SHA-256) of the
message's fields in a fixed order, each as ``name\\nvalue\\n``. A
``SubscriptionConfirmation`` for a configured topic is confirmed by fetching
its ``SubscribeURL`` (held to the same address rule); a ``Notification`` is
stored under its ``MessageId``, so SNS's retries are one report.

The notification's ``Message`` is SES's JSON
(https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html), read
for ``notificationType`` (or, through a configuration set, ``eventType``):
``Bounce`` (``Permanent``: hard when its status is about the address;
``Transient``: soft; ``Undetermined``: kept for the operator), ``Complaint``,
``DeliveryDelay`` (soft). SES gives its own Message-ID to what it sends; the
original one is looked for in ``mail.headers`` (sent when the identity
includes original headers), else the newest mail to the address is meant.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from email.utils import parseaddr
from typing import Any

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from syndicate.inbound.classify import Finding, Kind, about_the_address
from syndicate.inbound.providers.common import Event, Forged, Read, delivery_in, json_object, mapping, text
from syndicate.text import json_value

log = logging.getLogger(__name__)

SNS = re.compile(r"https://sns\.[a-z0-9-]{1,40}\.amazonaws\.com(\.cn)?/", re.ASCII)
NOTIFICATION = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERTIFICATE = 64 * 1024
KEPT_CERTIFICATES = 32


def fetch(url: str) -> bytes:
    """GET ``url`` over verified TLS, no redirects, at most :data:`MAX_CERTIFICATE` bytes."""
    with requests.get(url, timeout=10, allow_redirects=False, stream=True) as response:
        response.raise_for_status()
        body = response.raw.read(MAX_CERTIFICATE + 1, decode_content=True)
    if len(body) > MAX_CERTIFICATE:
        raise ValueError(f"{url} answered more than {MAX_CERTIFICATE} bytes")
    return bytes(body)


def canonical(message: Mapping[str, Any]) -> bytes:
    """The string SNS signs: the type's fields in order, each ``name\\nvalue\\n`` (Subject only when given)."""
    fields = NOTIFICATION if message.get("Type") == "Notification" else CONFIRMATION
    lines = []
    for name in fields:
        if name not in message:
            if name == "Subject":
                continue
            raise Forged(f"not an SNS message: no {name}")
        lines.append(f"{name}\n{message[name]}\n")
    return "".join(lines).encode()


class SES:
    """Checks SNS messages for the configured topics; confirms their subscriptions."""

    def __init__(
        self, topics: Collection[str], *, sns: re.Pattern[str] = SNS, get: Callable[[str], bytes] = fetch
    ) -> None:
        self.topics = frozenset(topics)
        self.sns = sns  # where certificates and subscriptions may be fetched from; tests name a loopback server
        self.get = get
        self.certificates: dict[str, x509.Certificate] = {}

    def __call__(self, body: bytes, headers: Mapping[str, str], now: datetime) -> list[Event]:
        message = json_object(body, "an SNS message")
        kind, topic = str(message.get("Type", "")), str(message.get("TopicArn", ""))
        if kind not in ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"):
            raise Forged(f"not an SNS message: type {kind!r}")
        if topic not in self.topics:
            raise Forged(f"topic {topic!r} is not in [inbound] ses_topics")
        self._check_signature(message, now)
        if kind == "Notification":
            return [Event(str(message.get("MessageId", "")), body)]
        if kind == "SubscriptionConfirmation":
            url = str(message.get("SubscribeURL", ""))
            if not self.sns.match(url):
                raise Forged(f"the SubscribeURL is not at Amazon SNS: {url[:200]!r}")
            self.get(url)
            log.warning("subscribed to SNS topic %s: its SES notifications are taken from now on", topic)
        else:
            log.warning("SNS says the subscription to %s has ended: no more notifications from it", topic)
        return []

    def _check_signature(self, message: Mapping[str, Any], now: datetime) -> None:
        algorithm = HASHES.get(str(message.get("SignatureVersion", "")))
        if algorithm is None:
            raise Forged(f"unknown SignatureVersion {message.get('SignatureVersion')!r}")
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        except binascii.Error as exc:
            raise Forged("the signature is not base64") from exc
        certificate = self._certificate(str(message.get("SigningCertURL", "")))
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise Forged("the signing certificate is outside its dates")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Forged("the signing certificate has no RSA key")
        try:
            key.verify(signature, canonical(message), padding.PKCS1v15(), algorithm())
        except InvalidSignature as exc:
            raise Forged("the signature does not match") from exc

    def _certificate(self, url: str) -> x509.Certificate:
        if not self.sns.match(url) or not url.split("?", 1)[0].endswith(".pem"):
            raise Forged(f"the SigningCertURL is not at Amazon SNS: {url[:200]!r}")
        certificate = self.certificates.get(url)
        if certificate is None:
            try:
                certificate = x509.load_pem_x509_certificate(self.get(url))
            except (requests.RequestException, ValueError) as exc:
                raise Forged(f"the signing certificate could not be had: {exc}", status=503) from exc
            if len(self.certificates) >= KEPT_CERTIFICATES:
                self.certificates.clear()
            self.certificates[url] = certificate
        return certificate


def read(raw: bytes) -> Read:
    """A stored, verified SNS notification of SES as a finding."""
    try:
        message = json_value(str(json_object(raw, "an SNS message").get("Message", "")))
    except ValueError:
        message = None
    if not isinstance(message, dict):
        return Read(Finding(Kind.UNKNOWN, detail="an SNS notification that is not from SES"), None)
    name = str(message.get("notificationType") or message.get("eventType") or "")
    mail = mapping(message.get("mail"))
    delivery = None
    headers = mail.get("headers")
    for header in headers if isinstance(headers, list) else ():
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            delivery = delivery_in(header.get("value"))
    if name == "Bounce":
        bounce = mapping(message.get("bounce"))
        recipient = _first(bounce.get("bouncedRecipients"))
        status, diagnostic = str(recipient.get("status") or ""), text(recipient.get("diagnosticCode"))
        detail = diagnostic or text(f"{bounce.get('bounceType')} {bounce.get('bounceSubType')}")
        kind = {"Permanent": Kind.HARD, "Transient": Kind.SOFT}.get(str(bounce.get("bounceType")), Kind.UNKNOWN)
        if kind == Kind.HARD and status and not about_the_address(status):  # a 5.7.1 block: about us
            kind = Kind.SOFT
    elif name == "Complaint":
        complaint = mapping(message.get("complaint"))
        recipient = _first(complaint.get("complainedRecipients"))
        kind, status, detail = Kind.COMPLAINT, "", text(complaint.get("complaintFeedbackType") or "abuse")
    elif name == "DeliveryDelay":
        delay = mapping(message.get("deliveryDelay"))
        recipient = _first(delay.get("delayedRecipients"))
        kind, status = Kind.SOFT, str(recipient.get("status") or "")
        detail = text(recipient.get("diagnosticCode") or delay.get("delayType"))
    else:
        recipient, status, detail = _first(mail.get("destination")), "", name
        kind = Kind.UNKNOWN if name in ("Reject", "RenderingFailure") else Kind.DELIVERED
    address = parseaddr(str(recipient.get("emailAddress", "")))[1].lower()
    return Read(Finding(kind, address, status, detail, sender=address), delivery)


def _first(recipients: object) -> dict[str, Any]:
    """The first recipient of a list (syndicate sends each message to one), as SES writes them."""
    if isinstance(recipients, list) and recipients:
        first = recipients[0]
        return first if isinstance(first, dict) else {"emailAddress": str(first)}
    return {}
