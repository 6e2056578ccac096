"""The ``feed`` source: an existing RSS/Atom feed of the organisation's CMS.

Its HTML is untrusted and is sanitised with nh3. A fetch that fails or a feed
that does not parse raises :class:`SourceError`, and ingest keeps the last
good state; an item missing from the feed is not a retraction, since a feed
only shows its newest items.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser
import nh3
import requests

from syndicate.config import LANGUAGE_TAG, SiteConfig
from syndicate.errors import SourceError
from syndicate.model import Problem, Scan, Statement
from syndicate.text import XML_ILLEGAL, excerpt_words, html_to_text, one_line, slugify

SUMMARY_WORDS = 40


class FeedSource:
    """Statements read from a remote RSS or Atom feed."""

    def __init__(self, url: str, site: SiteConfig, session: requests.Session, timeout: float) -> None:
        self.url = url
        self.site = site
        self.session = session
        self.timeout = timeout

    def scan(self, known: Mapping[str, str]) -> Scan:
        """Fetch the feed and read the entries that are new or changed."""
        parsed = feedparser.parse(self._fetch())
        if parsed.bozo and not parsed.entries:
            raise SourceError(f"feed {self.url} does not parse: {parsed.get('bozo_exception')}")
        scan = Scan(complete=False)
        default_lang = _lang(parsed.feed.get("language"), self.site.language)
        for index, entry in enumerate(parsed.entries, start=1):
            self._entry(entry, index, default_lang, known, scan)
        return scan

    def _fetch(self) -> bytes:
        try:
            response = self.session.get(self.url, timeout=(self.timeout, self.timeout))
            response.raise_for_status()
        except requests.RequestException as exc:
            raise SourceError(f"feed {self.url} could not be fetched: {exc}") from exc
        return response.content

    def _entry(self, entry: Any, index: int, lang: str, known: Mapping[str, str], scan: Scan) -> None:
        guid = entry.get("id") or entry.get("link")
        where = f"{self.url} (entry {index})"
        if not guid or not entry.get("title") or not entry.get("link"):
            scan.problems.append(Problem(where, "entry has no id, title or link; skipped"))
            return
        ref = f"feed:{guid}"
        fingerprint = hashlib.sha256(repr(sorted(entry.items())).encode()).hexdigest()
        if known.get(ref) == fingerprint:
            scan.unchanged.add(ref)
            return
        published = _time(entry, "published") or _time(entry, "updated")
        if published is None:
            scan.problems.append(Problem(where, f"entry {guid!r} has no date; skipped"))
            scan.unreadable.add(ref)
            return
        scan.statements.append(self._statement(entry, guid, ref, fingerprint, published, lang))

    def _statement(
        self, entry: Any, guid: str, ref: str, fingerprint: str, published: datetime, lang: str
    ) -> Statement:
        body = nh3.clean(XML_ILLEGAL.sub("", _content(entry)))
        text = html_to_text(body)
        categories = tuple(dict.fromkeys(one_line(t["term"]) for t in entry.get("tags", []) if t.get("term")))
        return Statement(
            id=statement_id(guid),
            title=one_line(XML_ILLEGAL.sub("", entry["title"])),
            published=published,
            updated=_time(entry, "updated"),
            lang=_lang(entry.get("language"), lang),
            author=one_line(entry.get("author", "")) or self.site.author or self.site.title,
            canonical_url=entry["link"],
            body_html=body,
            body_text=text,
            summary=excerpt_words(html_to_text(nh3.clean(entry.get("summary", ""))) or text, SUMMARY_WORDS),
            categories=categories,
            source_ref=ref,
            fingerprint=fingerprint,
        )


def statement_id(guid: str) -> str:
    """A stable, URL-safe id for a feed entry: a readable tail and a digest of the guid."""
    tail = slugify(guid.rstrip("/").rsplit("/", 1)[-1])[:48].strip("-") or "entry"
    return f"{tail}-{hashlib.sha256(guid.encode()).hexdigest()[:8]}"


def _content(entry: Any) -> str:
    for content in entry.get("content", []):
        if "html" in content.get("type", "") and content.get("value"):
            return str(content["value"])
    return str(entry.get("summary", ""))


def _time(entry: Any, key: str) -> datetime | None:
    parsed = entry.get(f"{key}_parsed")
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC) if parsed else None


def _lang(value: Any, default: str) -> str:
    if isinstance(value, str) and LANGUAGE_TAG.match(value.strip()):
        return value.strip()
    return default
