"""What a partner receives for one event: an Atom entry document (or JSON), or a retraction.

Every payload carries what the organisation's terms demand of a copy: the
same ``tag:`` id as the feeds, the canonical link, the rights text, the
attribution line with its active link, and ``atom:source`` naming the
organisation's feed. A partner with an ``excerpt`` licence gets the first
words, cut where a sentence or paragraph ends, then "Read the full statement
at" and the link; a ``full`` licence gets the whole text as published. The
licence holds in every field (the summary too): each payload is made from
what :func:`syndicate.render.licence.allowed` allows of the revision. A
retraction is an RFC 6721 ``at:deleted-entry``.

The entry is the feed's own (:class:`EntryRenderer`, with its fixes for
feedgen) with the content the licence allows. The bytes depend only on the
revision and the partner's settings, so every retry sends the same body.

Nothing is cached here: one revision is cut differently for each licence, so
an entry cached by statement would carry one partner's text to another. The
webhook composer renders each (revision, licence, format) once per batch.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2
from lxml import etree
from markupsafe import escape

from syndicate.config import Config, PartnerConfig, SiteConfig
from syndicate.model import Change, Revision
from syndicate.render.documents import CONTENT_TYPES, DocumentRenderer
from syndicate.render.entries import ATOM, TOMBSTONES, XML_LANG, EntryRenderer
from syndicate.render.layout import SITE
from syndicate.render.licence import allowed

ATOM_TYPE = "application/atom+xml"
JSON_TYPE = "application/json"
READ_MORE = '<p class="read-more">Read the full statement at <a href="{url}">{url}</a></p>'


@dataclass(frozen=True)
class Payload:
    """The body of one push and its media type."""

    body: bytes
    content_type: str


@dataclass(frozen=True)
class FeedSource:
    """The organisation's feed, as ``atom:source`` names it."""

    id: str
    title: str
    url: str
    type: str


class PartnerRenderer:
    """Makes the payload of each event for each partner's licence and format."""

    def __init__(self, config: Config, attribution_html: jinja2.Template, attribution_text: jinja2.Template) -> None:
        self.site = config.site
        # The whole text always: what a partner's licence withholds is cut from the revision beforehand.
        self.entries = EntryRenderer(config.site, True, attribution_html, attribution_text)
        fmt = "atom" if "atom" in config.feeds.formats else config.feeds.formats[0]
        documents = DocumentRenderer(config, self.entries)
        url = documents.url(SITE.path(fmt))
        self.source = FeedSource(url, documents.title(SITE), url, CONTENT_TYPES[fmt])

    def render(self, revision: Revision, partner: PartnerConfig, kind: str | None = None) -> Payload:
        """The payload telling ``partner`` of ``revision``; ``kind`` names the event in JSON (default: its change)."""
        kind = kind or f"statement.{revision.change.value}"
        retracted = revision.change == Change.RETRACTED
        permitted = allowed(revision, partner)  # every field below is made from this, never from ``revision``
        if partner.format == "json":
            data = self._json_retraction(permitted) if retracted else self._json_entry(permitted, partner)
            payload = {"type": kind, "timestamp": self._time(permitted), "data": data}
            return Payload(json.dumps(payload, ensure_ascii=False).encode(), JSON_TYPE)
        root = self._tombstone(permitted) if retracted else self._entry(permitted, partner)
        return Payload(_xml(root), ATOM_TYPE)

    def content(self, revision: Revision, partner: PartnerConfig) -> str:
        """The HTML the partner may show: what its licence allows, then the attribution line."""
        return self._content(allowed(revision, partner), partner)

    def _content(self, permitted: Revision, partner: PartnerConfig) -> str:
        """The content of a revision already cut to the licence: for an excerpt the link to the whole, then the attribution."""
        text = permitted.body_html.rstrip()
        if partner.license != "full":
            text = f"{text}\n{READ_MORE.format(url=escape(permitted.canonical_url))}".lstrip()
        return f"{text}\n{self.entries.attribution(permitted, html=True)}"

    def _time(self, revision: Revision) -> str:
        return revision.updated.astimezone(self.site.tz).isoformat()

    def _entry(self, revision: Revision, partner: PartnerConfig) -> etree._Element:
        entry = copy.deepcopy(self.entries.entry(revision, "atom"))
        content = entry.find(f"{{{ATOM}}}content")
        assert content is not None, "EntryRenderer always writes atom:content"
        content.text = self._content(revision, partner)
        entry.append(self._source())
        root = etree.Element(f"{{{ATOM}}}entry", nsmap={None: ATOM})  # type: ignore[dict-item]
        root.set(XML_LANG, revision.lang)
        root.extend(list(entry))
        return root

    def _tombstone(self, revision: Revision) -> etree._Element:
        element = self.entries.tombstone(revision)
        root = etree.Element(element.tag, nsmap={"at": TOMBSTONES, None: ATOM})  # type: ignore[dict-item]
        for name, value in element.attrib.items():
            root.set(name, value)
        root.set(XML_LANG, revision.lang)
        etree.SubElement(root, f"{{{TOMBSTONES}}}comment").text = f"Retracted by {self.site.title}."
        root.extend(list(element))
        root.find(f"{{{ATOM}}}link").set("rel", "alternate")  # type: ignore[union-attr]
        root.append(self._source())
        return root

    def _source(self) -> etree._Element:
        source = etree.Element(f"{{{ATOM}}}source")
        etree.SubElement(source, f"{{{ATOM}}}id").text = self.source.id
        etree.SubElement(source, f"{{{ATOM}}}title").text = self.source.title
        etree.SubElement(source, f"{{{ATOM}}}link", rel="self", href=self.source.url, type=self.source.type)
        if self.site.rights:
            etree.SubElement(source, f"{{{ATOM}}}rights").text = self.site.rights
        return source

    def _json_entry(self, revision: Revision, partner: PartnerConfig) -> dict[str, Any]:
        item = dict(self.entries.entry(revision, "json"))
        extra = item.pop("_syndicate")
        item["content_html"] = self._content(revision, partner)
        return {**item, **extra, "license": partner.license, "source": self._json_source()}

    def _json_retraction(self, revision: Revision) -> dict[str, Any]:
        return {
            "id": revision.tag_id,
            "url": revision.canonical_url,
            "title": revision.title,
            "language": revision.lang,
            "date_deleted": self._time(revision),
            "rights": self.site.rights,
            "source": self._json_source(),
        }

    def _json_source(self) -> dict[str, str]:
        return {"id": self.source.id, "title": self.source.title, "feed_url": self.source.url}


def probe_revision(site: SiteConfig, now: datetime) -> Revision:
    """A revision that is no statement, for checking a partner's endpoint and signature."""
    moment = now.astimezone(site.tz)
    return Revision(
        seq=0,
        statement_id="syndicate-test",
        change=Change.PUBLISHED,
        tag_id=f"tag:{site.host},{moment.date().isoformat()}:test/{moment:%Y%m%dT%H%M%S}",
        title=f"Test push from {site.title}",
        published=now,
        updated=now,
        lang=site.language,
        author=site.author or site.title,
        canonical_url=site.url,
        summary="A test of the webhook endpoint and its signature; not a statement.",
        body_html="<p>This is a test of the webhook endpoint and its signature. It is not a statement: "
        "do not publish it.</p>",
        body_text="This is a test of the webhook endpoint and its signature. It is not a statement: do not publish it.",
    )


def _xml(root: etree._Element) -> bytes:
    etree.cleanup_namespaces(root, top_nsmap=root.nsmap)  # type: ignore[arg-type]
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
