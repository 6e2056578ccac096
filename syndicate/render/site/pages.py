"""The site's pages as bytes, from ``templates/site/`` (one layout) and the revisions they show.

The same inputs always give the same bytes: nothing here reads the clock.
Every page carries the legal notice (``site.rights``) and feed
autodiscovery; a statement's page also its OpenGraph tags, a schema.org
``NewsArticle`` in JSON-LD, ``hreflang`` alternates to its translations, and a
"quote with an active link" block.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from markupsafe import Markup

from syndicate.config import Config
from syndicate.model import Change, Revision
from syndicate.render import templates
from syndicate.render.documents import CONTENT_TYPES
from syndicate.render.email import localdate
from syndicate.render.layout import FeedSpec
from syndicate.render.site.layout import (
    INDEX,
    SITE_INDEX,
    EditionListing,
    EditionPage,
    Index,
    Listing,
    Site,
    StatementPage,
    newsletters_path,
    statement_path,
)
from syndicate.render.site.words import language_name, markup_for, speaks, words_for
from syndicate.text import excerpt_words, slugify

PAGE_TEMPLATES = ("statement.html", "listing.html", "gone.html", "editions.html", "sitemap.xml", "robots.txt")
REQUIRED_TEMPLATES = tuple(f"site/{name}" for name in ("layout.html", "pager.html", "style.css", *PAGE_TEMPLATES))
FEED_NAMES = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
DESCRIPTION_WORDS = 40


@dataclass(frozen=True)
class Link:
    """A link as a page shows it."""

    href: str
    text: str
    lang: str = ""
    type: str = ""


class Urls:
    """Where each page is: its public URL (under ``site.url``) and the path links inside the site use."""

    def __init__(self, config: Config) -> None:
        self.base = config.site.url.rstrip("/")
        self.prefix = urlsplit(self.base).path  # a site under a path, such as https://example.org/news

    def href(self, path: str) -> str:
        """The root-relative link to the page written at ``path`` (a folder's ``index.html`` as the folder).

        A category's slug may be in any script (``category/новости/``): links carry it percent-encoded.
        """
        if path == INDEX:
            return self.prefix + "/"
        if path.startswith("statements/") and path.endswith("/" + INDEX):
            return f"{self.prefix}/{quote(path.removesuffix('/' + INDEX))}"  # the canonical form: no slash
        return f"{self.prefix}/{quote(path.removesuffix(INDEX))}"

    def url(self, path: str) -> str:
        """The public URL of the page written at ``path``."""
        return self.base + self.href(path).removeprefix(self.prefix)


class SiteRenderer:
    """Turns the planned pages and their revisions into the bytes of each file."""

    def __init__(self, config: Config, env: jinja2.Environment) -> None:
        self.config = config
        self.urls = Urls(config)
        self.env = env
        env.filters.setdefault("localdate", localdate)
        self._templates: dict[str, jinja2.Template] = {}
        self._stylesheet = Markup("")
        # The fediverse actor, linked with rel="me" so its profile shows the site as verified.
        self._me = f"{config.web_base_url}/ap/actor" if config.fediverse.enabled else ""

    @property
    def templates(self) -> dict[str, jinja2.Template]:
        """The page templates, loaded at the first page: one missing fails the site's stage, not the daemon."""
        if not self._templates:
            self._templates = {name: templates.load(self.env, f"site/{name}") for name in PAGE_TEMPLATES}
            # The stylesheet is the same on every page: rendered once, not included page by page.
            self._stylesheet = Markup(templates.load(self.env, "site/style.css").render())
        return self._templates

    def statement(self, page: StatementPage, revisions: dict[int, Revision], site: Site) -> bytes:
        """A statement's page, or the notice of its retraction."""
        revision = revisions[page.seq]
        if page.gone:
            return self._render("gone.html", revision.lang, title=revision.title, site_nav=site, withheld=False,
                                when=self._local(revision.updated))  # fmt: skip
        translations = [revisions[seq] for seq in page.translations]
        context = {
            "entry": revision,
            "title": revision.title,
            "url": self.urls.url(page.path),
            "description": self._description(revision),
            "published": self._local(revision.published),
            "updated": self._local(revision.updated) if revision.change == Change.UPDATED else None,
            "categories": [Link(self._category_href(c), c) for c in revision.categories],
            "older": self._link(revisions.get(page.older or 0)),
            "newer": self._link(revisions.get(page.newer or 0)),
            "translations": [self._link(t) for t in translations],
            "alternates": self._alternates(revision, translations),
            "json_ld": self._json_ld(revision, page),
            "quote": self._quote(revision),
            "site_nav": site,
        }
        return self._render("statement.html", revision.lang, **context)

    def listing(self, listing: Listing, revisions: dict[int, Revision], site: Site) -> bytes:
        """One page of an index of statements."""
        index = listing.index
        lang = index.lang or self.config.site.language
        say = words_for(lang)
        title = self._index_title(index, say)
        if listing.page:
            title = f"{title}, {say('page_n', page=listing.page)}"
        entries = [revisions[seq] for seq in listing.seqs]
        return self._render("listing.html", lang, title=title, entries=entries, listing=listing, index=index,
                            older=self._page_link(listing.older), newer=self._page_link(listing.newer),
                            site_nav=site, url=self.urls.url(listing.path), feed=self._feed_of(index))  # fmt: skip

    def editions(self, listing: EditionListing, site: Site) -> bytes:
        """One page of the newsletter archive."""
        lang = self.config.site.language
        say = words_for(lang)
        title = say("newsletters") + (f", {say('page_n', page=listing.page)}" if listing.page else "")
        shown = [(Link(self.urls.href(f"newsletters/{e.id}/{INDEX}"), e.subject, e.lang), self._local(e.created_at))
                 for e in listing.editions]  # fmt: skip
        return self._render("editions.html", lang, title=title, shown=shown, older=self._page_link(listing.older),
                            newer=self._page_link(listing.newer), site_nav=site, url=self.urls.url(listing.path))  # fmt: skip

    def edition_notice(self, page: EditionPage, site: Site, withheld: bool = False) -> bytes:
        """The notice in place of an edition whose statement was retracted, or (``withheld``) that cannot be
        shown without someone's address or link in it."""
        lang = self.config.site.language
        return self._render("gone.html", lang, title=page.edition.subject, when=None, withheld=withheld, site_nav=site)

    @property
    def archive_href(self) -> str:
        """The link to the newsletter archive's front page."""
        return self.urls.href(newsletters_path())

    def local_date(self, moment: datetime) -> str:
        """A moment's date in the site's time zone, as readers of the site's language write it."""
        return localdate(self._local(moment), self.config.site.language)

    def sitemap(self, site: Site, revisions: dict[int, Revision]) -> bytes:
        """``sitemap.xml``: every statement's page with its translations (hreflang), then the indexes."""
        groups = {p.statement_id: p for p in site.statements if not p.gone}
        urls = []
        for head in site.live:
            revision = revisions[head.seq]
            others = [revisions[seq] for seq in groups[head.statement_id].translations]
            urls.append({"loc": self.urls.url(statement_path(head.statement_id)), "lastmod": revision.updated,
                         "alternates": self._alternates(revision, others) if others else []})  # fmt: skip
        for listing in site.listings:
            if listing.page is None:
                newest = revisions[listing.seqs[0]].updated if listing.seqs else None
                urls.append({"loc": self.urls.url(listing.path), "lastmod": newest, "alternates": []})
        urls.append({"loc": self.urls.url(newsletters_path()), "lastmod": None, "alternates": []})
        return _file(self.templates["sitemap.xml"].render(urls=urls))

    def robots(self) -> bytes:
        """``robots.txt``: everything may be read; where the sitemap is."""
        return _file(self.templates["robots.txt"].render(sitemap=self.urls.url("sitemap.xml")))

    def _render(self, name: str, lang: str, **context: Any) -> bytes:
        feeds = self._feeds(lang)
        shared = {"lang": lang, "ui_lang": speaks(lang), "_": markup_for(lang), "site": self.config.site, "feeds": feeds,
                  "home": self.urls.href(INDEX), "archive": self.urls.href(newsletters_path()),
                  "subscribe": self.config.web_base_url + "/subscribe", "languages": self._languages(context),
                  "urls": self.urls, "stylesheet": self._stylesheet, "me": self._me}  # fmt: skip
        return _file(self.templates[name].render(**shared, **context))

    def _languages(self, context: dict[str, Any]) -> list[Link]:
        site: Site | None = context.get("site_nav")
        if site is None or not self.config.feeds.by_language:
            return []
        tags = site.languages
        return [Link(self.urls.href(f"lang/{t}/{INDEX}"), language_name(t), t) for t in tags] if len(tags) > 1 else []

    def _feeds(self, lang: str) -> list[Link]:
        """The feeds a page announces: the site's, and its language's if there is one."""
        specs = [FeedSpec("site", "")]
        if self.config.feeds.by_language:
            specs.append(FeedSpec(f"lang:{lang}", f"lang/{lang}", lang=lang))
        return [self._feed_link(spec, fmt) for spec in specs for fmt in self.config.feeds.formats]

    def _feed_of(self, index: Index) -> list[Link]:
        if index.key == SITE_INDEX.key:
            return []
        spec = FeedSpec(index.key, index.folder, lang=index.lang, category=index.category)
        return [self._feed_link(spec, fmt) for fmt in self.config.feeds.formats]

    def _feed_link(self, spec: FeedSpec, fmt: str) -> Link:
        title = self.config.site.title
        label = spec.category or (language_name(spec.lang) if spec.lang else "")
        text = f"{title}: {label} ({FEED_NAMES[fmt]})" if label else f"{title} ({FEED_NAMES[fmt]})"
        return Link(self.config.feeds_base_url + spec.path(fmt), text, spec.lang or "", CONTENT_TYPES[fmt])

    def _index_title(self, index: Index, say: Callable[..., str]) -> str:
        if index.lang:
            return say("activities_in", language=language_name(index.lang))
        if index.category:
            return say("category", category=index.category)
        return say("activities")

    def _category_href(self, category: str) -> str:
        """The link to a category's index; none when the site has no category indexes (``feeds.by_category``)."""
        return self.urls.href(f"category/{slugify(category)}/{INDEX}") if self.config.feeds.by_category else ""

    def _page_link(self, path: str | None) -> str | None:
        return self.urls.href(path) if path else None

    def _link(self, revision: Revision | None) -> Link | None:
        if revision is None:
            return None
        return Link(self.urls.href(statement_path(revision.statement_id)), revision.title, revision.lang)

    def _alternates(self, revision: Revision, translations: Sequence[Revision]) -> list[Link]:
        """hreflang alternates: the page itself and each translation (absolute URLs, as search engines want)."""
        if not translations:
            return []
        found = [revision, *translations]
        return [Link(self.urls.url(statement_path(r.statement_id)), r.title, r.lang) for r in found]

    def _local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.config.site.tz)

    def _description(self, revision: Revision) -> str:
        return revision.summary or excerpt_words(revision.body_text, DESCRIPTION_WORDS)

    def _quote(self, revision: Revision) -> str:
        """The HTML a quoting site may copy: a short excerpt and the active link."""
        words = excerpt_words(revision.summary or revision.body_text, 30)
        snippet = (
            Markup('<blockquote cite="{url}">{words}</blockquote>\n<p>{source}: <a href="{url}">{title}</a>, {org}</p>')
        ).format(url=revision.canonical_url, words=words, source="Source", title=revision.title,
                 org=self.config.site.title)  # fmt: skip
        return str(snippet)

    def _json_ld(self, revision: Revision, page: StatementPage) -> Markup:
        """schema.org ``NewsArticle``, safe inside a ``<script>`` element."""
        site = self.config.site
        author_type = "Organization" if revision.author in ("", site.title) else "Person"
        data: dict[str, Any] = {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": revision.title[:110],
            "name": revision.title,
            "description": self._description(revision),
            "url": revision.canonical_url,
            "mainEntityOfPage": self.urls.url(page.path),
            "inLanguage": revision.lang,
            "datePublished": revision.published.isoformat(),
            "dateModified": revision.updated.isoformat(),
            "author": {"@type": author_type, "name": revision.author or site.title},
            "publisher": {"@type": "Organization", "name": site.title, "url": site.url},
            "isAccessibleForFree": True,
        }
        if revision.categories:
            data["keywords"] = list(revision.categories)
            data["articleSection"] = revision.categories[0]
        if site.rights:
            data["copyrightNotice"] = site.rights
        text = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True)
        return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _file(text: str) -> bytes:
    """A rendered file's bytes, ending in one newline (Jinja2 drops the template's last one)."""
    return text.rstrip("\n").encode() + b"\n"
