"""Signed tokens in links (unsubscribe, preferences, confirm): unforgeable, rotatable, address-bound.

A token names a subscriber and a purpose, and carries an HMAC-SHA256 over
(purpose, subscriber id, address, expiry). It is checked against the current
secret and every previous one, so a rotation does not break links in mail
already sent. Binding the address means a token stops working if the
subscriber row is ever reused for someone else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets as random_secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from syndicate.config import Config
from syndicate.store import meta
from syndicate.store.db import Database

log = logging.getLogger(__name__)

# Unsubscribing and changing preferences are one capability (the preferences page unsubscribes
# too), so one token serves both links; confirming is another, and expires.
PURPOSES = {"unsubscribe": "u", "preferences": "u", "confirm": "c"}
CONFIRM_DAYS = 7
MIN_SECRET_BYTES = 32  # `syndicate check` refuses a shorter one

# What ``sign`` makes and nothing else: ASCII digits without leading zeros, of bounded length, so no
# field of a token from outside can name a row or a time the store cannot hold (a 40-digit id made
# SQLite raise OverflowError, and PostgreSQL a DataError).
SHAPE = re.compile(
    r"(?P<purpose>[a-z])(?P<id>0|[1-9][0-9]{0,9})\.(?P<expires>0|[1-9][0-9]{0,11})\.(?P<mac>[\w-]{1,64})", re.ASCII
)
MAX_ID = 2**31 - 1  # subscribers.id is a 32-bit INTEGER on PostgreSQL


class BadToken(Exception):
    """A token is malformed, forged, expired, or for another purpose."""


@dataclass(frozen=True)
class Secrets:
    """The secret that signs, and the earlier ones still accepted."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    def sign(self, purpose: str, subscriber_id: int, email: str, expires: int = 0) -> str:
        """A token for ``purpose`` (expires: Unix time, 0 = never)."""
        payload = f"{PURPOSES[purpose]}{subscriber_id}.{expires}"
        return f"{payload}.{_mac(self.current, payload, email)}"

    def read(self, token: str, purpose: str) -> tuple[int, int, str]:
        """(subscriber id, expiry, mac) from a token's shape; no signature check yet."""
        found = SHAPE.fullmatch(token)
        if found is None or int(found["id"]) > MAX_ID:
            raise BadToken("this link is malformed")
        if found["purpose"] != PURPOSES[purpose]:
            raise BadToken(f"this link is not for {purpose}")
        return int(found["id"]), int(found["expires"]), found["mac"]

    def verify(self, token: str, purpose: str, email: str, now: datetime) -> None:
        """Raise :class:`BadToken` unless ``token`` was signed for ``purpose`` and ``email`` and is in date."""
        subscriber_id, expires, mac = self.read(token, purpose)
        payload = f"{PURPOSES[purpose]}{subscriber_id}.{expires}"
        if not any(hmac.compare_digest(mac, _mac(key, payload, email)) for key in (self.current, *self.previous)):
            raise BadToken("this link is not valid")
        if expires and now.timestamp() > expires:
            raise BadToken("this link has expired")


def confirm_expiry(now: datetime) -> int:
    """Unix time a confirmation link made now stops working."""
    return int((now + timedelta(days=CONFIRM_DAYS)).timestamp())


def _mac(key: bytes, payload: str, email: str) -> str:
    digest = hmac.digest(key, f"{payload}.{email}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest[:18]).decode()


def load_secrets(config: Config, db: Database) -> Secrets:
    """The secrets from the environment, or one made once and kept in the database."""
    current = os.environ.get(config.web.secret_env, "")
    previous = os.environ.get(config.web.previous_secrets_env, "") if config.web.previous_secrets_env else ""
    olds = tuple(p.strip().encode() for p in previous.split(",") if p.strip())
    if current:
        if len(current.encode()) < MIN_SECRET_BYTES:
            log.warning(
                "%s is shorter than %d bytes: links signed with it can be guessed",
                config.web.secret_env,
                MIN_SECRET_BYTES,
            )
        return Secrets(current.encode(), olds)
    if db.read_only:  # a command that only looks signs nothing it keeps; the database is not written
        with db.read() as conn:
            stored = meta.get(conn, "generated_secret") or random_secrets.token_urlsafe(32)
        return Secrets(str(stored).encode(), olds)
    with db.write() as conn:
        # The first node to start makes it; any node starting alongside takes the same one.
        meta.put_new(conn, "generated_secret", random_secrets.token_urlsafe(32))
        stored = meta.get(conn, "generated_secret")
    log.debug("%s is not set; links are signed with a secret kept in the database", config.web.secret_env)
    return Secrets(str(stored).encode(), olds)
