"""Which pages the site has, what each one shows, and what it is made from (no I/O).

Every page is cut from the newest revision of each statement (its *head*) and
from the editions that were mailed:

- ``statements/<id>/index.html``: a statement's own page, linking the
  statements before and after it in its language and its translations; a
  retracted one's page is a short notice (served as 410 Gone);
- ``index.html`` ("Our Activities"), ``lang/<tag>/`` and ``category/<slug>/``:
  the newest ``per_page`` statements, and archive pages ``page/<n>/`` cut from
  the oldest, so a new statement changes the front page and the newest archive
  page but never the pages behind them (as the feeds' RFC 5005 archives);
- ``newsletters/``: the editions as they were mailed, one page each;
- ``sitemap.xml`` and ``robots.txt``.

A page's ``inputs`` name everything it is made from (revision seqs, its
neighbours, its place in the archive): the builder renders a page only when
they differ from the last build's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from syndicate.model import MailedEdition as Mailed
from syndicate.model import RevisionHead as Head
from syndicate.text import slugify

INDEX = "index.html"


@dataclass(frozen=True)
class StatementPage:
    """A statement's own page (or, when ``gone``, the notice that replaced it)."""

    path: str
    seq: int
    statement_id: str
    gone: bool = False
    older: int | None = None  # seq of the statement before it in its language
    newer: int | None = None
    translations: tuple[int, ...] = ()  # seqs of the others of its group, by language

    @property
    def inputs(self) -> list[Any]:
        """What the page is made from."""
        return ["statement", self.seq, self.gone, self.older, self.newer, list(self.translations)]


@dataclass(frozen=True)
class Listing:
    """One page of an index: the front page (``page`` None) or archive page ``page``, newest first."""

    path: str
    index: Index
    page: int | None
    seqs: tuple[int, ...]
    older: str | None = None  # path of the archive page behind this one
    newer: str | None = None
    pages: int = 0  # archive pages the index has

    @property
    def inputs(self) -> list[Any]:
        """What the page is made from."""
        return ["listing", self.index.key, self.page, list(self.seqs), self.older, self.newer, self.pages]


@dataclass(frozen=True)
class EditionPage:
    """One mailed edition, as it was mailed; ``gone`` when its statement was retracted."""

    path: str
    edition: Mailed
    gone: bool = False

    @property
    def inputs(self) -> list[Any]:
        """What the page is made from (an edition never changes)."""
        return ["edition", self.edition.id, self.gone]


@dataclass(frozen=True)
class EditionListing:
    """One page of the newsletter archive, newest first."""

    path: str
    page: int | None
    editions: tuple[Mailed, ...]
    older: str | None = None
    newer: str | None = None

    @property
    def inputs(self) -> list[Any]:
        """What the page is made from."""
        return ["editions", self.page, [e.id for e in self.editions], self.older, self.newer]


@dataclass(frozen=True)
class Index:
    """A list of statements: every one (``key`` "site"), one language's or one category's."""

    key: str
    folder: str  # "" for the site's own, "lang/<tag>" or "category/<slug>"
    lang: str | None = None
    category: str | None = None

    def path(self, page: int | None = None) -> str:
        """Where page ``page`` (None: the front page) of this index is written."""
        inner = f"page/{page}/{INDEX}" if page else INDEX
        return f"{self.folder}/{inner}" if self.folder else inner


SITE_INDEX = Index("site", "")


@dataclass
class Site:
    """Every page of the site, by kind, and the statements each index lists."""

    statements: list[StatementPage] = field(default_factory=list)
    listings: list[Listing] = field(default_factory=list)
    editions: list[EditionPage] = field(default_factory=list)
    edition_listings: list[EditionListing] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    live: list[Head] = field(default_factory=list)  # oldest first

    @property
    def languages(self) -> list[str]:
        """The languages with an index of their own."""
        return sorted({index.lang for index in self.indexes if index.lang})

    def pages(self) -> list[StatementPage | Listing | EditionPage | EditionListing]:
        """Every HTML page."""
        return [*self.statements, *self.listings, *self.editions, *self.edition_listings]


def statement_path(statement_id: str) -> str:
    """Where a statement's page is written: its canonical path, ``statements/<id>``, as a folder."""
    return f"statements/{statement_id}/{INDEX}"


def edition_path(edition_id: int) -> str:
    """Where a mailed edition's page is written."""
    return f"newsletters/{edition_id}/{INDEX}"


def plan(heads: Iterable[Head], mailed: Sequence[Mailed], per_page: int, by_language: bool, by_category: bool) -> Site:
    """The site for these heads (any order) and mailed editions (oldest first)."""
    ordered = sorted(heads, key=lambda h: (h.published, h.statement_id))
    site = Site(live=[h for h in ordered if not h.gone])
    site.statements = _statement_pages(ordered, site.live)
    for index, members in _indexes(site.live, by_language, by_category):
        site.indexes.append(index)
        site.listings.extend(_listings(index, members, per_page))
    gone = {h.statement_id for h in ordered if h.gone}
    # A digest mailed before editions said what they hold might carry a retracted statement: not shown.
    known = [m for m in mailed if m.holds is not None]
    withdrawn = {m.id for m in known if gone.intersection(m.statements)}
    shown = [m for m in known if m.id not in withdrawn]
    site.editions = [EditionPage(edition_path(m.id), m, m.id in withdrawn) for m in known]
    site.edition_listings = _edition_listings(shown, per_page)
    return site


