"""The ``feed`` source: an existing RSS/Atom feed of the organisation's CMS.

Its HTML is untrusted and is sanitised with nh3. A fetch that fails, a body
that is not well-formed XML (a truncated download would otherwise be salvaged
into truncated statements) or a document that is no RSS or Atom raises
:class:`SourceError`, and ingest keeps the last good state; an item missing
from the feed is not a retraction, since a feed only shows its newest items.
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
import nh3
import requests

from syndicate.config import LANGUAGE_TAG, SiteConfig
from syndicate.errors import SourceError
from syndicate.model import Problem, Scan, Statement
from syndicate.text import XML_ILLEGAL, excerpt_words, html_to_text, one_line, slugify

SUMMARY_WORDS = 40


@dataclass(frozen=True)
class EntryDefaults:
    """What an entry that does not say inherits from its feed (RFC 4287 4.2.1), else from the site."""

    lang: str
    author: str


class FeedSource:
    """Statements read from a remote RSS or Atom feed."""

    def __init__(self, url: str, site: SiteConfig, session: requests.Session, timeout: float) -> None:
        self.url = url
        self.site = site
        self.session = session
        self.timeout = timeout

    def scan(self, known: Mapping[str, str]) -> Scan:
        """Fetch the feed and read the entries that are new or changed."""
        body, headers = self._fetch()
        parsed = feedparser.parse(body, response_headers=headers)
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
        location makes relative links absolute.
        """
        try:
            response = self.session.get(self.url, timeout=(self.timeout, self.timeout))
            response.raise_for_status()
        except requests.RequestException as exc:
            raise SourceError(f"feed {self.url} could not be fetched: {exc}") from exc
        declared = "charset" in response.headers.get("content-type", "").lower() and response.encoding
        content_type = f"application/xml; charset={declared}" if declared else "application/xml"
        return response.content, {"content-location": response.url, "content-type": content_type}

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
        scan.statements.append(self._statement(entry, guid, ref, fingerprint, published, defaults))

    def _statement(
        self, entry: Any, guid: str, ref: str, fingerprint: str, published: datetime, defaults: EntryDefaults
    ) -> Statement:
        body = nh3.clean(XML_ILLEGAL.sub("", _content(entry)))
        text = html_to_text(body)
        categories = tuple(dict.fromkeys(one_line(t["term"]) for t in entry.get("tags", []) if t.get("term")))
        return Statement(
            id=statement_id(guid),
            title=_title(entry),
            published=published,
            updated=_time(entry, "updated"),
            lang=_lang(entry.get("title_detail", {}).get("language"), defaults.lang),
            author=one_line(entry.get("author", "")) or defaults.author,
            canonical_url=entry["link"],
            body_html=body,
            body_text=text,
            summary=excerpt_words(_summary(entry) or text, SUMMARY_WORDS),
            categories=categories,
            source_ref=ref,
            fingerprint=fingerprint,
        )


def statement_id(guid: str) -> str:
    """A stable, URL-safe id for a feed entry: a readable tail and a digest of the guid."""
    tail = slugify(guid.rstrip("/").rsplit("/", 1)[-1])[:48].strip("-") or "entry"
    return f"{tail}-{hashlib.sha256(guid.encode()).hexdigest()[:8]}"


def _title(entry: Any) -> str:
    """The entry's title as plain text (an Atom title may be HTML)."""
    title = XML_ILLEGAL.sub("", entry["title"])
    if "html" in entry.get("title_detail", {}).get("type", ""):
        title = html_to_text(nh3.clean(title))
    return one_line(title)


def _content(entry: Any) -> str:
    """The entry's fullest HTML: its content, else its summary; plain text is escaped into a paragraph."""
    for detail in [*entry.get("content", []), entry.get("summary_detail", {})]:
        value = str(detail.get("value") or "")
        if value.strip():
            return value if "html" in detail.get("type", "text/html") else f"<p>{html.escape(value)}</p>"
    return ""


def _summary(entry: Any) -> str:
    detail = entry.get("summary_detail", {})
    value = XML_ILLEGAL.sub("", str(detail.get("value") or ""))
    return html_to_text(nh3.clean(value)) if "html" in detail.get("type", "text/html") else value


def _time(entry: Any, key: str) -> datetime | None:
    # dict.get: feedparser's own get() answers "updated" with "published" (and warns) when there is none.
    parsed = dict.get(entry, f"{key}_parsed")
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC) if parsed else None


def _lang(value: Any, default: str) -> str:
    if isinstance(value, str) and LANGUAGE_TAG.match(value.strip()):
        return value.strip()
    return default
