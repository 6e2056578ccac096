"""Feed documents as bytes: a feed-level frame from feedgen, the entries, the archive links.

The same records always give the same bytes: nothing here reads the clock, and
a document's ``updated`` is its newest entry's real change (an open page not
yet holding any is as new as the sealed page before it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from feedgen.feed import FeedGenerator
from lxml import etree

from syndicate import __version__
from syndicate.config import Config
from syndicate.model import Revision
from syndicate.render.entries import ATOM, HISTORY, NAMESPACES, EntryRenderer, Fragment
from syndicate.render.layout import Document, FeedSpec, Record, newest_first

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
CONTENT_TYPES = {"atom": "application/atom+xml", "rss": "application/rss+xml", "json": "application/feed+json"}
GENERATOR_URI = "https://github.com/syndicate/syndicate"


@dataclass
class DocumentRenderer:
    """Turns a :class:`Document` and its revisions into the bytes of one file."""

    config: Config
    entries: EntryRenderer

    def render(self, doc: Document, fmt: str, revisions: dict[int, Revision]) -> bytes:
        """The document in ``fmt``: ``atom``, ``rss`` or ``json``."""
        shown = [(r, revisions[r.seq]) for r in newest_first(doc.records)]
        dating = [rev for _, rev in shown] or [revisions[r.seq] for r in doc.context]
        updated = max((rev.updated for rev in dating), default=EPOCH)
        make = {"atom": self._atom, "rss": self._rss, "json": self._json}[fmt]
        return make(doc, shown, updated)

    def url(self, path: str) -> str:
        """Public URL of a file under ``feeds.dir``."""
        return self.config.feeds_base_url + quote(path, safe="/")

    def title(self, feed: FeedSpec) -> str:
        """The feed's title as readers see it."""
        site = self.config.site.title
        if feed.category:
            return f"{site}: {feed.category}"
        return f"{site} ({feed.lang})" if feed.lang else site

    def _links(self, doc: Document, fmt: str) -> list[tuple[str, str, str]]:
        """(rel, href, type) of the feed-level links: self, hubs, archive neighbours."""
        kind = CONTENT_TYPES[fmt]
        links = [("self", self.url(doc.path(fmt)), kind)]
        links += [("hub", hub, "") for hub in self.config.feeds.hubs]
        if doc.kind != "subscription":
            links.append(("current", self.url(doc.feed.path(fmt)), kind))
        if doc.prev_page:
            links.append(("prev-archive", self.url(doc.feed.path(fmt, doc.prev_page)), kind))
        if doc.next_page:
            links.append(("next-archive", self.url(doc.feed.path(fmt, doc.next_page)), kind))
        return links

    def _frame(self, doc: Document, fmt: str, updated: datetime) -> FeedGenerator:
        site = self.config.site
        fg = FeedGenerator()
        fg.id(self.url(doc.feed.path(fmt)))
        fg.title(self.title(doc.feed))
        fg.description(f"Statements published by {site.title}")
        fg.author({"name": site.author or site.title})
        fg.link(href=self.url(doc.path(fmt)), rel="self", type=CONTENT_TYPES[fmt])
        # feedgen makes the RSS <link> of the last link given, whatever its rel: the home page goes last.
        fg.link(href=site.url, rel="alternate", type="text/html")
        fg.language(doc.feed.lang or site.language)
        fg.updated(updated.astimezone(site.tz))
        fg.generator("syndicate", version=__version__, uri=GENERATOR_URI)
        if site.rights:
            fg.rights(site.rights)
        return fg

    def _atom(self, doc: Document, shown: list[tuple[Record, Revision]], updated: datetime) -> bytes:
        frame = etree.fromstring(self._frame(doc, "atom", updated).atom_str())
        root = _renamespaced(frame, NAMESPACES["atom"])
        for link in root.findall(f"{{{ATOM}}}link"):
            root.remove(link)
        position = next(i for i, child in enumerate(root) if child.tag == f"{{{ATOM}}}updated") + 1
        for rel, href, kind in reversed(self._links(doc, "atom")):
            root.insert(position, _link(f"{{{ATOM}}}link", rel, href, kind))
        root.insert(position, _link(f"{{{ATOM}}}link", "alternate", self.config.site.url, "text/html"))
        if doc.kind == "sealed":
            etree.SubElement(root, f"{{{HISTORY}}}archive")
        # RFC 4287 puts every extension element of the feed before its entries, tombstones included.
        tombstones = [self.entries.fragment(rev, "atom", tombstone=True) for record, rev in shown if record.tombstone]
        entries = [self.entries.fragment(rev, "atom") for record, rev in shown if not record.tombstone]
        return _joined(root, b"</feed>", tombstones + entries)

    def _rss(self, doc: Document, shown: list[tuple[Record, Revision]], updated: datetime) -> bytes:
        frame = etree.fromstring(self._frame(doc, "rss", updated).rss_str())
        root = _renamespaced(frame, NAMESPACES["rss"])
        channel = root.find("channel")
        assert channel is not None
        for link in channel.findall(f"{{{ATOM}}}link"):
            channel.remove(link)
        for rel, href, kind in self._links(doc, "rss"):
            channel.append(_link(f"{{{ATOM}}}link", rel, href, kind))
        if doc.kind == "sealed":
            etree.SubElement(channel, f"{{{HISTORY}}}archive")
        items = [self.entries.fragment(rev, "rss") for record, rev in shown if not record.tombstone]
        return _joined(root, b"  </channel>", items)

    def _json(self, doc: Document, shown: list[tuple[Record, Revision]], updated: datetime) -> bytes:
        site = self.config.site
        links = {rel: href for rel, href, _ in self._links(doc, "json")}
        feed: dict[str, Any] = {
            "version": JSON_FEED_VERSION,
            "title": self.title(doc.feed),
            "home_page_url": site.url,
            "feed_url": links["self"],
            "description": f"Statements published by {site.title}",
            "language": doc.feed.lang or site.language,
            "authors": [{"name": site.author or site.title}],
        }
        if self.config.feeds.hubs:
            feed["hubs"] = [{"type": "WebSub", "url": hub} for hub in self.config.feeds.hubs]
        if "prev-archive" in links:
            feed["next_url"] = links["prev-archive"]
        feed["_syndicate"] = {"updated": updated.astimezone(site.tz).isoformat(), "archive": links}
        items = [self.entries.fragment(rev, "json").data for record, rev in shown if not record.tombstone]
        return _json_document(feed, items)


