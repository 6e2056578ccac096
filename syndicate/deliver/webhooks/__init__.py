"""Webhook delivery to partner sites: sign each push, post it, judge the reply, record the outcome.

::

    SyndicateError
     └── PartnerError          a push could not be made or went unanswered; names the partner
          ├── SecretError      the partner's secret is not set, or not a whsec_ secret
          └── Unreachable      no reply: connection refused or broken, timeout, TLS

- ``signing``: Standard Webhooks keys, ids and signature headers;
- ``http``: one POST and its reply (every requests error is translated there);
- ``verdict``: what a reply means for the delivery (sent, retry when, failed, partner gone);
- ``compose``: claimed deliveries into signed pushes, or an outcome without sending;
- ``sender``: the stage, one lane per partner so a slow one never delays the others.
"""

from __future__ import annotations

from syndicate.errors import SyndicateError


class PartnerError(SyndicateError):
    """A push to a partner could not be made, or got no reply."""

    def __init__(self, partner: str, message: str) -> None:
        super().__init__(f"partner {partner}: {message}")
        self.partner = partner


class SecretError(PartnerError):
    """The partner's signing secret is missing or malformed."""


class Unreachable(PartnerError):
    """The partner did not answer: refused, broken or timed-out connection."""
