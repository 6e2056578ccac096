"""Mail as it leaves: an edition's message template, one letter per recipient, and the bytes DATA carries.

The ground floor of every mail path: the composer makes :class:`Letter` values,
the transports and the SMTP wire (in this process or a sending process of its
own) take them as they are, and :func:`press` finishes each one, the same way
everywhere. Only the standard library is used here, so the sending process
loads no renderer (Jinja2, CSS inlining) to send what was rendered long ago.

A template is a rendered message cut at its placeholders: what differs per
recipient (address, Message-ID, date, the signed links) is put in by joining
bytes, never by rendering again. Its parts are UTF-8 with 8bit transfer
encoding and no line over 998 bytes, so filling a placeholder never needs
re-encoding (:func:`seven_bit` re-encodes for a server without 8BITMIME).
"""

from __future__ import annotations

import email
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email import policy
from functools import cached_property
from typing import Any, NamedTuple, Protocol

# Placeholders are plain letters so header parsers and CSS inlining leave them alone.
TO = b"syndicatetox@syndicate.invalid"
MESSAGE_ID = b"syndicatemessageidx"
UNSUBSCRIBE = b"SYNDICATEUNSUBSCRIBEX"
PREFERENCES = b"SYNDICATEPREFERENCESX"
CONFIRM = b"SYNDICATECONFIRMX"
# A date no statement is sent on: the Date header says when the mail left, filled in at sending.
DATE = b"Sat, 01 Jan 2000 00:00:00 -0000"
_SLOTS = re.compile(
    b"(" + b"|".join(re.escape(p) for p in (TO, MESSAGE_ID, UNSUBSCRIBE, PREFERENCES, CONFIRM, DATE)) + b")"
)

MAIL_POLICY = policy.SMTP
CRLF = b"\r\n"


@dataclass(frozen=True)
class MessageTemplate:
    """A rendered message with holes for what differs per recipient."""

    parts: tuple[bytes, ...]

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageTemplate:
        """Cut stored message bytes at their placeholders."""
        return cls(tuple(_SLOTS.split(data)))

    def fill(self, values: Mapping[bytes, bytes]) -> bytes:
        """The message for one recipient: every placeholder replaced by its value."""
        # Text between placeholders never equals a placeholder (the split made it), so .get is exact.
        return b"".join([values.get(part, part) for part in self.parts])

    @cached_property
    def slots(self) -> frozenset[bytes]:
        """The placeholders this template holds."""
        return frozenset(self.parts[1::2])


class Letter(NamedTuple):
    """One message, from the composer to the socket: its delivery, envelope, edition and this recipient's own values.

    It names its template by key (the edition's id): templates travel once per
    run, letters on their own, so a letter is small to queue and to pipe.
    """

    id: int  # the delivery's id: what becomes of the letter is reported by it
    sender: str
    recipient: str
    template: int
    values: Mapping[bytes, bytes]

    def __reduce__(self) -> tuple[type[Letter], tuple[Any, ...]]:
        # Pickled as class and fields: as cheap as a plain tuple; the default way costs the parent (the busier
        # end of the pipe to a sending process) about twice as much.
        return (Letter, tuple(self))


class Signing(Protocol):
    """Something that signs a finished message (DKIM: :class:`syndicate.deliver.email.dkim.Signer`)."""

    def sign(self, message: bytes) -> bytes:
        """``message`` with its signature header in front."""
        ...


def press(template: MessageTemplate, values: Mapping[bytes, bytes], signer: Signing | None = None) -> bytes:
    """The finished message: ``template`` filled in with one recipient's ``values``, then signed if a signer is given."""
    data = template.fill(values)
    return signer.sign(data) if signer is not None else data


def seven_bit(data: bytes) -> bytes:
    """The same message with its 8bit text parts in quoted-printable, for a server without 8BITMIME."""
    message = email.message_from_bytes(data, policy=MAIL_POLICY)
    for part in message.walk():
        if part.get_content_maintype() == "text" and str(part.get("Content-Transfer-Encoding", "")).lower() == "8bit":
            text = part.get_content()
            part.set_content(text, subtype=part.get_content_subtype(), charset="utf-8", cte="quoted-printable")
    return message.as_bytes(policy=MAIL_POLICY)


def dot_stuff(data: bytes) -> bytes:
    """The message as DATA carries it: a line starting with "." gets another (RFC 5321 4.5.2); ends in CRLF."""
    if data.startswith(b"."):
        data = b"." + data
    if b"\n." in data:
        data = data.replace(b"\n.", b"\n..")
    return data if data.endswith(CRLF) else data + CRLF
