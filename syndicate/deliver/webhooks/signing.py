"""Standard Webhooks signatures: ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body``, per key.

While a partner rotates keys, its secret and its previous one both sign (two
``v1,`` signatures separated by a space), so it may check with either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from syndicate.config import Config, PartnerConfig
from syndicate.deliver.webhooks import SecretError
from syndicate.errors import ConfigError
from syndicate.outbox import Claim

PREFIX = "whsec_"


@dataclass(frozen=True)
class Signer:
    """Signs pushes with one or more keys."""

    keys: tuple[bytes, ...]

    def signature(self, webhook_id: str, timestamp: int, body: bytes) -> str:
        """The ``webhook-signature`` value: one ``v1,<base64>`` per key, space-separated."""
        signed = f"{webhook_id}.{timestamp}.".encode() + body
        digests = (hmac.new(key, signed, hashlib.sha256).digest() for key in self.keys)
        return " ".join("v1," + base64.b64encode(digest).decode("ascii") for digest in digests)

    def headers(self, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers."""
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self.signature(webhook_id, timestamp, body),
        }


def signer_for(config: Config, partner: PartnerConfig) -> Signer:
    """The signer of ``partner``: its secret, and its previous one during a rotation (read from the environment)."""
    index = config.partners.index(partner)
    settings = [("secret_env", partner.secret_env), ("previous_secret_env", partner.previous_secret_env)]
    keys = [
        decode(partner.name, variable, _read(config, f"partners[{index}].{setting}", partner, variable))
        for setting, variable in settings
        if variable
    ]
    return Signer(tuple(keys))


def decode(partner: str, variable: str, secret: str) -> bytes:
    """The key in a ``whsec_<base64>`` secret; the error names the variable, never the secret."""
    if not secret.startswith(PREFIX):
        raise SecretError(partner, f"the secret in {variable} does not start with {PREFIX}")
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretError(partner, f"the secret in {variable} is not {PREFIX} followed by base64") from exc
    if not key:
        raise SecretError(partner, f"the secret in {variable} is empty")
    return key


def webhook_id(claim: Claim) -> str:
    """The id a partner de-duplicates on: the same for every attempt at one delivery, on any node.

    The delivery's id makes it traceable; its creation time keeps it unique
    even if the database is ever started afresh and ids count from 1 again.
    """
    assert claim.created_at is not None, "webhook claims carry their planning time"
    digest = hashlib.sha256(f"{claim.id}/{claim.created_at.isoformat()}".encode()).hexdigest()
    return f"msg_{claim.id}_{digest[:16]}"


def _read(config: Config, key: str, partner: PartnerConfig, variable: str) -> str:
    try:
        return config.secret(key, variable)
    except ConfigError as exc:
        raise SecretError(partner.name, str(exc)) from exc
