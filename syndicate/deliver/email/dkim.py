"""DKIM signatures (RFC 6376) made by OpenSSL: RSA-SHA256, and Ed25519-SHA256 (RFC 8463) beside it.

Both use relaxed/relaxed canonicalisation. A message is canonicalised and its
body hashed once, whatever the number of signatures; each signature is one
private-key operation in OpenSSL (through ``cryptography``), a few hundred
microseconds for RSA-2048, where a pure-Python signer takes eight milliseconds.

The signed header list covers every header a receiver or a reader relies on
(:data:`SIGNED`), each named once more than it occurs ("over-signed"), so a
header of that name added in transit breaks the signature instead of being
read unsigned.

A :class:`Key` is plain values (it crosses to the sending process); a
:class:`Signer` is made from keys where it signs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from syndicate.config import DkimConfig
from syndicate.errors import ConfigError

RSA = "rsa-sha256"
ED25519 = "ed25519-sha256"
ALGORITHMS = (RSA, ED25519)
MIN_RSA_BITS = 1024

# Signed when present, and each named once more than it occurs so that none can be added.
SIGNED = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"reply-to",
    b"cc",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
)
# Always in h= (RFC 8058 asks for both List-Unsubscribe headers to be signed; From must be).
REQUIRED = SIGNED[:8]

CRLF = b"\r\n"
_WSP_RUN = re.compile(rb"[ \t]+")
# A run that is not already one space: a tab, or two or more (single spaces, nearly all of them, match nothing).
_WSP_TO_SPACE = re.compile(rb"\t[ \t]*| [ \t]+")
_FOLD = CRLF + b"\t"
_LINE = 72  # base64 and header lists are folded to lines about this long


class Key(NamedTuple):
    """One signing key as plain values: which algorithm, which selector of which domain, the private key."""

    algorithm: str
    selector: str
    domain: str
    private: bytes  # PEM (either algorithm), or for Ed25519 also the base64 seed dkimpy's dknewkey writes

    @property
    def record_name(self) -> str:
        """Where receivers look the public key up."""
        return f"{self.selector}._domainkey.{self.domain}"


def keys_of(settings: DkimConfig) -> list[Key]:
    """The keys ``[email.dkim]`` names, read from their files (a ConfigError names an unreadable one)."""
    wanted = [(RSA, settings.selector, settings.key_file, "email.dkim.key_file")]
    if ED25519 in settings.algorithms:
        wanted.append((ED25519, settings.ed25519_selector, settings.ed25519_key_file, "email.dkim.ed25519_key_file"))
    keys = []
    for algorithm, selector, path, setting in wanted:
        assert path is not None, "the config checks that each algorithm has its key file"
        try:
            keys.append(Key(algorithm, selector, settings.domain, path.read_bytes()))
        except OSError as exc:
            raise ConfigError(setting, f"cannot read {path}: {exc.strerror}") from exc
        load_private_key(keys[-1], setting, str(path))
    return keys


def load_private_key(
    key: Key, setting: str = "email.dkim.key_file", where: str = "the key"
) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    """The private key of ``key``, checked: the algorithm's type, and at least 1024 bits for RSA.

    A ConfigError names ``setting`` and ``where`` (the file) when it cannot sign.
    """
    private: object
    try:
        if key.private.lstrip().startswith(b"-----BEGIN"):
            private = serialization.load_pem_private_key(key.private, password=None)
        elif key.algorithm == ED25519:
            private = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(key.private.strip(), validate=True))
        else:
            raise ValueError("not a PEM file")
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(setting, f"{where} is not a usable private key: {exc}") from exc
    if key.algorithm == RSA:
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ConfigError(setting, f"{where} is not an RSA key, but {RSA} signs with one")
        if private.key_size < MIN_RSA_BITS:
            raise ConfigError(setting, f"{where} has {private.key_size} bits; receivers want at least {MIN_RSA_BITS}")
        return private
    if not isinstance(private, ed25519.Ed25519PrivateKey):
        raise ConfigError(setting, f"{where} is not an Ed25519 key, but {ED25519} signs with one")
    return private


def dns_record(key: Key) -> str:
    """The TXT record to publish for ``key``: ``v=DKIM1; k=...; p=<public key>``."""
    private = load_private_key(key)
    if isinstance(private, rsa.RSAPrivateKey):
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        kind = "rsa"
    else:
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        kind = "ed25519"
    return f"v=DKIM1; k={kind}; p={base64.b64encode(public).decode()}"


def zone_line(key: Key) -> str:
    """``dns_record`` as a zone-file line, its text cut into the 255-byte strings TXT records hold."""
    record = dns_record(key)
    strings = " ".join(f'"{record[i : i + 255]}"' for i in range(0, len(record), 255))
    return f"{key.record_name}. IN TXT ( {strings} )"


def signer_for(keys: Sequence[Key]) -> Signer:
    """The signer of ``keys`` where mail is finished (the sending process makes its own from plain keys).

    ``SYNDICATE_DKIM_SIGNER=dkimpy`` signs with dkimpy instead, in pure Python, RSA only:
    the before-figure of ``benchmarks/fanout.py``, never for real mail.
    """
    if os.environ.get("SYNDICATE_DKIM_SIGNER") == "dkimpy":
        return _DkimpySigner(keys)
    return Signer(keys)


class _Signing(NamedTuple):
    algorithm: bytes
    selector: bytes
    domain: bytes
    sign: object  # the cryptography private key


class Signer:
    """Signs finished messages with every key it holds: one DKIM-Signature header per key, in front."""

    def __init__(self, keys: Sequence[Key], clock: Callable[[], float] = time.time) -> None:
        if not keys:
            raise ValueError("a signer needs at least one key")
        self.keys = tuple(keys)
        self._signing = [
            _Signing(k.algorithm.encode(), k.selector.encode(), k.domain.encode(), load_private_key(k)) for k in keys
        ]
        self._clock = clock
        self._body: tuple[bytes, bytes] = (b"", b"")  # the last body and its hash: a repeated body is hashed once

    @classmethod
    def from_settings(cls, settings: DkimConfig) -> Signer:
        """The signer ``[email.dkim]`` describes; a key that cannot sign is found now, not at the first message."""
        return cls(keys_of(settings))

    def sign(self, message: bytes) -> bytes:
        """``message`` with a DKIM-Signature header in front for each key."""
        head, body = _split(message)
        fields = _fields(head)
        body_hash = self._body_hash(body)
        names = _signed_names(fields)
        signed = _canonical_headers(fields, names)
        h = b":".join(names)
        now = str(int(self._clock())).encode()
        headers = [self._signature(key, h, body_hash, now, signed) for key in self._signing]
        return b"".join(headers) + message

    def _body_hash(self, body: bytes) -> bytes:
        if self._body[0] is not body and self._body[0] != body:
            self._body = (body, base64.b64encode(hashlib.sha256(canonical_body(body)).digest()))
        return self._body[1]

    def _signature(self, key: _Signing, h: bytes, body_hash: bytes, now: bytes, signed: bytes) -> bytes:
        tags = [
            b"v=1; a=" + key.algorithm + b"; c=relaxed/relaxed; d=" + key.domain + b"; s=" + key.selector + b";",
            b"t=" + now + b";",
            *_folded(b"h=" + h + b";", b":"),
            *_chunked(b"bh=" + body_hash + b";"),
            b"b=",
        ]
        unsigned = b"DKIM-Signature: " + _FOLD.join(tags)
        data = signed + _canonical_field(unsigned)
        private = key.sign
        if isinstance(private, rsa.RSAPrivateKey):
            signature = private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(private, ed25519.Ed25519PrivateKey)
            signature = private.sign(hashlib.sha256(data).digest())  # RFC 8463: Ed25519 over the SHA-256 digest
        value = base64.b64encode(signature)
        return unsigned + _FOLD.join(value[i : i + _LINE] for i in range(0, len(value), _LINE)) + CRLF


def _split(message: bytes) -> tuple[bytes, bytes]:
    """Header block (each field ending in CRLF) and body."""
    if b"\r\n" not in message:
        message = message.replace(b"\n", CRLF)
    end = message.find(b"\r\n\r\n")
    if end == -1:
        return (message if message.endswith(CRLF) else message + CRLF), b""
    return message[: end + 2], message[end + 4 :]


def _fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """Each header field as (lower-case name, the field as written, without its final CRLF), top to bottom."""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(CRLF)[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            name, raw = fields[-1]
            fields[-1] = (name, raw + CRLF + line)
        else:
            fields.append((line.split(b":", 1)[0].strip().lower(), line))
    return fields


def _signed_names(fields: list[tuple[bytes, bytes]]) -> list[bytes]:
    """h=: each name of :data:`SIGNED` that occurs (or is required) once more than it occurs."""
    present: dict[bytes, int] = {}
    for name, _ in fields:
        present[name] = present.get(name, 0) + 1
    names: list[bytes] = []
    for name in SIGNED:
        count = present.get(name, 0)
        if count or name in REQUIRED:
            names += [name] * (count + 1)
    return names


def _canonical_headers(fields: list[tuple[bytes, bytes]], names: list[bytes]) -> bytes:
    """The signed fields, relaxed, in h= order; a name's instances are taken from the bottom up."""
    by_name: dict[bytes, list[bytes]] = {}
    for name, raw in fields:
        by_name.setdefault(name, []).append(raw)
    out = []
    for name in names:
        instances = by_name.get(name)
        if instances:
            out.append(_canonical_field(instances.pop()) + CRLF)
    return b"".join(out)


