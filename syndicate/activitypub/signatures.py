"""HTTP signatures both ways, in the two forms the fediverse speaks.

- **draft-cavage-http-signatures-12**, what Mastodon and nearly every peer
  send and expect: a ``Signature`` header over ``(request-target)``, ``host``,
  ``date`` and, with a body, ``digest`` (``SHA-256=``), RSA-SHA256. Written
  here: it is a page of code, and no kept library does it for both sides.
- **RFC 9421** (HTTP Message Signatures), which Mastodon accepts since 4.5:
  ``Signature-Input`` and ``Signature`` with ``Content-Digest`` (RFC 9530),
  through the ``http-message-signatures`` library.

A signature is good only if it verifies, covers the request line, the host
and (with a body) the digest, the digest matches the body, and its time is
within ``skew`` of ours. Every refusal says why, for the log and the reply.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import http_message_signatures as rfc9421
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from requests.structures import CaseInsensitiveDict

from syndicate.errors import SyndicateError

SKEW = timedelta(hours=1)  # Mastodon's margin; a replayed request older than this is refused
CAVAGE_ALGORITHMS = ("rsa-sha256", "hs2019")  # hs2019: "the key says", an RSA key here
_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*"([^"]*)"\s*(?:,|$)')
MAX_SIGNATURE_HEADER = 8192


class BadSignature(SyndicateError):
    """A request whose signature does not hold; the message says why."""


@dataclass(frozen=True)
class Signed:
    """What a verified signature vouches for: the key that made it."""

    key_id: str
    spec: str  # "cavage" or "rfc9421"


@dataclass
class Message:
    """An HTTP request as both signers and verifiers see it (header names in any case)."""

    method: str
    url: str
    headers: CaseInsensitiveDict[str] = field(default_factory=CaseInsensitiveDict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """A header's value, whatever the case of its name."""
        found = self.headers.get(name)
        return str(found) if found is not None else None


