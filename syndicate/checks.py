"""``syndicate check``: read config, statements and templates; report every problem; change nothing."""

from __future__ import annotations

from syndicate.config import Config
from syndicate.errors import SourceError
from syndicate.ingest import resolve_duplicates
from syndicate.model import Problem
from syndicate.render import templates
from syndicate.render.email import REQUIRED_TEMPLATES as EMAIL_TEMPLATES
from syndicate.sources import make_source
from syndicate.web.pages import REQUIRED_TEMPLATES as WEB_TEMPLATES

REQUIRED_TEMPLATES = ("feeds/attribution.html", "feeds/attribution.txt", *EMAIL_TEMPLATES, *WEB_TEMPLATES)


def check(config: Config) -> list[Problem]:
    """Every problem with the statements and templates ``config`` points at (no database touched)."""
    source = make_source(config)
    try:
        scan = source.scan({})
    except SourceError as exc:
        return [Problem(config.source.url or str(config.source.path), str(exc))]
    _, duplicates = resolve_duplicates(scan, {}, source.display)
    problems = [*scan.problems, *duplicates]
    problems += templates.check(config.templates.dir, REQUIRED_TEMPLATES)
    return problems


def statement_count(config: Config) -> int:
    """How many statements the source holds that read cleanly (for the summary line)."""
    scan = make_source(config).scan({})
    return len(resolve_duplicates(scan, {})[0])
