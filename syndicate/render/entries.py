"""One revision as a feed entry, in each format; made once per build and reused by every document.

An :class:`EntryRenderer` holds the settings and caches nothing; each build
takes its own :meth:`EntryRenderer.for_build`, whose cache lives and dies with
the build (a daemon runs for months: nothing is kept from one build to the next).

feedgen builds the Atom entry and the RSS item. What feedgen 1.0.0 gets wrong
or cannot say is set on the element it returns (tested on the output):
entry links lose every attribute but ``href`` (feedgen issue #135), entries
carry no ``xml:lang``, and RSS items have no author name, language, rights or
updated time (added as ``dc:`` and ``atom:`` elements).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import jinja2
from feedgen.entry import FeedEntry
from lxml import etree
from markupsafe import escape

from syndicate.config import SiteConfig
from syndicate.model import Revision

ATOM = "http://www.w3.org/2005/Atom"
DC = "http://purl.org/dc/elements/1.1/"
TOMBSTONES = "http://purl.org/atompub/tombstones/1.0"
HISTORY = "http://purl.org/syndication/history/1.0"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"
XML_LANG = f"{{{XML_NAMESPACE}}}lang"


class Fragment(NamedTuple):
    """An entry's bytes for its place in a document, and the namespaces they use (the root declares them)."""

    data: bytes
    namespaces: frozenset[str]


@dataclass(frozen=True)
class EntryRenderer:
    """Makes entries for one site, each time anew; :meth:`for_build` gives one that keeps them for a build."""

    site: SiteConfig
    full_content: bool
    attribution_html: jinja2.Template
    attribution_text: jinja2.Template

    def for_build(self) -> BuildEntries:
        """A renderer for one build: each entry made and serialised once, forgotten when the build drops it."""
        return BuildEntries(self.site, self.full_content, self.attribution_html, self.attribution_text)

    def entry(self, revision: Revision, fmt: str) -> Any:
        """The entry for ``revision`` in ``fmt`` (an lxml element, or a dict for JSON)."""
        return getattr(self, f"_{fmt}")(revision)

    def fragment(self, revision: Revision, fmt: str, *, tombstone: bool = False) -> Fragment:
        """The entry as bytes, indented for its place in a document.

        The namespaces are declared once on the document's root, so the
        redeclarations lxml writes on a lone element are left out; the
        fragment says which it uses, so the root declares those and no more.
        """
        if fmt == "json":
            return Fragment(json.dumps(self.entry(revision, "json"), ensure_ascii=False).encode(), frozenset())
        element = copy.deepcopy(self.tombstone(revision) if tombstone else self.entry(revision, fmt))
        return Fragment(_serialised(element, fmt), namespaces_used(element))

    def tombstone(self, revision: Revision) -> etree._Element:
        """An RFC 6721 ``at:deleted-entry`` saying the entry was withdrawn, and when."""
        element = etree.Element(f"{{{TOMBSTONES}}}deleted-entry", nsmap={"at": TOMBSTONES})
        element.set("ref", revision.tag_id)
        element.set("when", self._time(revision.updated).isoformat())
        link = etree.SubElement(element, f"{{{ATOM}}}link")
        link.set("href", revision.canonical_url)
        return element

    def content_html(self, revision: Revision) -> str:
        """The entry's HTML: the text (or summary) and the attribution line with its active link."""
        body = revision.body_html if self.full_content else f"<p>{escape(revision.summary)}</p>"
        return f"{body.rstrip()}\n{self.attribution(revision, html=True)}"

    def attribution(self, revision: Revision, *, html: bool) -> str:
        """The attribution line: who published it first, and the active link to the original."""
        template = self.attribution_html if html else self.attribution_text
        return template.render(site=self.site, entry=revision).strip()

    def _time(self, moment: datetime) -> datetime:
        return moment.astimezone(self.site.tz)

    def _atom(self, revision: Revision) -> etree._Element:
        fe = FeedEntry()
        fe.id(revision.tag_id)
        fe.title(revision.title)
        fe.updated(self._time(revision.updated))
        fe.published(self._time(revision.published))
        fe.author({"name": revision.author})
        fe.link(href=revision.canonical_url, rel="alternate", type="text/html", hreflang=revision.lang)
        fe.content(self.content_html(revision), type="html")
        fe.summary(revision.summary)
        for category in revision.categories:
            fe.category(term=category)
        if self.site.rights:
            fe.rights(self.site.rights)
        element = _in_atom_namespace(fe.atom_entry())
        element.set(XML_LANG, revision.lang)
        for link in element.findall(f"{{{ATOM}}}link"):
            link.attrib.update({"rel": "alternate", "type": "text/html", "hreflang": revision.lang})
        return element

    def _rss(self, revision: Revision) -> etree._Element:
        fe = FeedEntry()
        fe.title(revision.title)
        fe.link(href=revision.canonical_url)
        fe.guid(revision.tag_id, permalink=False)
        summary = f"<p>{escape(revision.summary)}</p>\n{self.attribution(revision, html=True)}"
        fe.description(summary)
        if self.full_content:
            fe.content(self.content_html(revision))
        for category in revision.categories:
            fe.category(term=category)
        fe.pubDate(self._time(revision.published))
        element: etree._Element = fe.rss_entry()
        _sub(element, f"{{{DC}}}creator", revision.author)
        _sub(element, f"{{{DC}}}language", revision.lang)
        if self.site.rights:
            _sub(element, f"{{{DC}}}rights", self.site.rights)
        _sub(element, f"{{{ATOM}}}updated", self._time(revision.updated).isoformat())
        return element

    def _json(self, revision: Revision) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": revision.tag_id,
            "url": revision.canonical_url,
            "title": revision.title,
            "content_html": self.content_html(revision),
            "summary": revision.summary,
            "date_published": self._time(revision.published).isoformat(),
            "date_modified": self._time(revision.updated).isoformat(),
            "authors": [{"name": revision.author}],
            "language": revision.lang,
        }
        if revision.categories:
            item["tags"] = list(revision.categories)
        item["_syndicate"] = {"rights": self.site.rights, "attribution": self.attribution(revision, html=False)}
        return item


