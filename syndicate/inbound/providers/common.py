"""What every provider's webhook shares: a verified event, a refusal, the Message-ID syndicate gave a message."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from syndicate.inbound.classify import Finding
from syndicate.text import json_value

SKEW = 300  # seconds a signed request's timestamp may be off
MESSAGE_ID = re.compile(r"syndicate\.([1-9][0-9]{0,18})@", re.ASCII)


class Forged(Exception):
    """A webhook request whose signature (or credentials) does not hold, or is too old to be believed."""

    def __init__(self, reason: str, status: int = 406) -> None:
        super().__init__(reason)
        self.status = status  # 406: the providers take it as "do not retry"; 401 asks for credentials


class Event(NamedTuple):
    """One verified event of a request: the key it is stored under (its provider's id), and its bytes."""

    key: str
    raw: bytes


class Verifier(Protocol):
    """A provider's check at the door: the request's verified events, or :class:`Forged`.

    ``headers`` are the request's, their names in lower case.
    """

    def __call__(self, body: bytes, headers: Mapping[str, str], now: datetime) -> list[Event]: ...


class Read(NamedTuple):
    """What a stored event says, and the delivery it names (``None``: found by its recipient's address)."""

    finding: Finding
    delivery: int | None


def delivery_in(text: object) -> int | None:
    """The delivery a Message-ID syndicate gave (``<syndicate.<id>@host>``) names, anywhere in ``text``."""
    found = MESSAGE_ID.search(str(text or ""))
    return int(found.group(1)) if found else None


def fresh(timestamp: str, now: datetime) -> None:
    """Refuse a signed timestamp (Unix seconds) further than :data:`SKEW` from now: a replay."""
    if not timestamp.isdigit() or abs(now.timestamp() - int(timestamp)) > SKEW:
        raise Forged("the timestamp is too far from now")


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """``raw`` as a JSON object, or :class:`Forged` naming what it should have been."""
    try:
        value = json_value(raw)
    except ValueError as exc:
        raise Forged(f"not {what}: {exc}") from exc
    if not isinstance(value, dict):
        raise Forged(f"not {what}: not a JSON object")
    return value


def event_key(value: object) -> str:
    """A key for an event its provider gave no id: the digest of its canonical JSON."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def stored_as(provider: str, key: str, width: int = 64) -> str:
    """The digest an event is stored under: ``provider:key``, or the key's SHA-256 cut to fit ``width``."""
    digest = f"{provider}:{key}"
    if len(digest) <= width:
        return digest
    return f"{provider}:{hashlib.sha256(key.encode()).hexdigest()}"[:width]


def mapping(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: a field of the wrong shape says nothing."""
    return value if isinstance(value, dict) else {}


def text(value: object, limit: int = 1000) -> str:
    """A provider's field as one line of text for the operator."""
    return " ".join(str(value or "").split())[:limit]