def sha256_digest(body: bytes) -> str:
    """The ``Digest`` header value of ``body`` (RFC 3230), as cavage signatures cover it."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def sign_cavage(message: Message, key_id: str, private_pem: str, now: datetime) -> Message:
    """``message`` with ``Host``, ``Date``, (with a body) ``Digest``, and a cavage ``Signature``."""
    parts = urlsplit(message.url)
    message.headers["Host"] = parts.netloc
    message.headers["Date"] = format_datetime(now, usegmt=True)
    covered = ["(request-target)", "host", "date"]
    if message.method.upper() != "GET":
        message.headers["Digest"] = sha256_digest(message.body)
        covered.append("digest")
        if message.header("content-type"):
            covered.append("content-type")
    text = _signing_string(message, covered)
    signature = _private(private_pem).sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    message.headers["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(covered)}",'
        f'signature="{base64.b64encode(signature).decode()}"'
    )
    return message


def sign_rfc9421(message: Message, key_id: str, private_pem: str, now: datetime) -> Message:
    """``message`` with ``Content-Digest`` (with a body) and an RFC 9421 ``Signature-Input`` and ``Signature``."""
    covered = ["@method", "@target-uri"]
    body = None
    if message.method.upper() != "GET":
        covered.append("content-digest")  # the library writes it from the body
        body = message.body
    signer = rfc9421.HTTPMessageSigner(signature_algorithm=rfc9421.algorithms.RSA_V1_5_SHA256,
                                       key_resolver=_Keys(lambda _: None, private_pem))  # fmt: skip
    signer.sign(message, key_id=key_id, created=now, covered_component_ids=covered, label="sig1", body=body)
    return message


def verify(message: Message, public_key: Callable[[str], str | None], now: datetime, skew: timedelta = SKEW) -> Signed:
    """Which key signed ``message``, if its signature holds (RFC 9421 when it has ``Signature-Input``)."""
    if message.header("signature-input"):
        return _verify_rfc9421(message, public_key, now, skew)
    return _verify_cavage(message, public_key, now, skew)


def _verify_cavage(message: Message, public_key: Callable[[str], str | None], now: datetime, skew: timedelta) -> Signed:
    header = message.header("signature")
    if not header:
        raise BadSignature("not signed: no Signature header")
    params = _cavage_params(header)
    key_id, signature = params.get("keyid"), params.get("signature")
    if not key_id or not signature:
        raise BadSignature("the Signature header names no keyId or no signature")
    if params.get("algorithm", "hs2019").lower() not in CAVAGE_ALGORITHMS:
        raise BadSignature(f"algorithm {params['algorithm'][:40]!r} is not rsa-sha256")
    covered = params.get("headers", "date").lower().split()
    needed = ["(request-target)", "host", "date"] + (["digest"] if message.body else [])
    missing = [name for name in needed if name not in covered]
    if missing:
        raise BadSignature(f"the signature does not cover {', '.join(missing)}")
    _check_date(message.header("date"), now, skew)
    if message.body and message.header("digest") != sha256_digest(message.body):
        raise BadSignature("the Digest header does not match the body (a SHA-256 digest is wanted)")
    pem = _public_key(public_key, key_id)
    try:
        raw = base64.b64decode(signature, validate=True)
        _public(pem).verify(raw, _signing_string(message, covered).encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError) as exc:
        raise BadSignature(f"the signature of {key_id[:200]} does not verify") from exc
    return Signed(key_id, "cavage")


def _verify_rfc9421(
    message: Message, public_key: Callable[[str], str | None], now: datetime, skew: timedelta
) -> Signed:
    required = ["@method", "@target-uri"] + (["content-digest"] if message.body else [])
    key_ids: list[str] = []

    def lookup(key_id: str) -> str | None:
        key_ids.append(key_id)
        return public_key(key_id)

    verifier = rfc9421.HTTPMessageVerifier(signature_algorithm=rfc9421.algorithms.RSA_V1_5_SHA256,
                                           key_resolver=_Keys(lookup, None))  # fmt: skip
    try:
        # The age is checked below on our clock (a test's, or the daemon's), not on the library's.
        results = verifier.verify(message, max_age=None, require_components=required, body=message.body or None)
    except rfc9421.HTTPMessageSignaturesException as exc:
        raise BadSignature(f"the RFC 9421 signature does not hold: {str(exc)[:200]}") from exc
    created = results[0].parameters.get("created")
    if not isinstance(created, int):
        raise BadSignature("the RFC 9421 signature says not when it was made (created)")
    if abs(datetime.fromtimestamp(created, now.tzinfo) - now) > skew:  # on our clock, not the library's
        raise BadSignature(f"the signature was made more than {int(skew.total_seconds())} s from now")
    key_id = str(results[0].parameters.get("keyid") or (key_ids[0] if key_ids else ""))
    return Signed(key_id, "rfc9421")


class _Keys(rfc9421.HTTPSignatureKeyResolver):
    def __init__(self, public: Callable[[str], str | None], private_pem: str | None) -> None:
        self.public, self.private_pem = public, private_pem

    def resolve_public_key(self, key_id: str) -> Any:
        found = self.public(key_id)
        return found.encode() if found else None

    def resolve_private_key(self, key_id: str) -> Any:
        if self.private_pem is None:
            raise BadSignature("no private key to sign with")
        return self.private_pem.encode()


def _cavage_params(header: str) -> dict[str, str]:
    if len(header) > MAX_SIGNATURE_HEADER:
        raise BadSignature("the Signature header is too long")
    return {name.lower(): value for name, value in _PARAM.findall(header)}


def _signing_string(message: Message, covered: list[str]) -> str:
    lines = []
    for name in covered:
        if name == "(request-target)":
            parts = urlsplit(message.url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            lines.append(f"(request-target): {message.method.lower()} {target}")
            continue
        value = message.header(name)
        if value is None:
            raise BadSignature(f"the signature covers {name}, which the request does not have")
        lines.append(f"{name}: {value.strip()}")
    return "\n".join(lines)


def _check_date(value: str | None, now: datetime, skew: timedelta) -> None:
    if not value:
        raise BadSignature("no Date header")
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise BadSignature("the Date header is not a date") from exc
    if sent.tzinfo is None or abs(sent - now) > skew:
        raise BadSignature(f"the Date header is more than {int(skew.total_seconds())} s from now")


def _public_key(public_key: Callable[[str], str | None], key_id: str) -> str:
    found = public_key(key_id)
    if not found:
        raise BadSignature(f"no public key for {key_id[:200]}")
    return found


def _private(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BadSignature("the actor's key is not an RSA key")
    return key


def _public(pem: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise BadSignature("the signer's public key cannot be read") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadSignature("the signer's key is not an RSA key")
    return key
