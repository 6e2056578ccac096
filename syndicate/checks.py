"""``syndicate check``: read config, statements and templates; report every problem; change nothing.

(Nothing but one note: what it found is kept in the database, when there is
one, for the console's dashboard to show.)

Besides the statements and templates, it looks at what the configuration
needs from outside itself: the secrets its ``_env`` keys name (set, and long
enough to resist guessing), the DKIM key file, and links that one-click
unsubscribe needs to be https.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError

from syndicate.config import Config
from syndicate.deliver.email.dkim import Signer
from syndicate.deliver.webhooks import SecretError
from syndicate.deliver.webhooks.signing import decode, signer_for
from syndicate.errors import ConfigError, SourceError
from syndicate.ingest import resolve_duplicates
from syndicate.model import Problem, Severity, Statement
from syndicate.render import templates
from syndicate.render.email import REQUIRED_TEMPLATES as EMAIL_TEMPLATES
from syndicate.render.site.pages import REQUIRED_TEMPLATES as SITE_TEMPLATES
from syndicate.sources import make_source
from syndicate.store import meta
from syndicate.store.db import Database
from syndicate.tokens import MIN_SECRET_BYTES
from syndicate.web.pages import REQUIRED_TEMPLATES as WEB_TEMPLATES

KEPT_PROBLEMS = 100  # of a check's, kept for the console

MIN_LINK_SECRET = MIN_SECRET_BYTES
MIN_PARTNER_KEY = 24
log = logging.getLogger(__name__)
MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
REQUIRED_TEMPLATES = ("feeds/attribution.html", "feeds/attribution.txt", *EMAIL_TEMPLATES, *WEB_TEMPLATES)


def check(config: Config, config_path: Path | None = None) -> list[Problem]:
    """Every problem with the statements, templates and settings of ``config`` (no database touched)."""
    where = str(config_path or config.root / "config.toml")
    required = (*REQUIRED_TEMPLATES, *SITE_TEMPLATES) if config.site.pages else REQUIRED_TEMPLATES
    return [*_statements(config), *templates.check(config.templates.dir, required), *_settings(config, where)]


def remember(db: Database, problems: list[Problem], now: datetime, by: str) -> bool:
    """Keep what a check found (the first :data:`KEPT_PROBLEMS`) for the console to show; False if it could not.

    A database that is not there yet is not made for it, and one that cannot
    be written is passed over: a check reports on its own either way.
    """
    if not db.exists():
        return False
    errors = sum(p.severity == Severity.ERROR for p in problems)
    value = {"at": now.isoformat(), "by": by, "errors": errors, "warnings": len(problems) - errors,
             "problems": [str(p) for p in problems[:KEPT_PROBLEMS]]}  # fmt: skip
    try:
        with db.write() as conn:
            meta.put(conn, meta.LAST_CHECK, value)
    except SQLAlchemyError as exc:
        log.info("the check's findings are not kept for the console: %s", exc)
        return False
    return True


def _statements(config: Config) -> list[Problem]:
    source = make_source(config)
    try:
        scan = source.scan({})
    except SourceError as exc:
        return [Problem(config.source.url or str(config.source.path), str(exc))]
    _, duplicates = resolve_duplicates(scan, {}, source.display)
    return [*scan.problems, *duplicates]


def _settings(config: Config, where: str) -> list[Problem]:
    """What the settings need from outside the file: secrets in the environment, key files, https links."""
    problems = [*_weak_secrets(config, where)]
    for partner in config.partners:
        try:
            signer_for(config, partner)
        except SecretError as exc:
            problems.append(Problem(where, f"partner {partner.name}: {exc}"))
    if config.email.dkim.enabled:
        try:
            Signer.from_settings(config.email.dkim)
        except ConfigError as exc:
            problems.append(Problem(where, str(exc)))
    smtp = config.email.smtp
    if config.email.transport == "smtp":
        for key, variable in (("username_env", smtp.username_env), ("password_env", smtp.password_env)):
            if variable and not os.environ.get(variable):
                problems.append(Problem(where, f"email.smtp.{key}: environment variable {variable} is not set"))
    inbound = config.inbound
    if inbound.imap.host:
        for key, variable in (("username_env", inbound.imap.username_env), ("password_env", inbound.imap.password_env)):
            if not variable or not os.environ.get(variable):
                shown = f"environment variable {variable} is not set" if variable else "not given"
                problems.append(Problem(where, f"inbound.imap.{key}: {shown}: the mailbox cannot be read"))
    if (inbound.bind or inbound.maildir or inbound.imap.host) and not config.email.return_path:
        message = (
            "email.return_path is not set: reports that come in are stored and classified, but no bounce or"
            " complaint can be tied to its delivery safely, so none changes anything"
        )
        problems.append(Problem(where, message, severity=Severity.WARNING))
    if not _https_or_loopback(config.web_base_url):
        message = f"web.base_url: {config.web_base_url} is not https; mail providers honour one-click unsubscribe (RFC 8058) only over https"
        problems.append(Problem(where, message, severity=Severity.WARNING))
    return problems


def _weak_secrets(config: Config, where: str) -> list[Problem]:
    """Secrets too short to resist guessing: the link secret under 32 bytes, a partner's key under 24."""
    problems = []
    link_secret = os.environ.get(config.web.secret_env, "")
    if link_secret and len(link_secret.encode()) < MIN_LINK_SECRET:
        message = (
            f"web.secret_env: the secret in {config.web.secret_env} is {len(link_secret.encode())} bytes; "
            f"use at least {MIN_LINK_SECRET} random bytes ({MAKE_SECRET})"
        )
        problems.append(Problem(where, message))
    for index, partner in enumerate(config.partners):
        for setting in ("secret_env", "previous_secret_env"):
            variable = getattr(partner, setting)
            try:
                key = decode(partner.name, variable, os.environ.get(variable, "")) if variable else None
            except SecretError:
                continue  # reported by signer_for
            if key is not None and len(key) < MIN_PARTNER_KEY:
                message = (
                    f"partners[{index}].{setting}: partner {partner.name}'s key in {variable} is {len(key)} bytes; "
                    f"use at least {MIN_PARTNER_KEY} random bytes (whsec_ and the base64 of them)"
                )
                problems.append(Problem(where, message))
    return problems


