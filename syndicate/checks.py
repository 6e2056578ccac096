"""``syndicate check``: read config, statements and templates; report every problem; change nothing.

Besides the statements and templates, it looks at what the configuration
needs from outside itself: the secrets its ``_env`` keys name, the DKIM key
file, and links that one-click unsubscribe needs to be https.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

from syndicate.config import Config
from syndicate.deliver.email.dkim import Signer
from syndicate.deliver.webhooks import SecretError
from syndicate.deliver.webhooks.signing import signer_for
from syndicate.errors import ConfigError, SourceError
from syndicate.ingest import resolve_duplicates
from syndicate.model import Problem, Severity
from syndicate.render import templates
from syndicate.render.email import REQUIRED_TEMPLATES as EMAIL_TEMPLATES
from syndicate.sources import make_source
from syndicate.web.pages import REQUIRED_TEMPLATES as WEB_TEMPLATES

REQUIRED_TEMPLATES = ("feeds/attribution.html", "feeds/attribution.txt", *EMAIL_TEMPLATES, *WEB_TEMPLATES)


def check(config: Config, config_path: Path | None = None) -> list[Problem]:
    """Every problem with the statements, templates and settings of ``config`` (no database touched)."""
    where = str(config_path or config.root / "config.toml")
    return [*_statements(config), *templates.check(config.templates.dir, REQUIRED_TEMPLATES), *_settings(config, where)]


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
    problems = []
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
    if not _https_or_loopback(config.web_base_url):
        message = f"web.base_url: {config.web_base_url} is not https; mail providers honour one-click unsubscribe (RFC 8058) only over https"
        problems.append(Problem(where, message, severity=Severity.WARNING))
    return problems


def _https_or_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    try:
        return ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        return parts.hostname == "localhost"


def statement_count(config: Config) -> int:
    """How many statements the source holds that read cleanly (for the summary line)."""
    scan = make_source(config).scan({})
    return len(resolve_duplicates(scan, {})[0])