def _statement_pages(ordered: list[Head], live: list[Head]) -> list[StatementPage]:
    neighbours = _neighbours(live)
    groups = _translation_groups(live)
    pages = []
    for head in ordered:
        if head.gone:
            pages.append(StatementPage(statement_path(head.statement_id), head.seq, head.statement_id, gone=True))
            continue
        older, newer = neighbours[head.statement_id]
        others = tuple(h.seq for h in groups.get(head.statement_id, ()) if h.statement_id != head.statement_id)
        pages.append(StatementPage(statement_path(head.statement_id), head.seq, head.statement_id, False,
                                   older, newer, others))  # fmt: skip
    return pages


def _neighbours(live: list[Head]) -> dict[str, tuple[int | None, int | None]]:
    """Each statement's older and newer neighbour (seqs) among those of its language."""
    by_lang: dict[str, list[Head]] = {}
    for head in live:
        by_lang.setdefault(head.lang, []).append(head)
    found: dict[str, tuple[int | None, int | None]] = {}
    for heads in by_lang.values():
        for n, head in enumerate(heads):
            older = heads[n - 1].seq if n else None
            newer = heads[n + 1].seq if n + 1 < len(heads) else None
            found[head.statement_id] = (older, newer)
    return found


def _translation_groups(live: list[Head]) -> dict[str, list[Head]]:
    by_id = {h.statement_id: h for h in live}
    root: dict[str, str] = {}

    def find(statement_id: str) -> str:
        while root.get(statement_id, statement_id) != statement_id:
            statement_id = root[statement_id]
        return statement_id

    for head in live:
        if head.translation_of and head.translation_of in by_id:
            a, b = find(head.statement_id), find(head.translation_of)
            if a != b:
                root[max(a, b)] = min(a, b)
    members: dict[str, list[Head]] = {}
    for head in live:
        members.setdefault(find(head.statement_id), []).append(head)
    groups: dict[str, list[Head]] = {}
    for group in members.values():
        if len(group) > 1:
            group.sort(key=lambda h: (h.lang, h.statement_id))
            for head in group:
                groups[head.statement_id] = group
    return groups


def _indexes(live: list[Head], by_language: bool, by_category: bool) -> list[tuple[Index, list[Head]]]:
    """The site's index and, as configured, one per language and per category, each with its members."""
    found: dict[str, tuple[Index, list[Head]]] = {SITE_INDEX.key: (SITE_INDEX, [])}
    for head in live:
        keys = [SITE_INDEX]
        if by_language:
            keys.append(Index(f"lang:{head.lang}", f"lang/{head.lang}", lang=head.lang))
        if by_category:
            keys.extend(Index(f"category:{slugify(c)}", f"category/{slugify(c)}", category=c) for c in head.categories)
        for index in keys:
            found.setdefault(index.key, (index, []))[1].append(head)
    return sorted(found.values(), key=lambda pair: (pair[0].key != "site", pair[0].key))


def _listings(index: Index, members: list[Head], per_page: int) -> list[Listing]:
    """An index's front page (the newest ``per_page``) and its sealed archive pages, counted from the oldest."""
    sealed = len(members) // per_page
    pages = []
    for page in range(1, sealed + 1):
        chunk = members[(page - 1) * per_page : page * per_page]
        newer = index.path(page + 1) if page < sealed else index.path()
        older = index.path(page - 1) if page > 1 else None
        pages.append(Listing(index.path(page), index, page, _newest_first(chunk), older, newer, sealed))
    front = _newest_first(members[-per_page:])
    pages.append(Listing(index.path(), index, None, front, index.path(sealed) if sealed else None, None, sealed))
    return pages


def _newest_first(heads: Sequence[Head]) -> tuple[int, ...]:
    return tuple(h.seq for h in reversed(heads))


NEWSLETTERS = "newsletters"


def newsletters_path(page: int | None = None) -> str:
    """Where page ``page`` (None: the front page) of the newsletter archive is written."""
    return f"{NEWSLETTERS}/page/{page}/{INDEX}" if page else f"{NEWSLETTERS}/{INDEX}"


def _edition_listings(mailed: list[Mailed], per_page: int) -> list[EditionListing]:
    sealed = len(mailed) // per_page
    pages = []
    for page in range(1, sealed + 1):
        chunk = tuple(reversed(mailed[(page - 1) * per_page : page * per_page]))
        newer = newsletters_path(page + 1) if page < sealed else newsletters_path()
        older = newsletters_path(page - 1) if page > 1 else None
        pages.append(EditionListing(newsletters_path(page), page, chunk, older, newer))
    front = tuple(reversed(mailed[-per_page:]))
    pages.append(EditionListing(newsletters_path(), None, front, newsletters_path(sealed) if sealed else None))
    return pages