def _https_or_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    try:
        return ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        return parts.hostname == "localhost"


def notes(config: Config, now: datetime | None = None) -> list[str]:
    """What an operator should know that is no problem: each partner's age limit, and what it holds back."""
    if not config.partners:
        return []
    try:
        published = [s.published for s in _publishable(config)]
    except SourceError:
        published = None  # the source's failure is among the problems already
    return [_age_note(config, i, now or datetime.now(UTC), published) for i in range(len(config.partners))]


def _age_note(config: Config, index: int, now: datetime, published: list[datetime] | None) -> str:
    """The age limit of ``partners[index]``, and how many of the statements on hand it would hold back if new."""
    partner = config.partners[index]
    days = config.partner_max_age_days(partner)
    key = "partner_defaults" if partner.max_age_days is None else f"partners[{index}]"
    note = f"note: partner {partner.name}: a statement first seen over {days} day(s) after its publication"
    note += f" is not pushed ({key}.max_age_days)"
    if published is None:
        return note
    older = sum(now - moment > timedelta(days=days) for moment in published)
    return note + f"; {older} of the {len(published)} statements here are that old"


def _publishable(config: Config) -> list[Statement]:
    """The statements the source holds that read cleanly and are meant to be published."""
    scan = make_source(config).scan({})
    return [s for s in resolve_duplicates(scan, {})[0] if not (s.draft or s.retracted)]


def statement_count(config: Config) -> int:
    """How many statements the source holds that read cleanly (for the summary line)."""
    scan = make_source(config).scan({})
    return len(resolve_duplicates(scan, {})[0])