@dataclass(frozen=True)
class BuildEntries(EntryRenderer):
    """The entries of one build: each (revision, format) made and serialised once, then reused by every document.

    The cache is keyed by the revision's sequence number, which names one
    stored revision's content for good (so it is no place for revisions cut
    to a partner's licence); it goes with this object, at the end of the build.
    """

    _cache: dict[tuple[int, str], Any] = field(default_factory=dict, compare=False, repr=False)

    def entry(self, revision: Revision, fmt: str) -> Any:
        """The entry for ``revision`` in ``fmt``, made once per build."""
        key = (revision.seq, fmt)
        if key not in self._cache:
            self._cache[key] = super().entry(revision, fmt)
        return self._cache[key]

    def fragment(self, revision: Revision, fmt: str, *, tombstone: bool = False) -> Fragment:
        """The entry as bytes for its place in a document, serialised once per build."""
        key = (revision.seq, f"{fmt}-tombstone" if tombstone else f"{fmt}-bytes")
        if key not in self._cache:
            self._cache[key] = super().fragment(revision, fmt, tombstone=tombstone)
        fragment: Fragment = self._cache[key]
        return fragment


# The prefix of every namespace a document of each format may use. Entries are serialised with these
# prefixes; a document declares on its root only those that it (or one of its entries) uses, since
# feed validators warn about every namespace declared that they do not know (RFC 6721's among them).
NAMESPACES: dict[str, dict[str | None, str]] = {
    "atom": {None: ATOM, "at": TOMBSTONES, "fh": HISTORY},
    "rss": {"atom": ATOM, "content": CONTENT, "dc": DC, "fh": HISTORY},
}
_DEPTH = {"atom": 1, "rss": 2}  # entries sit in <feed>; items in <rss><channel>


def namespaces_used(element: etree._Element) -> frozenset[str]:
    """Every namespace an element, its descendants or their attributes are in (``xml:`` needs no declaring)."""
    names = (name for node in element.iter() if isinstance(node.tag, str) for name in (node.tag, *node.attrib))
    found = {etree.QName(name).namespace for name in names}
    return frozenset(uri for uri in found if uri and uri != XML_NAMESPACE)


def _serialised(element: etree._Element, fmt: str) -> bytes:
    """An element as it sits in a pretty-printed document of ``fmt``, using the root's namespace prefixes."""
    depth = _DEPTH[fmt]
    wrapper = etree.Element(f"{{{ATOM}}}wrapper" if fmt == "atom" else "wrapper", nsmap=NAMESPACES[fmt])  # type: ignore[arg-type]
    wrapper.append(element)
    etree.indent(wrapper, space="  ", level=depth - 1)
    data = etree.tostring(wrapper, encoding="UTF-8")
    inner = data[data.index(b">") + 1 : data.rindex(b"</")]
    return inner.lstrip(b"\n").rstrip(b" ")


def _in_atom_namespace(element: etree._Element) -> etree._Element:
    """feedgen makes Atom elements in no namespace and writes ``xmlns`` as text; put them in Atom's."""
    for node in element.iter():
        if isinstance(node.tag, str) and not node.tag.startswith("{"):
            node.tag = f"{{{ATOM}}}{node.tag}"
    return element


def _sub(parent: etree._Element, tag: str, text: str) -> None:
    etree.SubElement(parent, tag).text = text
