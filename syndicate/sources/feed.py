"""The ``feed`` source: an existing RSS/Atom feed of the organisation's CMS.

Its HTML is untrusted and goes through the one allow-list every source uses
(:func:`~syndicate.text.sanitise_html`); its text, once feedparser has decoded
it, is cleaned of what XML cannot carry, and what was removed is reported.
The fetch is bounded in bytes, time and redirects (:mod:`syndicate.sources.fetch`).
A fetch that fails, a body that is not well-formed XML (a truncated download
would otherwise be salvaged into truncated statements) or a document that is
no RSS or Atom raises :class:`SourceError`, and ingest keeps the last good
state; an item missing from the feed is not a retraction, since a feed only
shows its newest items.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import xml.sax
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser
import requests

from syndicate.config import LANGUAGE_TAG, SiteConfig
from syndicate.errors import SourceError
from syndicate.model import Problem, Scan, Severity, Statement
from syndicate.sources.fetch import FetchLimits, fetch
from syndicate.text import Removed, excerpt_words, html_to_text, one_line, sanitise_html, slugify, xml_clean

SUMMARY_WORDS = 40
MAX_DEPTH = 8


@dataclass(frozen=True)
class EntryDefaults:
    """What an entry that does not say inherits from its feed (RFC 4287 4.2.1), else from the site."""

    lang: str
    author: str


class FeedSource:
    """Statements read from a remote RSS or Atom feed."""

    def __init__(self, url: str, site: SiteConfig, session: requests.Session, limits: FetchLimits) -> None:
        self.url = url
        self.site = site
        self.session = session
        self.limits = limits

    def scan(self, known: Mapping[str, str]) -> Scan:
        """Fetch the feed and read the entries that are new or changed."""
        body, headers = self._fetch()
        return self.parse(body, headers, known)

    def parse(self, body: bytes, headers: Mapping[str, str], known: Mapping[str, str]) -> Scan:
        """Read the entries of a fetched feed (``headers`` as feedparser should believe them)."""
        # feedparser's own HTML sanitiser is off: every entry's HTML goes through the one nh3 allow-list
        # (text.sanitise_html) like a file's, and feedparser's scans an unclosed comment in quadratic time
        # (256 KB of "[<!--" took 9.6 s; a hypothesis shape of tests/test_linear_parsers.py found it).
        parsed = feedparser.parse(body, response_headers=dict(headers), sanitize_html=False)
        error = parsed.get("bozo_exception")
        if isinstance(error, xml.sax.SAXParseException):
            where = f"line {error.getLineNumber()}, column {error.getColumnNumber()}"
            raise SourceError(f"feed {self.url} is not well-formed XML ({where}): {error.getMessage()}")
        if not parsed.get("version"):
            raise SourceError(f"feed {self.url} is not an RSS or Atom feed: {error or 'no feed element found'}")
        scan = Scan(complete=False)
        defaults = EntryDefaults(
            _lang(parsed.feed.get("language"), self.site.language),
            one_line(parsed.feed.get("author", "")) or self.site.author or self.site.title,
        )
        for index, entry in enumerate(parsed.entries, start=1):
            self._entry(entry, index, defaults, known, scan)
        return scan

    def display(self, ref: str) -> str:
        """The feed's URL and the entry's guid."""
        return f"{self.url} (entry {ref.removeprefix('feed:')})"

    def _fetch(self) -> tuple[bytes, dict[str, str]]:
        """The feed's bytes, and the headers feedparser should believe.

        The content type is always XML, so that a feed that is not well-formed
        is reported rather than read by feedparser's lenient HTML parser; the
        location (after redirects) makes relative links absolute.
        """
        fetched = fetch(self.session, self.url, self.limits)
        content_type = f"application/xml; charset={fetched.charset}" if fetched.charset else "application/xml"
        return fetched.body, {"content-location": fetched.url, "content-type": content_type}

    def _entry(self, entry: Any, index: int, defaults: EntryDefaults, known: Mapping[str, str], scan: Scan) -> None:
        guid = entry.get("id") or entry.get("link")
        where = f"{self.url} (entry {index})"
        if not guid or not entry.get("title") or not entry.get("link"):
            scan.problems.append(Problem(where, "entry has no id, title or link; skipped"))
            return
        if urlsplit(entry["link"]).scheme not in ("http", "https"):
            # The link goes into every copy as the active link back: nothing but a web address will do.
            scan.problems.append(Problem(where, f"entry link {entry['link'][:80]!r} is not an http(s) URL; skipped"))
            return
        ref = f"feed:{guid}"
        fingerprint = hashlib.sha256(repr((sorted(entry.items()), defaults)).encode()).hexdigest()
        if known.get(ref) == fingerprint:
            scan.unchanged.add(ref)
            return
        published = _time(entry, "published") or _time(entry, "updated")
        if published is None:
            scan.problems.append(Problem(where, f"entry {guid!r} has no date; skipped"))
            scan.unreadable.add(ref)
            return
        removed: list[Removed] = []
        entry = _cleaned(entry, removed)
        scan.statements.append(self._statement(entry, guid, ref, fingerprint, published, defaults, removed))
        if removed:
            first = next((r.first for r in removed if r.count), "")
            total = Removed(sum(r.count for r in removed), first, sum(r.deep for r in removed))
            scan.problems.append(Problem(where, f"{total} in entry {guid!r}", severity=Severity.WARNING))

    def _statement(
        self,
        entry: Any,
        guid: str,
        ref: str,
        fingerprint: str,
        published: datetime,
        defaults: EntryDefaults,
        removed: list[Removed],
    ) -> Statement:
        body = _sanitised(_content(entry), removed)
        text = html_to_text(body)
        categories = tuple(dict.fromkeys(one_line(t["term"]) for t in entry.get("tags", []) if t.get("term")))
        return Statement(
            id=statement_id(guid),
            title=_title(entry, removed),
            published=published,
            updated=_time(entry, "updated"),
            lang=_lang(entry.get("title_detail", {}).get("language"), defaults.lang),
            author=one_line(entry.get("author", "")) or defaults.author,
            canonical_url=entry["link"],
            body_html=body,
            body_text=text,
            summary=excerpt_words(_summary(entry, removed) or text, SUMMARY_WORDS),
            categories=categories,
            source_ref=ref,
            fingerprint=fingerprint,
        )


def statement_id(guid: str) -> str:
    """A stable, URL-safe id for a feed entry: a readable tail and a digest of the guid."""
    tail = slugify(guid.rstrip("/").rsplit("/", 1)[-1])[:48].strip("-") or "entry"
    return f"{tail}-{hashlib.sha256(guid.encode()).hexdigest()[:8]}"


def _cleaned(value: Any, removed: list[Removed], depth: int = 0) -> Any:
    """A copy of feedparser's entry whose text holds nothing XML cannot carry (its entities are decoded).

    Mappings keep their type (feedparser's dict answers aliases); times and
    other values are kept as they are. Entries are a few levels deep; deeper
    is not walked.
    """
    if isinstance(value, str):
        clean, found = xml_clean(value)
        if found:
            removed.append(found)
        return clean
    if depth > MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return type(value)({key: _cleaned(item, removed, depth + 1) for key, item in value.items()})
    if type(value) is list:
        return [_cleaned(item, removed, depth + 1) for item in value]
    return value


def _sanitised(fragment: str, removed: list[Removed]) -> str:
    """HTML through the one allow-list; what its decoded references brought in is removed and noted."""
    safe, found = sanitise_html(fragment)
    if found:
        removed.append(found)
    return safe


def _title(entry: Any, removed: list[Removed]) -> str:
    """The entry's title as plain text (an Atom title may be HTML)."""
    title = entry["title"]
    if "html" in entry.get("title_detail", {}).get("type", ""):
        title = html_to_text(_sanitised(title, removed))
    return one_line(title)


def _content(entry: Any) -> str:
    """The entry's fullest HTML: its content, else its summary; plain text is escaped into a paragraph."""
    for detail in [*entry.get("content", []), entry.get("summary_detail", {})]:
        value = str(detail.get("value") or "")
        if value.strip():
            return value if "html" in detail.get("type", "text/html") else f"<p>{html.escape(value)}</p>"
    return ""


def _summary(entry: Any, removed: list[Removed]) -> str:
    detail = entry.get("summary_detail", {})
    value = str(detail.get("value") or "")
    return html_to_text(_sanitised(value, removed)) if "html" in detail.get("type", "text/html") else value


def _time(entry: Any, key: str) -> datetime | None:
    # dict.get: feedparser's own get() answers "updated" with "published" (and warns) when there is none.
    parsed = dict.get(entry, f"{key}_parsed")
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC) if parsed else None


def _lang(value: Any, default: str) -> str:
    if isinstance(value, str) and LANGUAGE_TAG.match(value.strip()):
        return value.strip()
    return default