def _canonical_field(raw: bytes) -> bytes:
    """One header field, relaxed (RFC 6376 3.4.2): lower-case name, unfolded, runs of white space as one space."""
    name, _, value = raw.partition(b":")
    value = _WSP_RUN.sub(b" ", value.replace(CRLF, b"")).strip(b" ")
    return name.strip(b" \t").lower() + b":" + value


def canonical_body(body: bytes) -> bytes:
    """The body, relaxed (RFC 6376 3.4.4): runs of white space as one space, none at line ends, no empty last lines."""
    if not body:
        return b""
    if not body.endswith(CRLF):
        body += CRLF
    if b"\t" in body or b"  " in body:
        body = _WSP_TO_SPACE.sub(b" ", body)
    body = body.replace(b" \r\n", CRLF).rstrip(b"\r\n")  # runs are single spaces now: one replace strips them
    return body + CRLF if body else b""


def _folded(tag: bytes, separator: bytes) -> list[bytes]:
    """A tag cut after ``separator`` into lines of about :data:`_LINE` bytes (white space is allowed there)."""
    lines, line = [], b""
    for part in tag.split(separator):
        piece = part if not line else separator + part
        if line and len(line) + len(piece) > _LINE:
            lines.append(line + separator)
            line = part
        else:
            line += piece
    return [*lines, line]


def _chunked(tag: bytes) -> list[bytes]:
    return [tag[i : i + _LINE] for i in range(0, len(tag), _LINE)]


class _DkimpySigner(Signer):
    """dkimpy's signer behind the same interface (benchmarks only: dkimpy is a test dependency)."""

    def sign(self, message: bytes) -> bytes:
        import dkim

        out = b""
        names = _signed_names(_fields(_split(message)[0]))
        for key in (k for k in self.keys if k.algorithm == RSA):
            out += dkim.sign(
                message, key.selector.encode(), key.domain.encode(), key.private,
                canonicalize=(b"relaxed", b"relaxed"), include_headers=names,
            )  # fmt: skip
        return out + message
