"""Reports from sending providers' event webhooks, verified as each provider documents, read into a Finding.

A provider that relays syndicate's mail also hears the bounces and
complaints, and posts them as JSON events. Each request is checked at the
door by its provider's :class:`~.common.Verifier` (Amazon SES through SNS,
Postmark, SendGrid, Mailgun: one module each); its verified events are
stored raw like any report, under the provider's own event id, and read here
by the one processing path (:func:`read`). A provider names a message by the
Message-ID syndicate gave it (``<syndicate.<delivery id>@host>``) where it
keeps it; the provider's signature, not a tag in an address, is what makes
that trustworthy. Where it does not, the report is about the newest mail to
its recipient.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from syndicate.config import InboundConfig
from syndicate.errors import ConfigError
from syndicate.inbound.providers import mailgun, postmark, sendgrid, ses
from syndicate.inbound.providers.common import Event, Forged, Read, Verifier, stored_as

__all__ = ["PROVIDERS", "Event", "Forged", "Read", "Verifier", "configured", "read", "stored_as"]

READERS: dict[str, Callable[[bytes], Read]] = {
    "ses": ses.read,
    "postmark": postmark.read,
    "sendgrid": sendgrid.read,
    "mailgun": mailgun.read,
}
PROVIDERS = tuple(READERS)


def read(provider: str, raw: bytes) -> Read:
    """A stored, verified event of ``provider`` as a finding, and the delivery it names."""
    return READERS[provider](raw)


def configured(
    settings: InboundConfig, environ: Mapping[str, str] = os.environ, *, sns: re.Pattern[str] = ses.SNS
) -> dict[str, Verifier]:
    """The providers ``[inbound]`` turns on, each with its key from the environment.

    A key that is named but not set turns its provider off (its hook answers 404); one
    that is set but unreadable (a SendGrid key that is not a public key) is a :class:`ConfigError`.
    """
    found: dict[str, Verifier] = {}
    if settings.ses_topics:
        found["ses"] = ses.SES(settings.ses_topics, sns=sns)
    secrets: dict[str, tuple[str, Callable[[str], Verifier]]] = {
        "postmark": (settings.postmark_auth_env, postmark.Postmark),
        "sendgrid": (settings.sendgrid_key_env, sendgrid.SendGrid),
        "mailgun": (settings.mailgun_key_env, mailgun.Mailgun),
    }
    for name, (variable, make) in secrets.items():
        value = environ.get(variable, "") if variable else ""
        if value:
            try:
                found[name] = make(value)
            except ValueError as exc:
                raise ConfigError(f"inbound.{name}: ${variable}", str(exc)) from exc
    return found