def _renamespaced(frame: etree._Element, nsmap: dict[str | None, str]) -> etree._Element:
    """The same element, declaring every namespace the document may use once, at the root (``_joined`` trims them)."""
    root = etree.Element(frame.tag, nsmap=nsmap)  # type: ignore[arg-type]
    for name, value in frame.attrib.items():
        root.set(name, value)
    root.text = frame.text
    root.extend(list(frame))
    return root


def _link(tag: str, rel: str, href: str, kind: str) -> etree._Element:
    element = etree.Element(tag, rel=rel, href=href)
    if kind:
        element.set("type", kind)
    return element


def _joined(root: etree._Element, closing: bytes, fragments: list[Fragment]) -> bytes:
    """The frame, pretty-printed, with the entries' bytes put in before ``closing``.

    The root declares each namespace that the frame or one of the entries uses,
    and no other: an unused declaration is a validator's warning, not a harmless extra.
    """
    by_entries = frozenset().union(*(fragment.namespaces for fragment in fragments))
    keep = [prefix for prefix, uri in root.nsmap.items() if prefix and uri in by_entries]
    etree.cleanup_namespaces(root, keep_ns_prefixes=keep)
    frame = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    if not fragments:
        return frame
    cut = frame.rindex(closing)
    return frame[:cut] + b"".join(fragment.data for fragment in fragments) + frame[cut:]


def _json_document(feed: dict[str, Any], items: list[bytes]) -> bytes:
    """JSON Feed text: one key per line, one item per line (each item serialised once per build)."""
    head = [f'  "{key}": {json.dumps(value, ensure_ascii=False)}'.encode() for key, value in feed.items()]
    body = b",\n".join(b"    " + item for item in items)
    items_part = b'  "items": [\n' + body + b"\n  ]" if items else b'  "items": []'
    return b"{\n" + b",\n".join([*head, items_part]) + b"\n}\n"
