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

A partner URL may carry ``user:password@``. Every text that leaves this
package (an error, a verdict, a log line, what a command shows) goes through
:func:`redact` first, so the password reaches the partner and nothing else.
"""

from __future__ import annotations

import re

from syndicate.errors import SyndicateError

# The password of a URL's userinfo, in any text: requests' own errors repeat the URL as given.
_USERINFO_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]+@")
HIDDEN = "***"


def redact(text: str) -> str:
    """``text`` with the password of every URL in it hidden (``https://user:***@host/``)."""
    return _USERINFO_PASSWORD.sub(rf"\1:{HIDDEN}@", text)


class PartnerError(SyndicateError):
    """A push to a partner could not be made, or got no reply."""

    def __init__(self, partner: str, message: str) -> None:
        super().__init__(redact(f"partner {partner}: {message}"))
        self.partner = partner


class SecretError(PartnerError):
    """The partner's signing secret is missing or malformed."""


class Unreachable(PartnerError):
    """The partner did not answer: refused, broken or timed-out connection."""
